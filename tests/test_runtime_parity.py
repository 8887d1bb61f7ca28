"""Every shipped model: its .tflite matches its card, and LiteRT gives the same pictures as
TensorFlow (at most 1/255 per pixel) on the evaluation images, and with the same noise for the
generators. This is what lets ``inpaint`` and ``generate`` run LiteRT without TensorFlow.
``bench.runtime_parity`` measures the same on everything; here on a subset."""

from __future__ import annotations

import pytest

from bench import eval_images, runtime_parity
from imgfix import zoo
from imgfix.pipelines.generate import SHOWCASE_PROMPTS

CARDS = zoo.list_cards(zoo.REPO_ZOO)
PROMPTS = [*SHOWCASE_PROMPTS, "Katze", "voiture", "a dog", "red heart"]


@pytest.mark.parametrize("card", CARDS, ids=lambda card: card["name"])
def test_every_shipped_model_has_a_matching_tflite(card):
    assert "error" not in card, card.get("error")
    entry = card["runtime"]
    assert entry["format"] == "litert" and entry["builtin_ops_only"] is True
    zoo.verify(card["name"], zoo.REPO_ZOO)  # both files against their sha256
    path = zoo.runtime_file(card["name"], zoo.REPO_ZOO)
    assert path.stat().st_size == entry["bytes"] < 25 * 2**20


def test_the_shipped_zoo_stays_under_100_mb():
    total = sum(p.stat().st_size for p in zoo.REPO_ZOO.iterdir() if p.is_file())
    assert total < 100 * 2**20


@pytest.mark.slow
def test_inpainter_parity_on_the_evaluation_images():
    result = runtime_parity.inpainter(
        zoo.DEFAULT_INPAINTER, eval_images.CARD_IMAGES, (256,), ("thin", "thick")
    )
    assert result["cases"] == 2 * len(eval_images.CARD_IMAGES)
    assert result["max_abs_outside_hole"] == 0.0  # known pixels are copied, on both runtimes
    assert result["max_abs"] <= runtime_parity.LIMIT, f"{result['max_abs'] * 255:.3f} levels"


@pytest.mark.slow
@pytest.mark.parametrize("name", [c["name"] for c in CARDS if c.get("kind") == "generator"])
def test_generator_parity_with_the_same_noise(name):
    """Prompt to pixels on each runtime: its own prompt encoder, then its own generator."""
    result = runtime_parity.generator(name, PROMPTS)
    assert len(result["runs"]) >= 1 and all(r["images"] == len(PROMPTS) for r in result["runs"])
    assert result["max_abs"] <= runtime_parity.LIMIT, f"{result['max_abs'] * 255:.3f} levels"


@pytest.mark.slow
def test_prompt_encoder_and_evaluator_parity():
    encoder = runtime_parity.text_encoder("prompt-encoder", PROMPTS)
    assert encoder["min_cosine"] > 0.9999
    judge = runtime_parity.evaluator("emoji-evaluator", eval_images.CARD_IMAGES)
    assert judge["top1_agreement"] == 1.0 and judge["max_abs"] < 1e-3
