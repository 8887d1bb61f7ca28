"""Collect a clean folder of training photos from folders of arbitrary images.

Wallpaper collections ship the same picture in many resolutions and aspect ratios, plus
thumbnails and icons with transparency; training on those as they are would over-weight a few
pictures and teach the model transparent-grey edges. This module drops the small, the mostly
transparent and the (near-)duplicate images and writes the rest as uniform JPEGs + manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from imgfix.errors import InputError
from imgfix.io import IMAGE_SUFFIXES, Picture, atomic_write_text, load_image, save_image

HASH_SIDE = 16
"""Average hash of a 16x16 grey thumbnail: 256 bits, robust to rescaling and recompression."""
NEAR_DUPLICATE_BITS = 10
"""Hamming distance at or below which two hashes are the same picture."""
NEAR_DUPLICATE_COLOUR = 12.0
"""...and the mean absolute difference (0-255) of their colour thumbnails must be this small, so
recoloured variants (light/dark) and smooth gradients of different colours are not merged."""
TRANSPARENT_LIMIT = 0.10
"""Images with more than this fraction of (mostly) transparent pixels are icons, not photos."""
JPEG_QUALITY = 95

# Centre crops at these aspect ratios (width / height) are hashed too, so a 16:10 or portrait
# crop of a 16:9 wallpaper is recognised as the same picture.
_ASPECTS = (9 / 21, 9 / 16, 10 / 16, 3 / 4, 4 / 5, 1.0, 5 / 4, 4 / 3, 16 / 10, 16 / 9, 21 / 9)

HELD_OUT_PATTERNS = (
    r"skimage/data",
    r"sklearn/datasets/images",
    r"matplotlib/mpl-data/sample_data",
    r"cv2/samples",
    r"opencv[^/]*/(samples|doc|data)",
    r"doc/opencv",
)
"""Sample images of scikit-image, scikit-learn, matplotlib and OpenCV are reserved for
evaluation (benchmarks measure on them); training on them would inflate the scores."""
_HELD_OUT = re.compile("|".join(f"(?:{p})" for p in HELD_OUT_PATTERNS), re.IGNORECASE)

ProgressCallback = Callable[[int, int], None]


def is_held_out(path: str | os.PathLike) -> bool:
    """True for paths inside the evaluation-only sample data of the benchmark libraries."""
    text = Path(path).as_posix()
    with contextlib.suppress(OSError):
        text += "\n" + Path(path).resolve().as_posix()
    return bool(_HELD_OUT.search(text))


def _refuse_held_out(path: Path) -> None:
    if is_held_out(path):
        raise InputError(
            f"{path}: these are held-out evaluation images (library sample data), not training data"
        )


@dataclass
class _Candidate:
    order: int
    source: Path
    width: int
    height: int
    sha256: str
    hashes: np.ndarray  # (len(_ASPECTS) + 1, HASH_SIDE**2) bool; last row: the whole image
    thumbs: np.ndarray  # (len(_ASPECTS) + 1, 8, 8, 3) float32 colour thumbnails, same crops
    staged: Path
    out_width: int
    out_height: int
    aspect_index: int = 0

    @property
    def area(self) -> int:
        return self.width * self.height


def _find_images(sources: Sequence[Path], skip: Path) -> tuple[list[Path], dict[Path, Path]]:
    """Image files under `sources` in sorted order, and {alias: file} for links to a listed file.

    Held-out evaluation folders below a source (and links into them) are skipped.

    Wallpaper packages symlink one picture under a dozen resolution names; decoding it once and
    naming it after the real file is faster and less confusing.
    """
    found: set[Path] = set()
    for source in sources:
        if source.is_file():
            found.add(source)
            continue
        for root, dirs, names in os.walk(source):
            root_path = Path(root)
            dirs[:] = sorted(
                d
                for d in dirs
                if (root_path / d).resolve() != skip and not is_held_out(root_path / d)
            )
            for name in names:
                path = root_path / name
                wanted = name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")
                if wanted and not is_held_out(path):
                    found.add(path)
    by_target: dict[Path, list[Path]] = {}
    for path in found:
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            target = path
        by_target.setdefault(target, []).append(path)
    files: list[Path] = []
    aliases: dict[Path, Path] = {}
    for paths in by_target.values():
        paths.sort(key=lambda p: (p.is_symlink(), p.as_posix()))
        files.append(paths[0])
        aliases.update({alias: paths[0] for alias in paths[1:]})
    return sorted(files, key=lambda p: p.as_posix()), aliases


def _to_srgb_uint8(picture: Picture) -> tuple[np.ndarray | None, str]:
    """RGB uint8 composited on white, or (None, reason) when the image must be dropped."""
    px = picture.pixels if picture.pixels.ndim == 3 else picture.pixels[:, :, None]
    if px.dtype == np.uint16:
        px = ((px.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if picture.has_alpha:
        alpha = px[:, :, -1]
        if np.count_nonzero(alpha < 128) > TRANSPARENT_LIMIT * alpha.size:
            return None, "transparent"
        a = alpha.astype(np.uint16)[:, :, None]
        colour = px[:, :, :-1].astype(np.uint16)
        px = ((colour * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)
    if px.shape[2] == 1:
        px = np.repeat(px, 3, axis=2)
    icc = picture.info.get("icc_profile")
    if icc and picture.channels >= 3:
        with contextlib.suppress(Exception):
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                Image.fromarray(px), source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            px = np.asarray(converted)
    return np.ascontiguousarray(px), ""


def _centre_crop(im: Image.Image, aspect: float) -> Image.Image:
    width, height = im.size
    if width / height > aspect:
        new_width = max(1, round(height * aspect))
        left = (width - new_width) // 2
        return im.crop((left, 0, left + new_width, height))
    new_height = max(1, round(width / aspect))
    top = (height - new_height) // 2
    return im.crop((0, top, width, top + new_height))


def _fingerprints(im: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    crops = [_centre_crop(im, aspect) for aspect in _ASPECTS] + [im]
    hashes, thumbs = [], []
    for crop in crops:
        grey = np.asarray(crop.convert("L").resize((HASH_SIDE, HASH_SIDE), Image.BOX), np.float32)
        hashes.append((grey > grey.mean()).ravel())
        thumbs.append(np.asarray(crop.resize((8, 8), Image.BOX), np.float32))
    return np.stack(hashes), np.stack(thumbs)


def _examine(
    order: int, path: Path, staging: Path, min_side: int, max_side: int
) -> _Candidate | str:
    """Decode, filter, fingerprint and stage one image; returns the drop reason instead."""
    try:
        picture = load_image(path)
    except InputError:
        return "unreadable"
    if min(picture.width, picture.height) < min_side:
        return "small"
    width, height = picture.width, picture.height
    rgb, reason = _to_srgb_uint8(picture)
    if rgb is None:
        return reason
    digest = hashlib.sha256(f"{rgb.shape}".encode() + rgb.tobytes()).hexdigest()
    im = Image.fromarray(rgb)
    del rgb, picture
    if max(width, height) > max_side:
        scale = max_side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        im = im.resize(size, Image.LANCZOS, reducing_gap=3.0)
    hashes, thumbs = _fingerprints(im)
    staged = staging / f"{order:06d}.jpg"
    save_image(Picture(pixels=np.asarray(im)), staged, quality=JPEG_QUALITY)
    return _Candidate(
        order=order,
        source=path,
        width=width,
        height=height,
        sha256=digest,
        hashes=hashes,
        thumbs=thumbs,
        staged=staged,
        out_width=im.width,
        out_height=im.height,
        aspect_index=int(np.argmin([abs(np.log(width / height / a)) for a in _ASPECTS])),
    )


def _deduplicate(
    candidates: list[_Candidate],
) -> tuple[list[_Candidate], list[tuple[_Candidate, _Candidate]]]:
    """Keep the largest copy of each picture: returns (kept in source order, [(dropped, kept)]).

    Exact copies share the pixel sha256. Near copies (other resolution, recompressed, a centre
    crop to another aspect ratio) have a grey average hash within NEAR_DUPLICATE_BITS and a
    colour thumbnail within NEAR_DUPLICATE_COLOUR, compared on the whole image and on centre
    crops to either image's aspect ratio.
    """
    ranked = sorted(candidates, key=lambda c: (-c.area, c.order))
    if not ranked:
        return [], []
    n, full = len(ranked), len(_ASPECTS)
    kept_hashes = np.zeros((n,) + ranked[0].hashes.shape, dtype=bool)
    kept_thumbs = np.zeros((n,) + ranked[0].thumbs.shape, dtype=np.float32)
    kept_aspects = np.zeros(n, dtype=np.int64)
    kept: list[_Candidate] = []
    by_sha: dict[str, _Candidate] = {}
    duplicates: list[tuple[_Candidate, _Candidate]] = []
    for c in ranked:
        if c.sha256 in by_sha:
            duplicates.append((c, by_sha[c.sha256]))
            continue
        m = len(kept)
        if m:
            bits = np.count_nonzero(kept_hashes[:m] != c.hashes, axis=2)
            colour = np.abs(kept_thumbs[:m] - c.thumbs).mean(axis=(2, 3, 4))
            same = (bits <= NEAR_DUPLICATE_BITS) & (colour <= NEAR_DUPLICATE_COLOUR)
            rows = np.arange(m)
            match = same[:, full] | same[:, c.aspect_index] | same[rows, kept_aspects[:m]]
            if match.any():
                duplicates.append((c, kept[int(np.argmax(match))]))
                continue
        by_sha[c.sha256] = c
        kept_hashes[m], kept_thumbs[m], kept_aspects[m] = c.hashes, c.thumbs, c.aspect_index
        kept.append(c)
    return sorted(kept, key=lambda c: c.order), duplicates


def _sanitise(path: Path) -> str:
    """Readable file-name part; resolution-only names ("1920x1080") get the wallpaper's name."""
    stem = path.stem
    if re.fullmatch(r"\d+x\d+", stem):
        parents = [p.name for p in path.parents if p.name and p.name not in ("images", "contents")]
        parents = [p for p in parents if not p.startswith("images")]
        if parents:
            stem = f"{parents[0]}-{stem}"
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")
    return clean[:60] or "image"


