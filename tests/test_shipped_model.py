"""The shipped default inpainter: present, intact, documented, and better than OpenCV's Telea
on the held-out images with medium and thick masks (the foundation issue's bar)."""

import numpy as np
import pytest

from bench import eval_images, inpaint_quality, methods
from imgfix import zoo

NAME = zoo.DEFAULT_INPAINTER


def test_default_model_is_shipped_intact_and_has_a_full_card():
    card = zoo.verify(NAME, zoo.REPO_ZOO)
    assert card["kind"] == "inpainter"
    assert (zoo.REPO_ZOO / card["file"]).stat().st_size < 25 * 2**20
    assert card["training_command"].startswith("imgfix ")
    assert card["steps"] > 0 and card["tensorflow"] and card["keras"] and card["created"]
    evaluation = card["metrics"]["evaluation"]
    assert set(evaluation["images"]) == set(eval_images.ALL_IMAGES)
    for family in ("medium", "thick"):
        figures = evaluation["families"][family]
        assert {"model_psnr", "model_ssim", "telea-r3_psnr", "telea-r3_ssim"} <= set(figures)


@pytest.mark.parametrize("family", ["medium", "thick"])
def test_default_model_beats_telea_on_held_out_images(family):
    images = {name: eval_images.load(name) for name in eval_images.CARD_IMAGES}
    runners = {"telea": methods.CLASSICAL["telea-r3"], "model": methods.zoo_model(NAME)}
    rows = inpaint_quality.evaluate(images, (256,), (family,), runners, seed=0)
    psnr = {m: np.mean([r["psnr"] for r in rows if r["method"] == m]) for m in runners}
    assert psnr["model"] > psnr["telea"]
