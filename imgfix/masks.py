"""Hole masks: turning a user's mask into a hole, finding hole regions, random masks.

A hole mask is a 2-D ``bool`` array, ``True`` where pixels must be filled.

The random generators follow LaMa's evaluation mask families (``configs/data_gen/random_*_256``
and ``random_*_512``): strokes of random segments drawn with a round brush, plus optional boxes.
An image whose short side is nearer 256 px draws with the 256 parameters, one nearer 512 px with
the 512 ones, each scaled by the short side over its base. They draw with Pillow, so they run
anywhere the package does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# --- user masks -------------------------------------------------------------------------------


def dilate(hole: np.ndarray, px: int) -> np.ndarray:
    """Grow a hole by ``px`` pixels (a square structuring element of side 2*px+1).

    Separable, with running sums: the cost is the same for any radius, and a radius past the
    image's long side (which makes every pixel hole, if any is) is capped there."""
    if px <= 0 or not hole.any():
        return hole.copy()
    px = min(int(px), max(hole.shape))
    return _any_within(_any_within(hole, px, axis=0), px, axis=1)


def _any_within(mask: np.ndarray, px: int, axis: int) -> np.ndarray:
    """True where some True lies within ``px`` along ``axis``."""
    n = mask.shape[axis]
    sums = np.cumsum(mask, axis=axis, dtype=np.int32)
    sums = np.concatenate([np.zeros_like(np.take(sums, [0], axis=axis)), sums], axis=axis)
    index = np.arange(n)
    high = np.take(sums, np.minimum(index + px + 1, n), axis=axis)
    low = np.take(sums, np.maximum(index - px, 0), axis=axis)
    return high > low