def _previous_files(out: Path) -> set[str]:
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        return {str(item["file"]) for item in manifest.get("images", [])}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set()


def collect_photos(
    out: str | os.PathLike,
    sources: Iterable[str | os.PathLike],
    *,
    min_side: int = 256,
    max_side: int = 1024,
    on_progress: ProgressCallback | None = None,
) -> dict:
    """Build `out/` with one JPEG per distinct, large enough, opaque picture found in `sources`.

    Files are named `<NNNN>-<stem>.jpg` in sorted source order and described by
    `out/manifest.json` (returned too); its "sha256" is that of the written JPEG, so the folder
    can be verified later. Rerunning replaces the files listed by the previous manifest.
    """
    out = Path(out)
    source_paths = [Path(s) for s in sources]
    if not source_paths:
        raise InputError("no source folders given")
    for source in source_paths:
        _refuse_held_out(source)
        if not source.exists():
            raise InputError(f"{source}: no such file or folder")
    if min_side < 1 or max_side < min_side:
        raise InputError(f"bad sizes: min_side={min_side}, max_side={max_side}")
    out.mkdir(parents=True, exist_ok=True)
    files, aliases = _find_images(source_paths, out.resolve())
    total = len(files)
    dropped = {"small": 0, "transparent": 0, "duplicate": 0, "unreadable": 0}
    staging = out / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        candidates: list[_Candidate] = []
        workers = max(1, min(4, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            jobs = pool.map(
                lambda item: _examine(item[0], item[1], staging, min_side, max_side),
                enumerate(files),
            )
            for done, result in enumerate(jobs, start=1):
                if isinstance(result, str):
                    dropped[result] += 1
                else:
                    candidates.append(result)
                if on_progress is not None:
                    on_progress(done, total)
        kept, duplicates = _deduplicate(candidates)
        dropped["duplicate"] = len(duplicates) + len(aliases)
        previous = _previous_files(out)
        images = []
        file_of: dict[Path, str] = {}
        for number, c in enumerate(kept, start=1):
            name = f"{number:04d}-{_sanitise(c.source)}.jpg"
            os.replace(c.staged, out / name)
            file_of[c.source] = name
            images.append(
                {
                    "file": name,
                    "source": str(c.source),
                    "width": c.out_width,
                    "height": c.out_height,
                    "sha256": hashlib.sha256((out / name).read_bytes()).hexdigest(),
                }
            )
        for dup, original in duplicates:
            file_of[dup.source] = file_of[original.source]
        same_as = sorted(
            [{"source": str(d.source), "kept": file_of[d.source]} for d, _ in duplicates]
            + [{"source": str(a), "kept": file_of.get(f)} for a, f in aliases.items()],
            key=lambda item: item["source"],
        )
        for stale in previous - {item["file"] for item in images}:
            if "/" not in stale and "\\" not in stale:
                (out / stale).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "min_side": min_side,
        "max_side": max_side,
        "sources": [str(s.resolve()) for s in source_paths],
        "images": images,
        "dropped": dropped,
        "duplicates": same_as,
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest
