"""Inpainting methods under test, all with one signature: ``(rgb uint8 HxWx3, hole bool HxW)``
-> ``rgb uint8``. Classical references come from OpenCV and scikit-image; zoo models run through
the package's own pipeline, exactly as ``imgfix inpaint`` runs them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Method = Callable[[np.ndarray, np.ndarray], np.ndarray]


def opencv(flag_name: str, radius: int) -> Method:
    def run(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.inpaint(rgb, hole.astype(np.uint8) * 255, radius, getattr(cv2, flag_name))

    return run


def biharmonic(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    from skimage.restoration import inpaint_biharmonic

    filled = inpaint_biharmonic(rgb, hole, channel_axis=-1)
    return _composite(rgb, filled, hole)


def mean_colour(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The floor: every hole pixel gets the mean colour of the known pixels."""
    mean = rgb[~hole].mean(axis=0) / 255.0 if (~hole).any() else np.full(3, 0.5)
    return _composite(rgb, np.broadcast_to(mean, rgb.shape), hole)


def zoo_model(name: str, zoo: str | None = None) -> Method:
    from imgfix.pipelines.inpaint import load_inpainter

    inpainter = load_inpainter(name, zoo)

    def run(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return _composite(rgb, inpainter.fill(rgb.astype(np.float32) / 255.0, hole), hole)

    return run


def _composite(rgb: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The package's own compositing: known pixels kept, the fill quantized into the hole."""
    from imgfix.io import Picture

    return Picture(rgb).with_fill(filled, hole).pixels


def coarse_fill(smoothing: int) -> Method:
    """The inpainter's weightless first stage alone (push-pull): what training adds to it."""

    def run(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        from keras import ops

        from imgfix.models.layers import PushPullFill

        image = rgb[None].astype(np.float32) / 255.0
        mask = hole[None, ..., None].astype(np.float32)
        layer = PushPullFill(smoothing=smoothing)
        filled = ops.convert_to_numpy(layer([image * (1 - mask), mask]))[0]
        return _composite(rgb, filled, hole)

    return run


CLASSICAL: dict[str, Method] = {
    "push-pull": coarse_fill(0),
    "coarse-fill": coarse_fill(16),  # the inpainter's first stage: push-pull + 16 Jacobi steps
    "telea-r3": opencv("INPAINT_TELEA", 3),
    "telea-r9": opencv("INPAINT_TELEA", 9),
    "ns-r3": opencv("INPAINT_NS", 3),
    "ns-r9": opencv("INPAINT_NS", 9),
    "biharmonic": biharmonic,
    "mean-colour": mean_colour,
}

# The classical inpainters a trained model is measured against (not the floor, not our own stage).
REFERENCES = ("telea-r3", "telea-r9", "ns-r3", "ns-r9", "biharmonic")
