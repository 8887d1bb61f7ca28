"""Image and mask files: loading, saving and atomic writes.

Everything that touches image files goes through here so that every command accepts the same
formats, fails with the same one-line messages, and never leaves a half-written output behind.
No TensorFlow here: this module is imported by commands that must start fast.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

from imgfix.errors import ImgfixError, InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

MAX_PIXELS = 200_000_000
"""Images with more pixels are refused: they would exhaust memory (or are decompression bombs)."""

_SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
PNG_COMPRESS_LEVEL = 3
"""zlib level of PNG outputs. On a 512 x 512 photo, level 3 encodes in 28 ms against 68 ms for
zlib's default 6, for a file 8% larger (OpenCV writes level 1 by default: 21 ms, 10% larger)."""
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)
_ORIENTATION = 0x0112

# Pillow refuses images over 2x its own limit while still opening them; raise its limit to ours so
# that our own check (with a clear message) is the one that fires.
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass
class Picture:
    """Decoded pixels plus the metadata that should survive into the output file."""

    pixels: np.ndarray
    format: str | None = None
    info: dict = field(default_factory=dict)
    path: Path | None = None
    frames: int = 1  # of an animation (GIF, APNG, WebP), of which ``pixels`` is the first

    @property
    def channels(self) -> int:
        return 1 if self.pixels.ndim == 2 else int(self.pixels.shape[2])

    @property
    def has_alpha(self) -> bool:
        return self.channels in (2, 4)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def max_value(self) -> int:
        return 65535 if self.pixels.dtype == np.uint16 else 255

    def colour(self) -> np.ndarray:
        """H x W x 3 in the pixels' own dtype, without a copy: grey is broadcast, alpha left
        out. The inpainting pipeline reads its crops from here, so a 12 MP photo is never
        converted to float whole."""
        px = self.pixels if self.pixels.ndim == 3 else self.pixels[:, :, None]
        if px.shape[2] >= 3:
            return px[:, :, :3]
        return np.broadcast_to(px[:, :, :1], (self.height, self.width, 3))

    def rgb(self) -> np.ndarray:
        """Float32 H x W x 3 in [0, 1] for the models: grey is replicated, alpha dropped."""
        return self.colour().astype(np.float32) / np.float32(self.max_value)

    def with_fill(self, rgb: np.ndarray, hole: np.ndarray) -> Picture:
        """Copy with the hole replaced by `rgb` (H x W x 3 floats in [0, 1]); everything else
        (and all alpha) stays bit-exact."""
        rgb = np.asarray(rgb)
        if rgb.shape != (self.height, self.width, 3):
            raise ValueError(f"rgb is {rgb.shape}, expected {(self.height, self.width, 3)}")
        return self.with_patches([((0, 0, self.height, self.width), rgb)], hole)

    def with_patches(
        self,
        patches: Iterable[tuple[tuple[int, int, int, int], np.ndarray]],
        hole: np.ndarray,
        in_place: bool = False,
    ) -> Picture:
        """Copy with the hole pixels inside each ``(top, left, bottom, right)`` box taken from
        its patch (the box's (h, w, 3) floats in [0, 1]); everything else stays bit-exact.
        ``in_place`` writes into these pixels instead of a copy (36 MB less at 12 MP).

        Only the hole is quantised, so an inpainting round trip never degrades the known pixels.
        """
        hole = np.asarray(hole, dtype=bool)
        if hole.shape != (self.height, self.width):
            raise ValueError(f"hole is {hole.shape}, image is {(self.height, self.width)}")
        squeeze = self.pixels.ndim == 2
        out = self.pixels[:, :, None] if squeeze else self.pixels
        if not (in_place and out.flags.writeable):
            out = out.copy()
        top_value = self.max_value
        for (top, left, bottom, right), patch in patches:
            crop_hole = hole[top:bottom, left:right]
            values = np.asarray(patch)[crop_hole]
            if self.channels in (1, 2):
                columns = [_finite(values) @ _LUMA]
            else:
                columns = [values[:, c] for c in range(3)]
            target = out[top:bottom, left:right]
            # One channel at a time in float64: a patch may cover most of a 12 MP photo.
            for c, column in enumerate(columns):
                level = np.clip(np.rint(_finite(column) * top_value), 0, top_value)
                target[crop_hole, c] = level.astype(out.dtype)
        return replace(self, pixels=out[:, :, 0] if squeeze else out, info=dict(self.info))


