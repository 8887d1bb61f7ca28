"""The model zoo: a folder of ``<name>.keras`` files, each with a ``<name>.json`` card.

The card records where the model came from (data, command, steps, metrics) and the sha256 of
its file. Every load checks that hash first, so a truncated download or a modified file fails
with a clear message instead of a Keras stack trace, and models load with ``safe_mode=True`` so
a ``.keras`` file cannot run code. Reading cards needs no TensorFlow, which keeps ``zoo list``
and the name checks of other commands fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from imgfix.errors import ImgfixError, InputError

DEFAULT_INPAINTER = "photo-inpainter"
ENV_VAR = "IMGFIX_ZOO"
REPO_ZOO = Path(__file__).resolve().parent.parent / "models_zoo"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_CHUNK = 1 << 20


def zoo_dir(override: str | os.PathLike | None = None) -> Path:
    """The zoo folder: ``--zoo``, then ``$IMGFIX_ZOO``, then ``models_zoo`` in the repository."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return REPO_ZOO


def check_name(name: str) -> str:
    """Refuse names that could leave the zoo folder or hide files; return the name unchanged."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        raise InputError(
            f"invalid model name {name!r}: use letters, digits and . _ + - "
            "(no path separators, no '..', not starting with '.')"
        )
    return name


def _paths(name: str, zoo: str | os.PathLike | None) -> tuple[Path, Path]:
    folder = zoo_dir(zoo)
    check_name(name)
    return folder / f"{name}.keras", folder / f"{name}.json"


def _names(folder: Path) -> list[str]:
    """Names of the cards in ``folder``, skipping hidden temporary files."""
    if not folder.is_dir():
        return []
    names = []
    for card in folder.glob("*.json"):
        with contextlib.suppress(InputError):
            names.append(check_name(card.stem))
    return sorted(names)


def _available(folder: Path) -> str:
    names = [n for n in _names(folder) if (folder / f"{n}.keras").is_file()]
    if not names:
        return f"no models in {folder}"
    return f"available: {', '.join(names)}"


def _unknown(name: str, folder: Path, detail: str = "") -> InputError:
    extra = f"{detail}; " if detail else ""
    return InputError(f"unknown model '{name}' ({extra}{_available(folder)})")


def _parse_card(path: Path, label: str) -> dict:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ImgfixError(
            f"{label}: card {path.name} is not valid JSON (line {exc.lineno})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ImgfixError(f"{label}: card {path.name} is not UTF-8 text") from exc
    except OSError as exc:
        raise ImgfixError(f"{label}: cannot read card {path.name} ({exc.strerror})") from exc
    if not isinstance(card, dict):
        raise ImgfixError(f"{label}: card {path.name} is not a JSON object")
    return card


def read_card(name: str, zoo: str | os.PathLike | None = None, kind: str | None = None) -> dict:
    """The card of model ``name``; its ``name`` key always matches the file name. With ``kind``,
    a model of another kind is refused: commands call this before starting TensorFlow, so a
    wrong ``--model`` fails at once."""
    _, card_path = _paths(name, zoo)
    if not card_path.is_file():
        raise _unknown(name, card_path.parent)
    card = _parse_card(card_path, f"model '{name}'")
    card["name"] = name
    _check_kind(name, card, kind)
    return card


def list_cards(zoo: str | os.PathLike | None = None) -> list[dict]:
    """Every card in the zoo, sorted by name. A broken entry is listed with an ``error`` key
    rather than hiding the rest."""
    folder = zoo_dir(zoo)
    cards = []
    for name in _names(folder):
        try:
            card = read_card(name, folder)
        except ImgfixError as exc:
            card = {"name": name, "error": str(exc)}
        if not (folder / f"{name}.keras").is_file():
            card["error"] = f"{name}.keras is missing"
        cards.append(card)
    return cards


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(name: str, zoo: str | os.PathLike | None = None) -> dict:
    """Check the model file against the sha256 in its card; return the card."""
    card = read_card(name, zoo)
    path, _ = _paths(name, zoo)
    if not path.is_file():
        raise _unknown(name, path.parent, f"{path.name} is missing")
    expected = card.get("sha256")
    if not isinstance(expected, str) or not expected:
        raise ImgfixError(
            f"model '{name}': its card has no sha256, so the file cannot be checked "
            "(remove it and add it again with 'imgfix zoo import')"
        )
    try:
        actual = _sha256(path)
    except OSError as exc:
        raise ImgfixError(f"model '{name}': cannot read {path.name} ({exc.strerror})") from exc
    if actual != expected.lower():
        raise ImgfixError(f"model '{name}': sha256 mismatch, file is corrupt or was modified")
    return card


def _article(word: str) -> str:
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def _check_kind(name: str, card: dict, kind: str | None) -> None:
    if kind is None or card.get("kind") == kind:
        return
    actual = card.get("kind")
    what = f"{_article(str(actual))} model" if actual else "a model without a kind"
    raise InputError(f"'{name}' is {what}, not {_article(kind)}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 200:
        first = first[:197] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def load_model(
    name: str, zoo: str | os.PathLike | None = None, kind: str | None = None
) -> tuple[Any, dict]:
    """Load a zoo model after checking its kind and its sha256; returns ``(model, card)``."""
    read_card(name, zoo, kind)
    card = verify(name, zoo)
    path, _ = _paths(name, zoo)

    import keras

    try:
        import imgfix.models  # noqa: F401  (registers the custom layers)
    except ModuleNotFoundError as exc:
        if exc.name != "imgfix.models":
            raise
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        raise ImgfixError(f"model '{name}': cannot load {path.name} ({_one_line(exc)})") from exc
    return model, card


def _version(module: str) -> str:
    loaded = sys.modules.get(module)
    if loaded is not None and getattr(loaded, "__version__", None):
        return str(loaded.__version__)
    try:
        return importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _json_default(value: Any) -> Any:
    """Cards often carry numpy scalars (metrics) and paths; store them as plain JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"card value of type {type(value).__name__} is not JSON serialisable")


