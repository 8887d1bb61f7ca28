"""Inpainting pipeline: fill the holes of photos of any size with a model trained on small crops.

The model never sees the whole photo. Following IOPaint's "crop" strategy, each hole region is
cut out with some context around it; a crop whose long side exceeds ``work_size`` is shrunk to
it, filled, and the fill scaled back. Only hole pixels are pasted into a copy of the photo, so
every pixel outside the hole comes back bit-exact, and memory depends on the holes' sizes, not on
the photo's: a scratch on a 12 MP photo costs the model one crop a few hundred pixels wide.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imgfix import io, masks, runtime
from imgfix.errors import ImgfixError, InputError
from imgfix.pipelines import texture
from imgfix.pipelines.shard import Shard

# Context around a hole region, in pixels: at least MIN_MARGIN (enough for thin scratches and
# the network's receptive field, and cheap), growing to MARGIN_FRACTION of the region's short
# side so a big hole keeps about as much context as the training masks had (holes up to half
# the image). The short side, because the context a fill needs grows with how far the hole's
# middle is from its edge: a long thin scratch needs little, and less context means less
# downscaling. A fixed margin (IOPaint uses 128 px) can be passed to Inpainter instead.
MIN_MARGIN = 64
MARGIN_FRACTION = 0.5
DEFAULT_WORK_SIZE = 512
DEFAULT_MAX_BATCH = 4
OUTPUT_TAG = ".inpainted"

Box = tuple[int, int, int, int]


@dataclass
class _Crop:
    """One model input prepared from a region of the photo."""

    box: Box  # (top, left, bottom, right) in the photo
    image: np.ndarray  # (H, W, 3) float32, padded to the model's multiple
    mask: np.ndarray  # (H, W, 1) float32, 1 = hole
    size: tuple[int, int]  # (h, w) of the crop at model resolution, before padding


class Inpainter:
    """Runs an inpainting model on the hole regions of images of any size.

    ``model`` is called as ``model(image=..., mask=...)`` on float32 NumPy batches (image in
    [0, 1], mask 1 = hole) whose sides are multiples of ``card["multiple"]``, and returns the
    filled batch: a ``runtime.LiteRTModel`` or ``runtime.KerasModel``, so this class never knows
    which runtime runs it. ``margin`` fixes the context around each region in pixels (default:
    adaptive, see ``MIN_MARGIN``). ``max_batch`` crops of the same shape go through together.
    ``detail``: keyword options of ``texture.add_detail``, which then copies each crop's known
    texture onto the model's fill of that crop (``imgfix inpaint --texture``).
    """

    def __init__(
        self,
        model: Any,
        card: dict,
        *,
        work_size: int = DEFAULT_WORK_SIZE,
        margin: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        detail: dict | None = None,
    ) -> None:
        self.model = model
        self.card = card
        self.multiple = max(1, int(card.get("multiple") or 1))
        if work_size < self.multiple:
            raise ValueError(f"work_size {work_size} is smaller than the model's multiple")
        if margin is not None and margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.work_size = int(work_size)
        self.margin = margin
        self.max_batch = max(1, int(max_batch))
        self.detail = detail

    @property
    def runtime(self) -> str:
        return getattr(self.model, "runtime", "unknown")

    def release(self) -> None:
        """Free the model's working memory until the next fill (see ``runtime``)."""
        self.model.release()

    def regions(self, hole: np.ndarray) -> list[Box]:
        """The non-overlapping crops ``fill`` runs the model on: hole regions plus context."""
        if self.margin is not None:
            return masks.hole_regions(hole, self.margin)
        return masks.hole_regions(
            hole, lambda h, w: max(MIN_MARGIN, int(MARGIN_FRACTION * min(h, w)))
        )

    def fill(self, rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """A float32 copy of ``rgb`` (H x W x 3, see ``patches``) with the ``hole`` filled.

        Pixels outside the hole are copied, never computed, so they are exact.
        """
        out = _unit(np.asarray(rgb), copy=True)
        for (top, left, bottom, right), filled in self.patches(rgb, hole):
            crop_hole = hole[top:bottom, left:right]
            out[top:bottom, left:right][crop_hole] = filled[crop_hole]
        return out

    def patches(self, rgb: np.ndarray, hole: np.ndarray) -> Iterator[tuple[Box, np.ndarray]]:
        """The model's fill of each hole region, as ``(box, fill)``: ``fill`` is the float32
        (h, w, 3) crop of ``box`` in [0, 1], meaningful at the box's hole pixels.

        ``rgb`` is H x W x 3, float in [0, 1] or integer pixels (scaled by their dtype's
        maximum), so a large photo is never converted whole: only crops are. Boxes never
        overlap, so pasting the patches in any order gives the same image.
        """
        rgb = np.asarray(rgb)
        hole = np.asarray(hole, dtype=bool)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or hole.shape != rgb.shape[:2]:
            raise ValueError(f"need rgb (H, W, 3) and hole (H, W), got {rgb.shape}, {hole.shape}")
        # Group crops by shape so they batch; flush early so memory stays bounded by a few
        # batches however many regions the hole has.
        pending: dict[tuple[int, ...], list[_Crop]] = {}
        # Largest first: LiteRT then plans its memory once, for the largest crop.
        boxes = sorted(self.regions(hole), key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        for box in boxes:
            crop = self._prepare(rgb, hole, box)
            group = pending.setdefault(crop.image.shape, [])
            group.append(crop)
            if len(group) >= self.max_batch:
                yield from self._finish(rgb, hole, pending.pop(crop.image.shape))
            elif sum(len(g) for g in pending.values()) > 2 * self.max_batch:
                for key in list(pending):
                    yield from self._finish(rgb, hole, pending.pop(key))
        for group in pending.values():
            yield from self._finish(rgb, hole, group)

    def _finish(
        self, rgb: np.ndarray, hole: np.ndarray, crops: list[_Crop]
    ) -> Iterator[tuple[Box, np.ndarray]]:
        """``_run``, then, with ``detail``, the crop's known texture copied onto its fill."""
        for box, filled in self._run(crops):
            if self.detail is not None:
                top, left, bottom, right = box
                crop_hole = hole[top:bottom, left:right]
                crop = _unit(rgb[top:bottom, left:right], copy=True)
                crop[crop_hole] = filled[crop_hole]
                filled = texture.add_detail(crop, crop_hole, **self.detail)
            yield box, filled

    def _prepare(self, rgb: np.ndarray, hole: np.ndarray, box: Box) -> _Crop:
        top, left, bottom, right = box
        h, w = bottom - top, right - left
        size = (h, w)
        if max(h, w) > self.work_size:
            scale = self.work_size / max(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            # Channel by channel, so a 12 MP crop is never float whole (_resize).
            image = _resize(rgb[top:bottom, left:right], size, Image.Resampling.BOX)
            # Any pixel touched by the hole stays hole, so no hole colour bleeds into the context.
            crop_hole = hole[top:bottom, left:right, None]
            mask = (_resize(crop_hole, size, Image.Resampling.BOX) > 0).astype(np.float32)
        else:
            image = _unit(rgb[top:bottom, left:right])
            mask = hole[top:bottom, left:right].astype(np.float32)[..., None]
        # The model never sees what was under the hole.
        image = image * (1.0 - mask)
        # Reflect both, so the padding is a mirror of the scene with its hole mirrored too.
        pad = ((0, -size[0] % self.multiple), (0, -size[1] % self.multiple), (0, 0))
        image = np.pad(image, pad, mode="reflect")
        mask = np.pad(mask, pad, mode="reflect")
        return _Crop(box, image, mask, size)

    def _run(self, crops: list[_Crop]) -> Iterator[tuple[Box, np.ndarray]]:
        if not crops:
            return
        images = np.stack([c.image for c in crops])
        mask = np.stack([c.mask for c in crops])
        result = np.asarray(self.model(image=images, mask=mask))
        for crop, filled in zip(crops, result, strict=True):
            top, left, bottom, right = crop.box
            filled = filled[: crop.size[0], : crop.size[1]].astype(np.float32)
            if crop.size != (bottom - top, right - left):
                filled = _resize(filled, (bottom - top, right - left), Image.Resampling.BICUBIC)
            yield crop.box, np.clip(filled, 0.0, 1.0, out=filled)


def _unit(pixels: np.ndarray, copy: bool = False) -> np.ndarray:
    """Float32 in [0, 1]: integer pixels divided by their dtype's maximum, booleans as 0 and 1,
    floats clipped."""
    if pixels.dtype == bool:
        return pixels.astype(np.float32)
    if np.issubdtype(pixels.dtype, np.integer):
        return pixels.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)
    return np.clip(pixels.astype(np.float32, copy=copy), 0.0, 1.0)


def _resize(array: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    """Resize an (H, W, C) array (any dtype ``_unit`` takes) to ``size`` (h, w) as float32 in
    [0, 1], channel by channel in Pillow's float mode: full precision, no TensorFlow op per
    crop, and one channel in float at a time."""
    h, w = size
    out = np.empty((h, w, array.shape[2]), np.float32)
    for c in range(array.shape[2]):
        channel = Image.fromarray(_unit(array[..., c], copy=True))
        out[..., c] = np.asarray(channel.resize((w, h), resample))
    return out


def load_inpainter(
    name: str | None = None,
    zoo: str | Path | None = None,
    settings: runtime.Settings | None = None,
    detail: dict | None = None,
) -> Inpainter:
    """The zoo's inpainter ``name`` (default: ``zoo.DEFAULT_INPAINTER``), ready to fill, on the
    runtime ``settings`` select (LiteRT on the CPU); ``detail`` as ``Inpainter`` takes it."""
    from imgfix import zoo as model_zoo

    name = name or model_zoo.DEFAULT_INPAINTER
    model, card = runtime.load(name, zoo, "inpainter", settings)
    # LiteRT gains nothing from batching crops, while each crop in a batch adds its working
    # memory; TensorFlow amortises its per-call overhead over a batch.
    batch = 1 if model.runtime == "litert" else DEFAULT_MAX_BATCH
    work_size = int(card.get("work_size", DEFAULT_WORK_SIZE))
    return Inpainter(model, card, work_size=work_size, max_batch=batch, detail=detail)


# --- files ------------------------------------------------------------------------------------


@dataclass
class InpaintOptions:
    """How to read the mask and write the result; the CLI's options, one to one."""

    dilate: int = 0
    invert_mask: bool = False
    resize_mask: bool = False
    overwrite: bool = False
    quality: int = 95


@dataclass
class InpaintResult:
    """What happened to one image; ``ok=False`` carries the one-line reason in ``message``."""

    input: Path
    mask: Path | None
    output: Path | None
    ok: bool
    message: str = ""
    warning: str | None = None
    hole_fraction: float = 0.0
    seconds: float = 0.0
    pending: Future | None = field(default=None, repr=False)  # the write, in batch mode

    def to_dict(self) -> dict:
        """JSON-ready form for ``--json``: paths as strings."""
        return {
            "input": str(self.input),
            "mask": None if self.mask is None else str(self.mask),
            "output": None if self.output is None else str(self.output),
            "ok": self.ok,
            "message": self.message,
            "warning": self.warning,
            "hole_fraction": round(float(self.hole_fraction), 6),
            "seconds": round(float(self.seconds), 3),
        }


def _is_image(path: Path) -> bool:
    """An image file to take from a folder: not a temporary file a killed run left behind."""
    return path.is_file() and path.suffix.lower() in io.IMAGE_SUFFIXES and not io.is_temp(path)


def expand_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, in order; each directory replaced by its images, sorted by name.

    Directories skip earlier results (``*.inpainted.*``) so rerunning on a folder does not
    inpaint its own outputs. Duplicates are dropped: they would collide on the same output.
    """
    found: list[Path] = []
    empty_dirs: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            images = sorted(
                p for p in path.iterdir() if _is_image(p) and not p.stem.endswith(OUTPUT_TAG)
            )
            if not images:
                empty_dirs.append(str(path))
            found.extend(images)
        elif path.exists():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or directory")
    if not found:
        where = ", ".join(empty_dirs) or "the arguments"
        raise InputError(f"{where}: no images found ({' '.join(io.IMAGE_SUFFIXES)})")
    unique: dict[Path, Path] = {}
    for p in found:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def default_output(image: str | Path, out_dir: str | Path | None = None) -> Path:
    """``photo.jpg`` -> ``photo.inpainted.jpg``, next to the input or in ``out_dir``; the suffix,
    hence the format, is the input's, or ``.png`` for one imgfix cannot write (a GIF)."""
    image = Path(image)
    folder = Path(out_dir) if out_dir is not None else image.parent
    suffix = image.suffix if io.can_write(image) else ".png"
    return folder / f"{image.stem}{OUTPUT_TAG}{suffix}"


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _format_for(path: Path) -> str | None:
    Image.init()
    return Image.registered_extensions().get(path.suffix.lower())


def inpaint_file(
    inpainter: Inpainter,
    image: str | Path,
    mask: str | Path,
    output: str | Path,
    options: InpaintOptions | None = None,
    last: bool = False,
    writer: Executor | None = None,
) -> InpaintResult:
    """Inpaint one image file with one mask file and write ``output``. ``last``: no image
    follows, so the model's working memory is freed before the output is encoded, and a
    12 MP photo peaks at the larger of the two rather than their sum. ``writer``: encode and
    write the output there, and return at once with the write in ``result.pending`` (the
    batch loop overlaps it with the next fill).

    Raises InputError for bad input (unreadable files, mask size mismatch, an output that
    exists or is the input, without ``overwrite``) and ImgfixError for runtime failures.
    """
    options = options or InpaintOptions()
    start = time.perf_counter()
    image, mask, output = Path(image), Path(mask), Path(output)
    if output.exists() and _same_file(output, mask):
        raise InputError(f"{output}: output would overwrite the mask")
    if output.exists() and not options.overwrite:
        what = "is the input image" if _same_file(output, image) else "exists"
        raise InputError(f"{output}: output {what}; use --overwrite to replace it")

    picture = io.load_image(image)
    hole = io.load_mask(
        mask,
        (picture.width, picture.height),
        invert=options.invert_mask,
        resize=options.resize_mask,
    )
    hole = masks.dilate(hole, options.dilate)
    runtime.trim_heap()
    check_hole(hole, mask, options)
    notes, pending, all_frames = [], None, False
    if not hole.any():
        notes.append(f"{mask}: mask is empty; image written unchanged")
        all_frames = _write_unchanged(picture, image, output, options)
    else:
        # Only this function holds the decoded picture, so the fill goes into its pixels. That is
        # safe while patches are still being computed: crop boxes never overlap, and each crop
        # is copied before its box is written.
        filled = picture.with_patches(inpainter.patches(picture.colour(), hole), hole, True)
        if last:
            inpainter.release()
        if writer is None:
            io.save_image(filled, output, quality=options.quality)
        else:
            pending = writer.submit(io.save_image, filled, output, quality=options.quality)
    if picture.frames > 1 and not all_frames:
        notes.insert(
            0, f"{image}: an animation of {picture.frames} frames; only the first is inpainted"
        )
    return InpaintResult(
        input=image,
        mask=mask,
        output=output,
        ok=True,
        warning="; ".join(notes) or None,
        hole_fraction=float(hole.mean()),
        seconds=time.perf_counter() - start,
        pending=pending,
    )


def check_hole(hole: np.ndarray, mask: Path, options: InpaintOptions) -> None:
    """Refuse a hole that covers the whole image: nothing is left to fill it from."""
    if hole.size and hole.all():
        grown = f" after --dilate {options.dilate}" if options.dilate else ""
        raise InputError(
            f"{mask}: the hole covers the whole image{grown}; nothing is left to fill it from"
        )


def _write_unchanged(
    picture: io.Picture, image: Path, output: Path, options: InpaintOptions
) -> bool:
    """Copy the file's bytes when the format stays the same (no JPEG re-encoding loss, and
    every frame of an animation kept); otherwise convert. True when the bytes are kept."""
    if _same_file(image, output):
        return True
    if picture.format is not None and _format_for(output) == picture.format:
        with io.atomic_path(output) as temp:
            shutil.copyfile(image, temp)
        return True
    io.save_image(picture, output, quality=options.quality)
    return False


def _match_masks(mask_dir: Path) -> dict[str, list[Path]]:
    by_stem: dict[str, list[Path]] = {}
    for p in sorted(mask_dir.iterdir()):
        if _is_image(p):
            by_stem.setdefault(p.stem, []).append(p)
    return by_stem


def inpaint_batch(
    inpainter: Inpainter,
    images: Iterable[str | Path],
    mask: str | Path,
    out_dir: str | Path | None,
    options: InpaintOptions | None = None,
    on_result: Callable[[InpaintResult], None] | None = None,
    shard: Shard | None = None,
) -> list[InpaintResult]:
    """Inpaint many images, each with ``mask`` (one file for all) or its namesake in ``mask``
    (a directory, matched by file stem). Outputs go to ``out_dir`` (created), or next to inputs.

    One bad file does not stop the batch: its failure is recorded and the rest go on.
    ``on_result`` is called after each image, e.g. to advance a progress bar. ``shard``: only
    its share of ``images`` (``pipelines.shard``), each written as the whole batch writes it.
    """
    options = options or InpaintOptions()
    mask = Path(mask)
    if not mask.exists():
        raise InputError(f"{mask}: no such file or directory")
    by_stem = _match_masks(mask) if mask.is_dir() else None
    if out_dir is not None:
        out_dir = Path(out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{out_dir}: cannot create output folder ({exc.strerror})") from exc

    results: list[InpaintResult] = []
    written: dict[Path, Path] = {}  # output -> input, to catch two inputs with one output name
    # Outputs of other shards' images, claimed unseen (as if written): two shards must never
    # race for one file, and the first image to want a name keeps it, as in the whole batch.
    elsewhere: dict[Path, Path] = {}

    def report(result: InpaintResult) -> None:
        results.append(_settled(result))
        if on_result is not None:
            on_result(results[-1])

    # One writer thread encodes image k while image k + 1 is filled; at most one write waits.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgfix-write") as writer:
        queued: InpaintResult | None = None
        for index, raw in enumerate(images):
            image = Path(raw)
            output = default_output(image, out_dir)
            if shard is not None and not shard.owns(index):
                elsewhere.setdefault(output.resolve(), image)
                continue
            image_mask: Path | None = mask
            start = time.perf_counter()
            try:
                if by_stem is not None:
                    candidates = [
                        m for m in by_stem.get(image.stem, []) if not _same_file(m, image)
                    ]
                    if not candidates:
                        raise InputError(f"{image}: no mask named {image.stem}.* in {mask}")
                    if len(candidates) > 1:
                        names = ", ".join(m.name for m in candidates)
                        raise InputError(f"{image}: several masks match in {mask} ({names})")
                    image_mask = candidates[0]
                previous = written.get(output.resolve())
                if previous is not None:
                    raise InputError(f"{output}: already written for {previous} in this batch")
                previous = elsewhere.get(output.resolve())
                if previous is not None:
                    raise InputError(f"{output}: the output of {previous}, in another shard")
                result = inpaint_file(inpainter, image, image_mask, output, options, writer=writer)
                written[output.resolve()] = image
            except (ImgfixError, OSError, ValueError) as exc:
                result = _failure(image, image_mask, exc, start)
            if queued is not None:
                report(queued)
            queued = result
        if queued is not None:
            report(queued)
    return results


def _settled(result: InpaintResult) -> InpaintResult:
    """``result`` once its write has finished: a failed write makes it a failure."""
    if result.pending is None:
        return result
    start = time.perf_counter() - result.seconds
    try:
        result.pending.result()
    except (ImgfixError, OSError, ValueError) as exc:
        return _failure(result.input, result.mask, exc, start)
    return replace(result, pending=None, seconds=time.perf_counter() - start)


def _failure(image: Path, mask: Path | None, exc: Exception, start: float) -> InpaintResult:
    """The failed result of one image, its message in one line naming the file."""
    if isinstance(exc, ImgfixError):
        message = str(exc)
    elif isinstance(exc, OSError):
        message = f"{exc.filename or image}: {exc.strerror or exc}"
    else:
        message = f"{image}: {exc}"
    return InpaintResult(
        input=image,
        mask=mask,
        output=None,
        ok=False,
        message=message,
        seconds=time.perf_counter() - start,
    )
