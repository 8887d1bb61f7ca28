"""Read a text-image (or label-image) corpus from a folder, in any of three layouts:

  captions.jsonl   one JSON object per line: {"file": ..., "concept": ..., "texts": [...]}
                   ("concept" defaults to the first text; "text" may stand for "texts";
                   optional "keywords": [...] are extra, looser texts for the prompt encoder)
  captions.csv     columns file,text[,concept]; several rows may share a file
  class folders    DIR/<label>/*.png: the folder name is the concept and its only text

and load its images as one ``uint8`` array for training. A corpus is small enough to hold in
memory: the emoji corpus at 48 px is 23 MB.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from imgfix.errors import InputError
from imgfix.io import IMAGE_SUFFIXES


@dataclass
class Corpus:
    """Images with the concept each shows and the texts that describe it."""

    root: Path
    files: list[Path]
    concepts: list[str]
    """The concept index of each file, as a name."""
    texts: dict[str, list[str]] = field(default_factory=dict)
    """Every text of each concept, merged over its files, in first-seen order."""
    keywords: dict[str, list[str]] = field(default_factory=dict)
    """Looser descriptions of each concept (may be shared by many), if the corpus has any."""
    layout: str = ""

    @property
    def concept_names(self) -> list[str]:
        return sorted(self.texts)

    def concept_ids(self) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.concept_names)}
        return np.array([index[c] for c in self.concepts], dtype=np.int32)

    def __len__(self) -> int:
        return len(self.files)


def _add(
    corpus: Corpus, path: Path, concept: str, texts: list[str], keywords: list[str] = ()
) -> None:
    concept = concept.strip()
    texts = [t.strip() for t in texts if t and t.strip()] or [concept]
    if not concept:
        raise InputError(f"{corpus.root}: an entry for {path.name} has no concept or text")
    known = corpus.texts.setdefault(concept, [])
    known.extend(t for t in texts if t not in known)
    loose = corpus.keywords.setdefault(concept, [])
    loose.extend(k for k in (k.strip() for k in keywords) if k and k not in loose)
    corpus.files.append(path)
    corpus.concepts.append(concept)


def _resolve(root: Path, name: str, source: Path, line: int) -> Path:
    path = (root / name).resolve()
    if not path.is_file():
        raise InputError(f"{source}:{line}: image {name!r} not found")
    return path


def _read_jsonl(root: Path, source: Path) -> Corpus:
    corpus = Corpus(root, [], [], layout="captions.jsonl")
    with open(source, encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                texts = row.get("texts", row.get("text", []))
                texts = [texts] if isinstance(texts, str) else list(texts)
                concept = row.get("concept") or (texts[0] if texts else "")
                keywords = [str(k) for k in row.get("keywords", [])]
                path = _resolve(root, row["file"], source, n)
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise InputError(f"{source}:{n}: not a caption line ({exc})") from None
            _add(corpus, path, str(concept), [str(t) for t in texts], keywords)
    return corpus


def _read_csv(root: Path, source: Path) -> Corpus:
    corpus = Corpus(root, [], [], layout="captions.csv")
    rows: dict[str, tuple[str, list[str]]] = {}
    with open(source, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"file", "text"} <= set(reader.fieldnames):
            raise InputError(f"{source}: needs a header with 'file' and 'text' columns")
        for n, row in enumerate(reader, 2):
            name, text = (row.get("file") or "").strip(), (row.get("text") or "").strip()
            if not name:
                raise InputError(f"{source}:{n}: empty 'file'")
            concept = (row.get("concept") or "").strip()
            _resolve(root, name, source, n)
            previous = rows.setdefault(name, (concept or text, []))
            previous[1].append(text)
    for name, (concept, texts) in rows.items():
        _add(corpus, (root / name).resolve(), concept, texts)
    return corpus


def _read_folders(root: Path) -> Corpus:
    corpus = Corpus(root, [], [], layout="class folders")
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = folder.name.replace("_", " ")
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                _add(corpus, path, label, [label])
    return corpus


def read_corpus(root: str | os.PathLike) -> Corpus:
    """The corpus in ``root``: captions.jsonl, else captions.csv, else class subfolders."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    if (root / "captions.jsonl").is_file():
        corpus = _read_jsonl(root, root / "captions.jsonl")
    elif (root / "captions.csv").is_file():
        corpus = _read_csv(root, root / "captions.csv")
    else:
        corpus = _read_folders(root)
    if len(corpus) < 2 or len(corpus.texts) < 2:
        raise InputError(
            f"{root}: found {len(corpus)} images of {len(corpus.texts)} concepts; need at least "
            "2 of each (captions.jsonl, captions.csv, or one subfolder per label)"
        )
    return corpus


def load_square(path: Path, size: int) -> np.ndarray:
    """One image as ``size`` x ``size`` RGB ``uint8``: transparency on white, centre-cropped."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im.alpha_composite(rgba)
            im = im.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: cannot read image ({exc})") from None
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    im = im.crop((left, top, left + side, top + side))
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def load_images(
    corpus: Corpus, size: int, on_progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """Every image of the corpus, ``(N, size, size, 3) uint8``, in corpus order."""
    out = np.empty((len(corpus), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(corpus.files):
        out[i] = load_square(path, size)
        if on_progress and (i % 200 == 0 or i == len(corpus) - 1):
            on_progress(i + 1, len(corpus))
    return out