def _finite(values: np.ndarray) -> np.ndarray:
    """Float64 with NaN as 0 and infinities as 1 and 0: a fill never writes garbage pixels."""
    return np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an image")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.0f} MP" if pixels >= 10e6 else f"{pixels / 1e6:.2g} MP"


def _is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _open(path: Path) -> tuple[Image.Image, str | None, dict, int]:
    """Open, fully decode and orient an image's first frame; returns (image, format, info to
    carry, number of frames)."""
    path = Path(path)
    _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                fmt = im.format
                width, height = im.size
                if width * height > MAX_PIXELS:
                    raise InputError(
                        f"{path}: image too large ({width}x{height} = "
                        f"{_megapixels(width * height)}, the limit is {_megapixels(MAX_PIXELS)})"
                    )
                im.load()
                oriented = ImageOps.exif_transpose(im)
                if oriented is im:
                    oriented = im.copy()
                info = _carried_info(im)
                frames = _frames(im)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: image too large ({_reason(exc)})") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except Image.UnidentifiedImageError:
        reason = "empty file" if _is_empty(path) else "not an image, or an unsupported format"
        raise InputError(f"{path}: cannot read image ({reason})") from None
    except Exception as exc:  # corrupt files make Pillow raise almost anything
        raise InputError(f"{path}: cannot read image ({_reason(exc)})") from None
    return oriented, fmt, info, frames


def _frames(im: Image.Image) -> int:
    """Frames of an animation, 1 for a still image; counted last, since counting seeks."""
    if not getattr(im, "is_animated", False):
        return 1
    try:
        return max(2, int(im.n_frames))
    except Exception:  # a damaged later frame: still more than one
        return 2


def _carried_info(im: Image.Image) -> dict:
    """EXIF (orientation reset, since pixels are already rotated), ICC profile and DPI."""
    info: dict = {}
    if im.info.get("icc_profile"):
        info["icc_profile"] = im.info["icc_profile"]
    dpi = im.info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2:
        info["dpi"] = (float(dpi[0]), float(dpi[1]))
    # Only real EXIF blocks (JPEG/PNG/WebP); for TIFF getexif() returns the file's own tags.
    if im.info.get("exif"):
        with contextlib.suppress(Exception):
            exif = Image.Exif()
            exif.load(im.info["exif"])
            if _ORIENTATION in exif:
                exif[_ORIENTATION] = 1
            info["exif"] = exif.tobytes()
    return info


