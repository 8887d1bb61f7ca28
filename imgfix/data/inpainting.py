"""tf.data input pipeline for inpainting: random photo crops paired with random hole masks.

Photos are decoded once into memory (a corpus of a few hundred wallpapers is a few hundred MB);
each sample is a square crop of a random size, resized to ``image_size``, so the model sees
objects at many scales. Masks come from a pre-drawn bank, flipped and rotated on the fly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from imgfix.errors import InputError
from imgfix.io import IMAGE_SUFFIXES
from imgfix.masks import training_masks


def list_images(data_dir: Path) -> list[Path]:
    """The corpus's images: those named in ``manifest.json`` if there is one, else every image
    file below ``data_dir``, sorted."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"{data_dir}: not a directory")
    manifest = data_dir / "manifest.json"
    if manifest.is_file():
        files = [data_dir / e["file"] for e in json.loads(manifest.read_text())["images"]]
    else:
        files = sorted(p for p in data_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{data_dir}: no images found")
    return files


def split_holdout(files: list[Path], every: int = 10) -> tuple[list[Path], list[Path]]:
    """About one photo in ``every`` is held out for validation, the rest is for training. The
    choice hangs on each file's content alone (not its name or place in the list, which
    ``imgfix data photos`` renumbers), so a photo stays on its side when the corpus grows and a
    training campaign's validation curve stays comparable across corpus versions."""
    if len(files) < 2:
        return files, files
    val = [f for f in files if _content_bucket(f) % every == 0] or files[-1:]
    return [f for f in files if f not in val], val


def _content_bucket(path: Path) -> int:
    return int.from_bytes(hashlib.sha256(Path(path).read_bytes()).digest()[:8], "big")


def load_photos(files: list[Path], min_side: int) -> list[np.ndarray]:
    """Decode photos as RGB ``uint8`` arrays; any with a short side below ``min_side`` is
    upscaled to it."""
    photos = []
    for path in files:
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                if min(im.size) < min_side:
                    factor = min_side / min(im.size)
                    size = (round(im.width * factor), round(im.height * factor))
                    im = im.resize(size, Image.BICUBIC)
                photos.append(np.asarray(im))
        except OSError as exc:
            raise InputError(f"{path}: cannot read image ({exc})") from exc
    return photos


def sample_crops(
    photos: list[np.ndarray], image_size: int, rng: np.random.Generator, max_zoom: float = 3.0
) -> Iterator[np.ndarray]:
    """Endless random crops: a square of 1x to ``max_zoom``x ``image_size`` (log-uniform),
    resized to ``image_size``, flipped left-right half the time."""
    while True:
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape[:2]
        zoom = np.exp(rng.uniform(0.0, np.log(max(1.0, min(max_zoom, min(h, w) / image_size)))))
        side = min(h, w, round(image_size * zoom))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = photo[top : top + side, left : left + side]
        if side != image_size:
            crop = Image.fromarray(crop).resize((image_size, image_size), Image.BILINEAR)
            crop = np.asarray(crop)
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        yield crop


def transform_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of the eight flips and rotations of a square mask."""
    mask = np.rot90(mask, int(rng.integers(4)))
    return mask[:, ::-1] if rng.random() < 0.5 else mask


MASK_BANK = 3000
"""Training masks drawn up front; the dataset picks one per crop and flips or rotates it."""


def inpainting_dataset(
    photos: list[np.ndarray],
    image_size: int,
    batch_size: int,
    seed: int = 0,
    mask_bank: int = MASK_BANK,
):
    """An endless ``tf.data.Dataset`` of ``(image, mask)`` batches, float32, image in [0, 1],
    mask ``(B, S, S, 1)`` with 1 in the hole."""
    import tensorflow as tf

    masks = training_masks(mask_bank, image_size, seed=seed + 1)

    def samples():
        rng = np.random.default_rng(seed)
        for crop in sample_crops(photos, image_size, rng):
            mask = transform_mask(masks[int(rng.integers(len(masks)))], rng)
            yield crop, np.ascontiguousarray(mask)[..., None]

    spec = (
        tf.TensorSpec((image_size, image_size, 3), tf.uint8),
        tf.TensorSpec((image_size, image_size, 1), tf.uint8),
    )
    ds = tf.data.Dataset.from_generator(samples, output_signature=spec)
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(lambda x, m: (tf.cast(x, tf.float32) / 255.0, tf.cast(m, tf.float32)))
    return ds.prefetch(tf.data.AUTOTUNE)


def validation_set(
    photos: list[np.ndarray], image_size: int, count: int = 64, seed: int = 1234
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed set of held-out ``(images, masks)`` arrays, the same on every run."""
    rng = np.random.default_rng(seed)
    crops = sample_crops(photos, image_size, rng)
    images = np.stack([next(crops) for _ in range(count)]).astype(np.float32) / 255.0
    masks = training_masks(count, image_size, seed=seed)[..., None].astype(np.float32)
    return images, masks