def hole_regions(
    hole: np.ndarray, margin: int | Callable[[int, int], int], block: int = 16
) -> list[tuple[int, int, int, int]]:
    """Boxes ``(top, left, bottom, right)`` around the hole's regions, grown by ``margin``.

    Regions are found on a grid of ``block``-pixel cells, which keeps this cheap on a 12 MP photo;
    boxes that overlap after growing are merged, so every hole pixel lies in exactly one box and
    boxes never overlap. ``margin`` may be a function of a region's (height, width).
    """
    h, w = hole.shape
    if not hole.any():
        return []
    gh, gw = -(-h // block), -(-w // block)
    padded = np.zeros((gh * block, gw * block), bool)
    padded[:h, :w] = hole
    cells = padded.reshape(gh, block, gw, block).any(axis=(1, 3))

    boxes = []
    seen = np.zeros_like(cells)
    for start in zip(*np.nonzero(cells), strict=True):
        if seen[start]:
            continue
        stack, ys, xs = [start], [], []
        seen[start] = True
        while stack:
            y, x = stack.pop()
            ys.append(y)
            xs.append(x)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    if 0 <= ny < gh and 0 <= nx < gw and cells[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        top, left = min(ys) * block, min(xs) * block
        bottom, right = min(h, (max(ys) + 1) * block), min(w, (max(xs) + 1) * block)
        m = margin(bottom - top, right - left) if callable(margin) else margin
        boxes.append([max(0, top - m), max(0, left - m), min(h, bottom + m), min(w, right + m)])
    return [(int(t), int(lft), int(b), int(r)) for t, lft, b, r in _merge_overlapping(boxes)]


def _merge_overlapping(boxes: list[list[int]]) -> list[list[int]]:
    merged = True
    while merged:
        merged = False
        out: list[list[int]] = []
        for b in boxes:
            for o in out:
                if b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3]:
                    o[:] = [min(o[0], b[0]), min(o[1], b[1]), max(o[2], b[2]), max(o[3], b[3])]
                    merged = True
                    break
            else:
                out.append(list(b))
        boxes = out
    return boxes


# --- random masks for training and benchmarks -------------------------------------------------


@dataclass(frozen=True)
class MaskFamily:
    """LaMa-style random mask parameters, in pixels at a 256 px short side."""

    min_strokes: int
    max_strokes: int
    max_width: int
    max_len: int
    max_angle: int = 4
    box_proba: float = 0.0
    box_min: int = 30
    box_max: int = 100
    box_margin: int = 0
    min_boxes: int = 1
    max_boxes: int = 3
    max_area: float = 0.5


FAMILIES: dict[str, MaskFamily] = {
    "thin": MaskFamily(min_strokes=4, max_strokes=50, max_width=10, max_len=40),
    "medium": MaskFamily(
        min_strokes=4, max_strokes=5, max_width=50, max_len=100,
        box_proba=0.3, box_min=10, box_max=50, min_boxes=1, max_boxes=5,
    ),
    "thick": MaskFamily(
        min_strokes=1, max_strokes=5, max_width=100, max_len=200,
        box_proba=0.3, box_min=30, box_max=150, box_margin=10, min_boxes=1, max_boxes=3,
    ),
}  # fmt: skip
# LaMa's parameters for 512 px evaluation (thin strokes stay thin; thick holes grow more).
FAMILIES_512: dict[str, MaskFamily] = {
    "thin": MaskFamily(min_strokes=4, max_strokes=70, max_width=20, max_len=100),
    "medium": MaskFamily(
        min_strokes=4, max_strokes=10, max_width=100, max_len=200,
        box_proba=0.3, box_min=30, box_max=150, min_boxes=1, max_boxes=5,
    ),
    "thick": MaskFamily(
        min_strokes=1, max_strokes=5, max_width=250, max_len=450,
        box_proba=0.3, box_min=30, box_max=300, box_margin=10, min_boxes=1, max_boxes=4,
    ),
}  # fmt: skip
MASK_KINDS = (*FAMILIES, "box")


def family_for(kind: str, short_side: int) -> tuple[MaskFamily, float]:
    """LaMa's parameters for an image of this short side, and the scale to draw them at: the
    256 px set up to 362 px (the geometric midpoint), the 512 px set above."""
    base, table = (512, FAMILIES_512) if short_side > math.sqrt(256 * 512) else (256, FAMILIES)
    return table[kind], short_side / base


def centered_box(height: int, width: int, area: float = 0.25) -> np.ndarray:
    """A centred box covering ``area`` of the image, as in Context Encoders."""
    mask = np.zeros((height, width), bool)
    bh, bw = round(height * math.sqrt(area)), round(width * math.sqrt(area))
    top, left = (height - bh) // 2, (width - bw) // 2
    mask[top : top + bh, left : left + bw] = True
    return mask


def random_mask(
    height: int, width: int, kind: str, rng: np.random.Generator, scale: float | None = None
) -> np.ndarray:
    """One random hole mask of the given family (``thin``, ``medium``, ``thick`` or ``box``).

    By default the parameters are LaMa's for the image's size (``family_for``); with ``scale``,
    the 256 px parameters scaled by it (the training masks use this).
    """
    if kind == "box":
        return centered_box(height, width)
    if scale is None:
        fam, scale = family_for(kind, min(height, width))
    else:
        fam = FAMILIES[kind]
    best = None
    for _ in range(20):
        mask = _draw(height, width, fam, scale, rng)
        if 0 < mask.mean() <= fam.max_area:
            return mask
        if mask.any() and (best is None or mask.mean() < best.mean()):
            best = mask
    return best if best is not None else mask


def _draw(h: int, w: int, fam: MaskFamily, scale: float, rng: np.random.Generator) -> np.ndarray:
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    for i in range(rng.integers(fam.min_strokes, fam.max_strokes + 1)):
        x, y = int(rng.integers(w)), int(rng.integers(h))
        for _ in range(1 + int(rng.integers(5))):
            angle = 0.01 + int(rng.integers(fam.max_angle))
            if i % 2 == 0:
                angle = 2 * math.pi - angle
            length = (10 + int(rng.integers(fam.max_len))) * scale
            width = max(1, round((5 + int(rng.integers(fam.max_width))) * scale))
            # Python's min and max: np.clip on one float costs more than the drawing.
            nx = int(min(max(x + length * math.sin(angle), 0), w))
            ny = int(min(max(y + length * math.cos(angle), 0), h))
            draw.line([(x, y), (nx, ny)], fill=255, width=width)
            r = width / 2
            for cx, cy in ((x, y), (nx, ny)):
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
            x, y = nx, ny
    if rng.random() < fam.box_proba:
        margin = round(fam.box_margin * scale)
        lo, hi = round(fam.box_min * scale), round(fam.box_max * scale)
        for _ in range(rng.integers(fam.min_boxes, fam.max_boxes + 1)):
            bw = int(rng.integers(lo, max(lo + 1, min(hi, w - 2 * margin - 1))))
            bh = int(rng.integers(lo, max(lo + 1, min(hi, h - 2 * margin - 1))))
            left = int(rng.integers(margin, max(margin + 1, w - margin - bw)))
            top = int(rng.integers(margin, max(margin + 1, h - margin - bh)))
            draw.rectangle([left, top, left + bw - 1, top + bh - 1], fill=255)
    return np.asarray(img) > 127


def random_blob(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """An object-sized irregular hole of 5-30% of the area: overlapping ellipses around a random
    centre, the outline of a removed object rather than a scratch."""
    target = rng.uniform(0.05, 0.3) * height * width
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    side = math.sqrt(target)
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    for _ in range(int(rng.integers(3, 8))):
        y, x = cy + rng.normal(0, side / 4), cx + rng.normal(0, side / 4)
        ry, rx = side * rng.uniform(0.2, 0.5), side * rng.uniform(0.2, 0.5)
        draw.ellipse([x - rx, y - ry, x + rx, y + ry], fill=255)
    mask = np.asarray(img) > 127
    return mask if mask.any() else random_box(height, width, rng)


def random_box(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A box of 5-30% of the area at a random place: object-sized holes for training."""
    area = rng.uniform(0.05, 0.3)
    aspect = np.exp(rng.uniform(-0.7, 0.7))
    bh = int(np.clip(round(height * np.sqrt(area * aspect)), 4, height - 2))
    bw = int(np.clip(round(width * np.sqrt(area / aspect)), 4, width - 2))
    top, left = int(rng.integers(0, height - bh + 1)), int(rng.integers(0, width - bw + 1))
    mask = np.zeros((height, width), bool)
    mask[top : top + bh, left : left + bw] = True
    return mask


def training_masks(count: int, size: int, seed: int = 0) -> np.ndarray:
    """A bank of ``count`` square training masks (``uint8``, 1 = hole).

    Holes are drawn from the thin, medium and thick families, at the scale of a 256 px image
    and at half that, so the model sees the hole sizes that inference at 256-512 px brings;
    a third are object-sized: random boxes and blobs (``random_blob``), the holes left by
    removing an object. Crops under 256 px draw them shrunk to their size, as ``family_for``
    does: at 256 px scale the strokes of a 32 px crop cover it, and each mask is redrawn 20
    times in vain (half a minute per bank).
    """
    rng = np.random.default_rng(seed)
    shrink = min(1.0, size / 256)
    bank = np.empty((count, size, size), np.uint8)
    for i in range(count):
        choice = rng.random()
        if choice < 0.15:
            bank[i] = random_box(size, size, rng)
        elif choice < 0.35:
            bank[i] = random_blob(size, size, rng)
        else:
            kind = ("thin", "medium", "thick")[int(rng.integers(3))]
            bank[i] = random_mask(
                size, size, kind, rng, scale=float(rng.choice([0.5, 1.0])) * shrink
            )
    return bank
