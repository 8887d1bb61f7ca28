"""The benchmark harness on tiny inputs: every method keeps the known pixels exactly, and the
summary and card figures are computed from the rows."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench import eval_images, inpaint_quality, methods
from imgfix import zoo

TINY = "tiny"
ASTRONAUT = {
    "astronaut": eval_images.load("astronaut")
}  # the model in the tiny_zoo fixture (conftest.py)


@pytest.fixture
def runners(tiny_zoo):
    """Every method the benchmark knows, and a zoo model."""
    return {**methods.CLASSICAL, TINY: methods.zoo_model(TINY, str(tiny_zoo))}


def test_quick_benchmark_keeps_known_pixels_and_gives_sane_metrics(runners):
    # evaluate() raises if any method changes a pixel outside the hole.
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


def _rows(psnrs: dict[str, list[float]], family="medium", size=64) -> list[dict]:
    return [
        {"method": m, "image": f"im{i}", "size": size, "family": family, "hole_area": 0.2 + i / 100,
         "psnr": p, "ssim": p / 100, "hole_psnr": p - 7, "hole_l1": 1 / p, "seconds": 0.1}
        for m, values in psnrs.items() for i, p in enumerate(values)
    ]  # fmt: skip


def test_headline_pairs_the_model_with_the_best_classical_method():
    rows = _rows({"telea-r3": [20, 24, 22], "biharmonic": [21, 25, 23], "model": [22, 25, 25],
                  "mean-colour": [30, 30, 30]})  # fmt: skip
    summary = inpaint_quality.summarise(rows)
    # The floor is never "the best classical method", however it scores.
    assert inpaint_quality.best_classical(summary, "medium") == "biharmonic"
    (entry,) = inpaint_quality.headline(rows, "model")
    assert entry["best_classical"] == "biharmonic"
    assert entry["psnr_gain"] == pytest.approx(1.0)  # mean of 1, 0, 2
    assert entry["psnr_gain_ci95"] == pytest.approx(4.303 * 1.0 / np.sqrt(3), rel=1e-3)
    card = inpaint_quality.card_metrics(rows, "model", "telea-r3", "cmd", 0)
    medium = card["families"]["medium"]
    assert medium["best_classical"] == "biharmonic"
    assert medium["psnr_gain_db"] == pytest.approx(2.0) and medium["psnr_gain_vs_best_db"] == 1.0


def test_area_distribution_counts_each_image_once():
    rows = _rows({"a": [20, 21, 22, 23], "b": [20, 21, 22, 23]})
    (areas,) = inpaint_quality.area_distribution(rows)
    assert areas["n"] == 4
    assert (areas["min"], areas["max"]) == (0.2, 0.23)
    assert areas["median"] == pytest.approx(0.215)


def test_full_run_writes_the_json_the_figure_and_the_page_section(tiny_zoo, tmp_path):
    figure = tmp_path / "assets" / "side.png"
    figure.parent.mkdir()
    payload = inpaint_quality.main(
        ["--model", TINY, "--zoo", str(tiny_zoo), "--images", "astronaut,brick", "--sizes", "48",
         "--families", "thin,box", "--methods", "telea-r3,ns-r3,mean-colour",
         "--json", str(tmp_path / "q.json"), "--figure", str(figure)]
    )  # fmt: skip
    assert json.loads((tmp_path / "q.json").read_text())["headline"] == payload["headline"]
    assert [e["family"] for e in payload["headline"][TINY]] == ["thin", "box"]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = inpaint_quality.section(payload, figure.parent)
    assert (figure.parent / "inpaint-psnr-vs-telea.png").is_file()
    assert "| box | 48 | 2 | 25.0% |" in text  # the centred box covers a quarter
    assert "![side by side](side.png)" in text
    for method in ("telea-r3", "ns-r3", "mean-colour", TINY):
        assert f"| {method} | " in text


def test_report_renders_the_parts_present_and_names_the_missing(tmp_path):
    from bench import report

    results = tmp_path / "results"
    results.mkdir()
    rows = _rows({"telea-r3": [20, 24], "ns-r3": [20, 23], "model": [22, 25]})
    payload = {"rows": rows, "summary": inpaint_quality.summarise(rows),
               "areas": inpaint_quality.area_distribution(rows),
               "headline": {"model": inpaint_quality.headline(rows, "model")},
               "settings": {"command": "python -m bench.inpaint_quality --x"}}  # fmt: skip
    (results / "inpaint_quality.json").write_text(json.dumps(payload))
    page = tmp_path / "docs" / "benchmarks.md"
    text = report.render(results, page, info={"cpu": "test cpu", "cores": 2})
    assert page.read_text() == text
    assert "| cpu | test cpu |" in text
    assert "model vs the best classical method, PSNR:** medium @64 +1.50 dB vs telea-r3" in text
    assert "Measured with `python -m bench.inpaint_quality --x`." in text
    assert "Not measured in this run (no `speed.json`)." in text
    assert (page.parent / "bench" / "inpaint-psnr-vs-telea.png").is_file()
    assert "A quick run" not in text
    # A quick run says so at the top; the machine comes from the run's own record.
    (results / report.MACHINE).write_text(json.dumps({"cpu": "recorded cpu", "run": "quick"}))
    text = report.render(results, page)
    assert "| cpu | recorded cpu |" in text and "do not quote these figures" in text


def test_machine_names_the_cpu_cores_and_versions_without_importing_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, json; from bench import report; info = report.machine(); "
        "print(json.dumps([info['cores'], info['tensorflow'], 'tensorflow' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    cores, tf_version, imported = json.loads(out.stdout)
    assert cores >= 1 and tf_version[0].isdigit() and not imported


def test_quick_run_skips_generation_without_a_corpus_and_asks_every_part_for_quick(tmp_path):
    from bench import run

    todo = run.commands(tmp_path, tmp_path, quick=True, data=tmp_path / "no-corpus")
    assert list(todo) == ["quality", "speed", "parity", "throughput"]
    assert all("--quick" in todo[part] for part in ("speed", "parity", "throughput"))
    assert "--update-card" not in todo["quality"]  # a quick run never touches the cards
    (tmp_path / "captions.jsonl").write_text("")
    full = run.commands(tmp_path, tmp_path, quick=False, data=tmp_path)
    assert "--update-card" in full["quality"] and "--update-card" in full["generation"]


def test_the_parity_section_names_each_model_and_the_limit():
    from bench import report, runtime_parity

    part = {
        "settings": {"command": "python -m bench.runtime_parity"},
        "models": {
            "inp": {"kind": "inpainter", "weights": "float32", "cases": 88, "max_abs": 2e-7,
                    "mean_abs": 1e-8, "max_abs_outside_hole": 0.0},
            "gen": {"kind": "generator", "weights": "float16", "max_abs": 0.005,
                    "runs": [{"temperature": 1.0, "images": 10, "max_abs": 0.005,
                              "mean_abs": 1e-4}]},
            "enc": {"kind": "text-encoder", "weights": "float16", "texts": 10,
                    "min_cosine": 0.99999, "max_abs": 1e-4},
        },
    }  # fmt: skip
    text = report.section("parity", part, Path("."), "bench/")
    assert "| inp | inpainter | float32 | 88 fills" in text and "| 0.000 | yes |" in text
    assert (
        "| gen | generator | float16 | 10 prompts at T 1, same noise | 5.00e-03 | 1.275 | no |"
        in text
    )
    assert "min cosine 0.999990" in text
    assert "gen differs by 1.28/255, over the 1/255 limit" in runtime_parity.headline(part)[0]


def test_training_curves_read_the_log_by_step_and_plot(tmp_path):
    from bench import curves

    run = tmp_path / "run"
    run.mkdir()
    lines = [{"step": 2, "val_hole_psnr": 19.0}, {"step": 1, "val_hole_psnr": 18.0},
             {"step": 2, "val_hole_psnr": 19.5}]  # fmt: skip
    (run / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    assert [(e["step"], e["val_hole_psnr"]) for e in curves.read_log(run)] == [(1, 18.0), (2, 19.5)]
    curves.main([str(run), "--figures", "val_hole_psnr", "-o", str(tmp_path / "c.png")])
    assert Image.open(tmp_path / "c.png").size[0] > 100