def _write_card(path: Path, card: dict) -> None:
    from imgfix.io import atomic_write_text

    text = json.dumps(card, indent=2, ensure_ascii=False, default=_json_default)
    atomic_write_text(path, text + "\n")


def save_model(model: Any, name: str, card: dict, zoo: str | os.PathLike | None = None) -> Path:
    """Save ``model`` and its card; the caller's card keys are kept, the file's hash, name,
    library versions and creation time are filled in. Returns the ``.keras`` path."""
    from imgfix.io import atomic_path

    path, card_path = _paths(name, zoo)
    with atomic_path(path) as tmp:
        model.save(tmp)
        sha = _sha256(tmp)
    full = {"name": name, **card}
    full.setdefault("params", int(model.count_params()))
    full.update(
        sha256=sha,
        file=path.name,
        tensorflow=_version("tensorflow"),
        keras=_version("keras"),
        created=_now(),
    )
    _write_card(card_path, full)
    return path


def update_metrics(name: str, metrics: dict, zoo: str | os.PathLike | None = None) -> dict:
    """Merge measured figures into a card's ``metrics`` (the model file is untouched)."""
    card = read_card(name, zoo)
    card["metrics"] = {**card.get("metrics", {}), **metrics}
    _write_card(_paths(name, zoo)[1], card)
    return card


def remove(name: str, zoo: str | os.PathLike | None = None) -> None:
    """Delete a model's file and card."""
    path, card_path = _paths(name, zoo)
    if not path.exists() and not card_path.exists():
        raise _unknown(name, path.parent)
    for p in (path, card_path):
        p.unlink(missing_ok=True)


def _archive_metadata(src: Path) -> dict:
    """``metadata.json`` of a ``.keras`` archive (Keras version, save date); checks the file
    really is one."""
    try:
        with zipfile.ZipFile(src) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise InputError(f"{src}: not a Keras model archive (no config.json inside)")
            if "metadata.json" not in names:
                return {}
            meta = json.loads(archive.read("metadata.json"))
    except (zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{src}: not a Keras model archive (not a zip file)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def import_model(
    src_keras: str | os.PathLike,
    name: str | None = None,
    card: str | os.PathLike | dict | None = None,
    zoo: str | os.PathLike | None = None,
) -> dict:
    """Copy a ``.keras`` file into the zoo with a card; returns the card written.

    The card is ``card`` (a dict or a JSON file), else ``<file>.json`` next to the model (what
    ``export_model`` writes), else a minimal one. A card that already has a sha256 must match
    the file, so a pair damaged in transit is refused.
    """
    src = Path(src_keras)
    if not src.is_file():
        raise InputError(f"{src}: no such file")
    if src.suffix != ".keras":
        raise InputError(f"{src}: expected a .keras file")
    meta = _archive_metadata(src)
    if card is None and src.with_suffix(".json").is_file():
        card = src.with_suffix(".json")
    if card is None:
        info: dict = {}
    elif isinstance(card, dict):
        info = dict(card)
    else:
        card_file = Path(card)
        if not card_file.is_file():
            raise InputError(f"{card_file}: no such file")
        try:
            info = _parse_card(card_file, str(card_file))
        except ImgfixError as exc:
            raise InputError(str(exc)) from exc
    name = check_name(name or info.get("name") or src.stem)
    path, card_path = _paths(name, zoo)
    if path.exists() or card_path.exists():
        raise InputError(f"model '{name}' is already in the zoo; remove it first or pick a --name")
    from imgfix.io import atomic_path

    with atomic_path(path) as tmp:
        shutil.copyfile(src, tmp)
        sha = _sha256(tmp)
        expected = info.get("sha256")
        if isinstance(expected, str) and expected and expected.lower() != sha:
            raise ImgfixError(
                f"{src}: sha256 mismatch with its card, file is corrupt or was modified"
            )
    info = {"name": name, **info}
    info.setdefault("keras", meta.get("keras_version", "unknown"))
    info.setdefault("tensorflow", "unknown")
    info.setdefault("created", meta.get("date_saved") or _now())
    info.update(name=name, sha256=sha, file=path.name)
    _write_card(card_path, info)
    return info


def export_model(name: str, dest: str | os.PathLike, zoo: str | os.PathLike | None = None) -> Path:
    """Copy a verified model and its card into folder ``dest``; returns the copied ``.keras``."""
    from imgfix.io import atomic_path

    verify(name, zoo)
    path, card_path = _paths(name, zoo)
    folder = Path(dest)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    targets = [folder / path.name, folder / card_path.name]
    for target in targets:
        if target.exists():
            raise InputError(f"{target}: already exists")
    for source, target in zip((path, card_path), targets, strict=True):
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    return targets[0]
