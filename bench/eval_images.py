"""The held-out evaluation images. imgfix never trains or tunes on these.

They ship inside scikit-image and scikit-learn (the ``bench`` extra), so the benchmark needs no
download. Each image is resized so its short side is the requested size (LANCZOS).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# The six the foundation issue named (the shipped-model test uses them); `make bench` uses all.
CARD_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "china", "flower")
TEXTURES = ("brick", "grass", "gravel")
ALL_IMAGES = (*CARD_IMAGES, "motorcycle_left", "hubble_deep_field", *TEXTURES)


def load(name: str) -> np.ndarray:
    """One evaluation image as an RGB ``uint8`` array at its native size."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

    if name == "motorcycle_left":
        image = skimage.data.stereo_motorcycle()[0]
    else:
        image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def at_size(image: np.ndarray, short_side: int) -> np.ndarray:
    """Resize so the short side is ``short_side`` px."""
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))