def _to_array(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, bytes | None]:
    """Pillow image -> (H x W x C uint8/uint16 array, ICC profile still valid for it)."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im)
        if arr.dtype != np.uint16:
            arr = np.clip(arr, 0, 65535).astype(np.uint16)
        return arr[:, :, None], icc
    if mode == "F":
        raise ValueError("32-bit float images are not supported")
    if mode == "CMYK":
        return np.asarray(_cmyk_to_rgb(im, icc)), None
    if mode in ("P", "PA"):
        im = im.convert("RGBA" if mode == "PA" or im.has_transparency_data else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in mode else "RGB")
        icc = None
    arr = np.asarray(im)
    return (arr[:, :, None] if arr.ndim == 2 else arr), icc


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Use the embedded CMYK profile when there is one; Pillow's naive formula otherwise."""
    if icc:
        with contextlib.suppress(Exception):
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(
                im, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
    return im.convert("RGB")


def load_image(path: str | os.PathLike) -> Picture:
    """Load any supported image as uint8 (uint16 for 16-bit grey) pixels, EXIF-oriented.

    Palette images become RGB (RGBA when they have transparency), 1-bit becomes L, CMYK
    becomes RGB (through its ICC profile when it has one). Pillow decodes 16-bit colour as 8-bit;
    only 16-bit grey keeps its depth. Raises InputError with a one-line "<file>: <reason>"
    message on any failure, including truncated files (the image is fully decoded here). An
    animation (GIF, APNG, WebP) gives its first frame; ``Picture.frames`` counts them all.
    """
    path = Path(path)
    im, fmt, info, frames = _open(path)
    try:
        pixels, icc = _to_array(im, info.get("icc_profile"))
    except (OSError, ValueError, MemoryError) as exc:
        raise InputError(f"{path}: cannot read image ({_reason(exc)})") from None
    if icc is None:
        info.pop("icc_profile", None)
    # Writeable (Pillow's arrays are views of read-only bytes), so a fill can go in place.
    pixels = np.require(pixels, requirements=["C_CONTIGUOUS", "WRITEABLE"])
    return Picture(pixels=pixels, format=fmt, info=info, path=path, frames=frames)


def load_mask(
    path: str | os.PathLike,
    size: tuple[int, int],
    *,
    invert: bool = False,
    resize: bool = False,
) -> np.ndarray:
    """Load a mask as a bool H x W array, True = hole; `size` is the image's (width, height).

    Grey >= 128 is hole. A mask painted as transparency (RGBA/LA with constant colour and some
    transparent pixels) uses alpha >= 128 instead, since its colour carries no information.
    """
    path = Path(path)
    im, _, _, _ = _open(path)
    try:
        level = _mask_level(im)
    except (OSError, ValueError, MemoryError) as exc:
        raise InputError(f"{path}: cannot read mask ({_reason(exc)})") from None
    hole = level >= 128
    if invert:
        hole = ~hole
    width, height = int(size[0]), int(size[1])
    if (hole.shape[1], hole.shape[0]) != (width, height):
        if not resize:
            raise InputError(
                f"{path}: mask is {hole.shape[1]}x{hole.shape[0]} but the image is "
                f"{width}x{height} (use --resize-mask to scale it)"
            )
        scaled = Image.fromarray(hole.astype(np.uint8) * 255).resize((width, height), Image.NEAREST)
        hole = np.asarray(scaled) >= 128
    return hole


def _mask_level(im: Image.Image) -> np.ndarray:
    """0..255 level per pixel that the 128 threshold applies to."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im).astype(np.int64)
        return np.where(arr >= 128 * 257, 255, 0).astype(np.uint8)
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA" if im.mode == "PA" or im.has_transparency_data else "RGB")
    if im.mode in ("RGBA", "LA", "RGBa", "La"):
        im = im.convert("LA" if im.mode in ("LA", "La") else "RGBA")
        arr = np.asarray(im)
        colour, alpha = arr[:, :, :-1], arr[:, :, -1]
        if colour.size and colour.min() == colour.max() and alpha.min() < 255:
            return alpha
    return np.asarray(im.convert("L"))


def _to_pil(picture: Picture, fmt: str) -> Image.Image:
    """Pixels -> Pillow image in a mode the target format can store."""
    px = picture.pixels if picture.pixels.ndim == 3 else picture.pixels[:, :, None]
    channels = px.shape[2]
    if channels not in (1, 2, 3, 4):
        raise ValueError(f"cannot save an image with {channels} channels")
    if px.dtype == np.uint16:
        if channels == 1 and fmt in ("PNG", "TIFF"):
            return Image.fromarray(np.ascontiguousarray(px[:, :, 0], dtype="<u2"))
        px = ((px.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif px.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {px.dtype}")
    im = Image.fromarray(np.ascontiguousarray(px[:, :, 0] if channels == 1 else px))
    if fmt in ("JPEG", "BMP") and im.mode in ("LA", "RGBA"):
        im = _on_white(im)
    elif fmt == "WEBP" and im.mode in ("L", "LA"):
        im = im.convert("RGBA" if im.mode == "LA" else "RGB")
    return im


def _on_white(im: Image.Image) -> Image.Image:
    base = im.mode[:-1]
    background = Image.new(base, im.size, "white")
    background.paste(im.convert(base), mask=im.getchannel("A"))
    return background


def _icc_fits(icc: bytes, mode: str) -> bool:
    """A grey profile in an RGB file (grey saved as WebP) is invalid, and so is the reverse."""
    try:
        space = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile.xcolor_space.strip()
    except (OSError, ValueError, TypeError, AttributeError, ImageCms.PyCMSError):
        return False
    return space == ("GRAY" if mode in ("L", "LA", "I;16") else "RGB")


def can_write(path: str | os.PathLike) -> bool:
    """Whether ``save_image`` writes this path's format (from its suffix)."""
    return Path(path).suffix.lower() in _SAVE_FORMATS


def check_output(path: str | os.PathLike) -> Path:
    """Refuse, before any work, an output that ``save_image`` could not write: a folder, or an
    unknown format."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a file name (or use --out-dir)")
    if not can_write(path):
        known = ", ".join(sorted(_SAVE_FORMATS))
        raise InputError(f"{path}: unsupported output format (use one of {known})")
    return path


def save_image(picture: Picture, path: str | os.PathLike, *, quality: int = 95) -> Path:
    """Write `picture` atomically; the format comes from the suffix of `path`.

    JPEG: `quality`, 4:4:4 chroma. JPEG has no alpha channel (and Pillow's BMP keeps none), so
    transparent images are composited on white there. WebP: lossless, colour under transparent
    pixels kept (inpainting output should not add compression artefacts). 16-bit grey stays
    16-bit in PNG and TIFF and is rounded to 8 bits elsewhere. EXIF, ICC profile and DPI are kept
    where the format supports them. The target is replaced only once the file is complete.
    """
    path = check_output(path)
    fmt = _SAVE_FORMATS[path.suffix.lower()]
    im = _to_pil(picture, fmt)
    info = picture.info
    options: dict = {}
    icc = info.get("icc_profile")
    if fmt in ("JPEG", "PNG", "WEBP", "TIFF") and icc and _icc_fits(icc, im.mode):
        options["icc_profile"] = icc
    if fmt in ("JPEG", "PNG", "WEBP") and info.get("exif"):
        options["exif"] = info["exif"]
    if fmt in ("JPEG", "PNG", "TIFF", "BMP") and info.get("dpi"):
        options["dpi"] = info["dpi"]
    if fmt == "JPEG":
        options.update(quality=int(quality), subsampling=0)
    elif fmt == "WEBP":
        options.update(lossless=True, exact=True, quality=80, method=4)
    elif fmt == "PNG":
        options.update(optimize=False, compress_level=PNG_COMPRESS_LEVEL)
    elif fmt == "TIFF":
        options.update(compression="tiff_adobe_deflate")
    try:
        with atomic_path(path) as tmp:
            im.save(tmp, format=fmt, **options)
    except ImgfixError:
        raise
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except (OSError, ValueError) as exc:
        raise ImgfixError(f"{path}: cannot write image ({_reason(exc)})") from None
    return path


TEMP_PREFIX = ".imgfix-tmp-"
_STARTED = time.time()
_swept: set[Path] = set()


def is_temp(path: Path) -> bool:
    """A temporary file of ``atomic_path`` (this process's or a killed one's)."""
    return path.name.startswith(TEMP_PREFIX)


def _temp_name(path: Path) -> Path:
    """Hidden sibling that names this process and still ends with the full target name, so
    suffix checks (Pillow's format, Keras' ".keras" / ".weights.h5") see the same suffix.
    Lengths are counted in bytes (``os.fsencode``): Linux names are bytes, not always UTF-8."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    name = f"{TEMP_PREFIX}{token}-{path.name}"
    if len(os.fsencode(name)) > 240:
        name = f"{TEMP_PREFIX}{token}{''.join(path.suffixes[-2:])}"
    return path.with_name(name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or not a pid: leave its file alone
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temporary files a killed process left in ``folder``: older than this process
    and naming no live process. Returns what was deleted."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if not entry.name.startswith(TEMP_PREFIX):
                continue
            pid = entry.name[len(TEMP_PREFIX) :].split("-", 1)[0]
            with contextlib.suppress(OSError):
                if (pid.isdigit() and _alive(int(pid))) or entry.stat().st_mtime >= _STARTED:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path` in one step.

    Readers never see a half-written file and a crash or exception leaves the old file intact
    (the temporary file is removed). Missing parent folders are created. A failing write (a
    full disk, a read-only folder) raises a one-line error naming `path`, not the temporary.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(path.parent, exc) from exc
    if path.parent not in _swept:  # once per folder and process
        _swept.add(path.parent)
        remove_stale_temps(path.parent)
    tmp = _temp_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise ImgfixError(f"{path}: nothing was written")
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
        raise


def _write_error(path: Path, exc: OSError) -> ImgfixError:
    if isinstance(exc, PermissionError):
        return InputError(f"{path}: permission denied")
    return ImgfixError(f"{path}: cannot write ({exc.strerror or _reason(exc)})")


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 text atomically (manifests, model cards): all or nothing."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
