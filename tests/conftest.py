"""Shared fixtures: a tiny real inpainter in a throw-away zoo.

The model is built and saved once per session (TensorFlow starts once); each test gets its own
copy of the zoo folder, so tests may tamper with or delete files freely.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

TINY = "tiny"
TINY_CARD = {
    "kind": "inpainter",
    "description": "8-filter context encoder for tests",
    "image_size": 64,
    "multiple": 16,
}


@pytest.fixture(scope="session")
def tiny_model():
    """The untrained 8-filter context encoder that the session's zoo holds."""
    import keras
    import numpy as np

    from imgfix.models.context_encoder import build_context_encoder

    keras.utils.set_random_seed(0)
    model = build_context_encoder(filters=8)
    card = {**TINY_CARD, "metrics": {"hole_psnr": np.float32(20.5)}}
    return model, card


@pytest.fixture(scope="session")
def _tiny_zoo_master(tmp_path_factory, tiny_model) -> Path:
    from imgfix import zoo

    folder = tmp_path_factory.mktemp("zoo-master")
    model, card = tiny_model
    zoo.save_model(model, TINY, card, zoo=folder)
    return folder


@pytest.fixture
def tiny_zoo(tmp_path, _tiny_zoo_master) -> Path:
    """A zoo folder holding the model ``tiny`` (kind inpainter, image_size 64, multiple 16)."""
    folder = tmp_path / "zoo"
    shutil.copytree(_tiny_zoo_master, folder)
    return folder


def write_photos(folder: Path, count: int, height: int, width: int, suffix: str) -> Path:
    """``count`` smooth synthetic photos (products of sines), a stand-in training corpus."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width] / height
    for i in range(count):
        f = rng.uniform(1, 6, 3)
        image = np.stack([np.sin(f[c] * x + i) * np.cos(f[c] * y) for c in range(3)], -1)
        Image.fromarray(((image + 1) * 127.5).astype(np.uint8)).save(folder / f"p{i}{suffix}")
    return folder


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "kill_loop: SIGKILLs checkpointing runs at random moments (test_kill_loop.py)"
    )
