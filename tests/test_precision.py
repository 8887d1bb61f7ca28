"""``--precision mixed``: training computes in bfloat16 with float32 weights and float32
losses; the zoo gets a float32 copy of the generator, with the same weights, that LiteRT runs."""

import json

import keras
import numpy as np
import pytest
from conftest import write_photos

pytestmark = pytest.mark.slow


@pytest.fixture
def mixed():
    """The CLI's --precision mixed, undone afterwards (the policy is global)."""
    from imgfix.cli.common import Globals
    from imgfix.cli.train import Precision, _setup_training

    _setup_training(Globals(seed=0), "1", 2, precision=Precision.mixed)
    try:
        yield
    finally:
        keras.config.set_dtype_policy("float32")


def _policies(model) -> set[str]:
    return {layer.dtype_policy.name for layer in model._flatten_layers(include_self=False)}


def test_mixed_inpainter_trains_and_the_zoo_gets_float32(mixed, tmp_path):
    from imgfix import zoo
    from imgfix.training.checkpoints import load_checkpoint
    from imgfix.training.inpainter import train_inpainter

    photos = write_photos(tmp_path / "photos", 4, 64, 64, ".png")
    summary = train_inpainter(
        photos, "mixed", image_size=32, steps=3, batch_size=2, filters=4, quiet=True,
        logdir=tmp_path / "run", zoo=tmp_path / "zoo", command="imgfix train ... --precision mixed",
    )  # fmt: skip
    assert summary["steps"] == 3 and np.isfinite(summary["rec"])

    trainer = load_checkpoint(tmp_path / "run" / "checkpoint.keras")
    generator = trainer.generator
    # The convolutions compute in bfloat16; the weightless layers and the output in float32.
    assert generator.get_layer("coarse_fill").compute_dtype == "float32"
    assert {"mixed_bfloat16", "float32"} <= _policies(generator)
    assert all(w.dtype == "float32" for w in generator.weights)

    keras.config.set_dtype_policy("float32")  # what a later `imgfix inpaint` has
    shipped, card = zoo.load_model("mixed", tmp_path / "zoo", "inpainter")
    assert _policies(shipped) == {"float32"}
    assert card["runtime"]["file"] == "mixed.tflite" and (tmp_path / "zoo" / "mixed.tflite").stat()
    rng = np.random.default_rng(0)
    image = rng.random((2, 32, 32, 3)).astype("float32")
    mask = np.zeros((2, 32, 32, 1), "float32")
    mask[:, 8:24, 8:24] = 1
    ours = np.asarray(shipped([image, mask]))
    trained = np.asarray(generator([image, mask]))
    assert ours.dtype == trained.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa: the float32 twin differs by about 1/256 at most
    assert float(np.abs(ours - trained).max()) < 0.02
    assert np.array_equal(ours * (1 - mask), image * (1 - mask))  # known pixels exact
    weights = dict(zip([w.path for w in generator.weights], generator.get_weights(), strict=True))
    for w in shipped.weights:
        np.testing.assert_array_equal(np.asarray(w), weights[w.path])
    assert json.loads((tmp_path / "zoo" / "mixed.json").read_text())["steps"] == 3
