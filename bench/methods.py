"""Inpainting methods under test, all with one signature: ``(rgb uint8 HxWx3, hole bool HxW)``
-> ``rgb uint8``. Classical references come from OpenCV (with its contrib ``xphoto`` module)
and scikit-image; zoo models run through the package's own pipeline, exactly as ``imgfix
inpaint`` runs them.

A method that reuses work done for another method on the same case (the shift-map fill) says
how long that work took in its ``borrowed_seconds`` after each call, so its timing is honest
whichever of the two runs first."""

from __future__ import annotations

import hashlib
import time
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


def zoo_model(name: str, zoo: str | None = None, detail: dict | None = None) -> Method:
    """A zoo inpainter through the package's pipeline; with ``detail``, its crops followed by
    ``imgfix.pipelines.texture.add_detail`` with those keyword options, as ``imgfix inpaint
    --texture`` runs it."""
    from imgfix.pipelines.inpaint import load_inpainter

    inpainter = load_inpainter(name, zoo, detail=detail)

    def run(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return _composite(rgb, inpainter.fill(rgb.astype(np.float32) / 255.0, hole), hole)

    return run


def detail_options(spec: str) -> dict[str, float | int]:
    """``"vote=0,strength=0.75"`` -> keyword options of ``add_detail`` (integers stay ints)."""
    pairs = (kv.split("=", 1) for kv in spec.split(",") if kv)
    return {k: int(v) if v.lstrip("-").isdigit() else float(v) for k, v in pairs}


def _composite(rgb: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The package's own compositing: known pixels kept, the fill quantized into the hole."""
    from imgfix.io import Picture

    return Picture(rgb).with_fill(filled, hole).pixels


def _push_pull(rgb: np.ndarray, hole: np.ndarray, smoothing: int) -> np.ndarray:
    """The push-pull fill as floats in [0, 1], before compositing."""
    from keras import ops

    from imgfix.models.layers import PushPullFill

    image = rgb[None].astype(np.float32) / 255.0
    mask = hole[None, ..., None].astype(np.float32)
    layer = PushPullFill(smoothing=smoothing)
    return ops.convert_to_numpy(layer([image * (1 - mask), mask]))[0]


def coarse_fill(smoothing: int) -> Method:
    """The inpainter's weightless first stage alone (push-pull): what training adds to it."""

    def run(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return _composite(rgb, _push_pull(rgb, hole, smoothing), hole)

    return run


def _xphoto(rgb: np.ndarray, hole: np.ndarray, flag_name: str) -> np.ndarray:
    import cv2

    # xphoto's mask marks the *known* pixels, the opposite of cv2.inpaint's.
    known = np.where(hole, 0, 255).astype(np.uint8)
    if flag_name == "INPAINT_SHIFTMAP":  # it wants lightness first: CIELab, as its docs advise
        to, back = cv2.COLOR_RGB2Lab, cv2.COLOR_Lab2RGB
    else:  # FSR wants BGR (or grey)
        to, back = cv2.COLOR_RGB2BGR, cv2.COLOR_BGR2RGB
    src = cv2.cvtColor(np.ascontiguousarray(rgb), to)
    dst = np.zeros_like(src)  # filled in place: the Python binding returns None
    cv2.xphoto.inpaint(src, known, dst, getattr(cv2.xphoto, flag_name))
    out = cv2.cvtColor(dst, back)
    # The colour round trip (and shift-map itself) touches known pixels: keep the input's.
    return np.where(hole[..., None], out, rgb)


def xphoto(flag_name: str) -> Method:
    """OpenCV contrib's ``cv2.xphoto.inpaint``: ``INPAINT_FSR_FAST`` (frequency-selective
    reconstruction) or ``INPAINT_SHIFTMAP`` (patch-based; uncached, see ``ShiftMap``)."""

    def run(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        return _xphoto(rgb, hole, flag_name)

    return run


class ShiftMapMemo:
    """Shift-map's fill of the last case asked for. It takes seconds per image, and both
    ``shiftmap`` and the ``coarse+shiftmap-hf`` reference need it on every case."""

    def __init__(self) -> None:
        self.key: bytes | None = None
        self.out: np.ndarray | None = None
        self.seconds = 0.0

    def get(self, rgb: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, float]:
        """The fill, and the seconds it took if it was computed by an earlier call (else 0)."""
        key = hashlib.sha1(
            repr(rgb.shape).encode() + rgb.tobytes() + np.packbits(hole).tobytes()
        ).digest()
        if key == self.key:
            return self.out, self.seconds
        start = time.perf_counter()
        out = _xphoto(rgb, hole, "INPAINT_SHIFTMAP")
        self.key, self.out, self.seconds = key, out, time.perf_counter() - start
        return out, 0.0


class ShiftMap:
    """``cv2.xphoto`` shift-map, through a memo shared with the reference below."""

    def __init__(self, memo: ShiftMapMemo) -> None:
        self.memo, self.borrowed_seconds = memo, 0.0

    def __call__(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        out, self.borrowed_seconds = self.memo.get(rgb, hole)
        return out


class CoarsePlusShiftMapDetail:
    """The weightless reference of the texture issue: the inpainter's coarse fill plus the
    high-frequency part of shift-map's fill (shift-map minus its Gaussian blur at ``sigma``).
    A learned model has to beat this crude combination to earn its weights."""

    def __init__(self, memo: ShiftMapMemo, sigma: float = 2.0, smoothing: int = 16) -> None:
        self.memo, self.sigma, self.smoothing = memo, sigma, smoothing
        self.borrowed_seconds = 0.0

    def __call__(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import cv2

        shifted, self.borrowed_seconds = self.memo.get(rgb, hole)
        shifted = shifted.astype(np.float32) / 255.0
        detail = shifted - cv2.GaussianBlur(shifted, (0, 0), self.sigma)
        coarse = _push_pull(rgb, hole, self.smoothing)
        return _composite(rgb, np.clip(coarse + detail, 0.0, 1.0), hole)


_SHIFTMAP = ShiftMapMemo()

CLASSICAL: dict[str, Method] = {
    "push-pull": coarse_fill(0),
    "coarse-fill": coarse_fill(16),  # the inpainter's first stage: push-pull + 16 Jacobi steps
    "telea-r3": opencv("INPAINT_TELEA", 3),
    "telea-r9": opencv("INPAINT_TELEA", 9),
    "ns-r3": opencv("INPAINT_NS", 3),
    "ns-r9": opencv("INPAINT_NS", 9),
    "biharmonic": biharmonic,
    "fsr-fast": xphoto("INPAINT_FSR_FAST"),
    "shiftmap": ShiftMap(_SHIFTMAP),
    "coarse+shiftmap-hf": CoarsePlusShiftMapDetail(_SHIFTMAP),
    "mean-colour": mean_colour,
}

# The classical inpainters a trained model is measured against for PSNR (not the floor, not our
# own stage; shift-map and the reference set the texture bar, not the PSNR one).
REFERENCES = ("telea-r3", "telea-r9", "ns-r3", "ns-r9", "biharmonic", "fsr-fast")

# Methods that take seconds per image (shift-map): the benchmark measures them on a subset.
SLOW = ("shiftmap", "coarse+shiftmap-hf")
