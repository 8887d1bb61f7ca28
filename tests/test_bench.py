"""The benchmark harness on tiny inputs: every method keeps the known pixels exactly, and the
summary and card figures are computed from the rows."""

import json

import numpy as np
import pytest

from bench import eval_images, inpaint_quality, methods
from imgfix import zoo

TINY = "tiny"
ASTRONAUT = {
    "astronaut": eval_images.load("astronaut")
}  # the model in the tiny_zoo fixture (conftest.py)


@pytest.fixture
def runners(tiny_zoo):
    return {
        **{name: methods.CLASSICAL[name] for name in ("telea-r3", "ns-r9", "mean-colour")},
        TINY: methods.zoo_model(TINY, str(tiny_zoo)),
    }


def test_quick_benchmark_keeps_known_pixels_and_gives_sane_metrics(runners):
    rows = inpaint_quality.evaluate(ASTRONAUT, (64,), ("thin", "box"), runners, seed=0)
    assert len(rows) == 2 * len(runners)
    for row in rows:
        assert 0 < row["hole_area"] < 0.6
        assert 5 < row["psnr"] < 60 and 5 < row["hole_psnr"] < row["psnr"] + 1e-9
        assert 0 < row["ssim"] <= 1 and 0 < row["hole_l1"] < 1
    # The same masks for every method: equal hole areas per (image, size, family).
    for family in ("thin", "box"):
        assert len({r["hole_area"] for r in rows if r["family"] == family}) == 1


def test_a_method_that_touches_known_pixels_is_caught():
    def sloppy(rgb, hole):
        return np.clip(rgb.astype(int) + 1, 0, 255).astype(np.uint8)

    with pytest.raises(AssertionError, match="outside the hole"):
        inpaint_quality.evaluate(ASTRONAUT, (32,), ("box",), {"sloppy": sloppy})


def test_interval_and_summary():
    mean, half = inpaint_quality.interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / np.sqrt(3), rel=1e-3)
    assert inpaint_quality.interval([5.0]) == (5.0, 0.0)
    rows = [
        {"method": "m", "family": "thin", "size": 8, "hole_area": 0.1, "psnr": p,
         "ssim": 0.9, "hole_psnr": p - 5, "hole_l1": 0.1, "seconds": 0.01}
        for p in (20.0, 22.0)
    ]  # fmt: skip
    (entry,) = inpaint_quality.summarise(rows)
    assert entry["n"] == 2 and entry["psnr"] == 21.0 and entry["hole_psnr"] == 16.0


def test_update_card_stores_the_figures_next_to_the_reference(tiny_zoo, capsys):
    inpaint_quality.main(
        ["--model", TINY, "--zoo", str(tiny_zoo), "--images", "astronaut", "--sizes", "64",
         "--families", "medium", "--methods", "telea-r3", "--update-card"]
    )  # fmt: skip
    card = zoo.read_card(TINY, tiny_zoo)
    figures = card["metrics"]["evaluation"]
    medium = figures["families"]["medium"]
    assert {"model_psnr", "telea-r3_psnr", "model_ssim", "psnr_gain_db"} <= set(medium)
    assert medium["psnr_gain_db"] == pytest.approx(
        medium["model_psnr"] - medium["telea-r3_psnr"], abs=1e-3
    )
    assert figures["command"].startswith("python -m bench.inpaint_quality --model tiny")
    zoo.verify(TINY, tiny_zoo)  # metrics do not touch the model file
    assert "| medium | 64 | tiny |" in capsys.readouterr().out
    json.dumps(card)
