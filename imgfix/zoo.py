"""The model zoo: a folder of ``<name>.keras`` files, each with a ``<name>.json`` card and,
for the LiteRT runtime, a ``<name>.tflite`` converted from the ``.keras`` (``export.py``).

The ``.keras`` file is the source of truth: training resumes from it and TensorFlow runs it.
The ``.tflite`` is what ``inpaint`` and ``generate`` run on the CPU. The card records where the
model came from (data, command, steps, metrics) and the sha256 of both files, under ``sha256``
and ``runtime.sha256``. Every load checks the hash of the file it reads, so a truncated download
or a modified file fails with a clear message instead of a stack trace, and ``.keras`` files
load with ``safe_mode=True`` so they cannot run code. Reading cards needs no TensorFlow, which
keeps ``zoo list`` and the name checks of other commands fast.
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
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from imgfix.errors import ImgfixError, InputError

DEFAULT_INPAINTER = "photo-inpainter"
ENV_VAR = "IMGFIX_ZOO"
REPO_ZOO = Path(__file__).resolve().parent.parent / "models_zoo"

RUNTIME_SUFFIX = ".tflite"

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


def _runtime_path(name: str, zoo: str | os.PathLike | None) -> Path:
    return zoo_dir(zoo) / f"{check_name(name)}{RUNTIME_SUFFIX}"


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
    _finish(name, zoo)
    if not card_path.is_file():
        raise _unknown(name, card_path.parent)
    card = _parse_card(card_path, f"model '{name}'")
    card["name"] = name
    _check_kind(name, card, kind)
    if kind is not None:
        check_fields(name, card, card_path)
    return card


# --- the card fields each kind's loader reads --------------------------------------------------
# Checked when a command asks for a model of a kind, before anything loads, so a hand-edited or
# damaged card fails in one line naming the model, the card and the field, never with Python's
# "KeyError: 'z_dim'" from deep inside a loader.


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _tokenizer(value: Any) -> bool:
    from imgfix.data.tokens import TEXT_KINDS

    return value in TEXT_KINDS


CONDITIONS = ("text", "label", "concept")
"""What a generator is conditioned on (``imgfix.training.generators``)."""

# kind -> (field, required, test, what it must be); "a.b" is field b of object a.
CARD_FIELDS: dict[str, list[tuple[str, bool, Any, str]]] = {
    "inpainter": [
        ("multiple", False, _count, "a positive integer"),
        ("work_size", False, _count, "a positive integer"),
    ],
    "generator": [
        ("z_dim", True, _count, "a positive integer (the noise size)"),
        ("condition", False, lambda v: v in CONDITIONS, "'text', 'label' or 'concept'"),
        # The concepts it was trained on: labels, or what prompts are matched against.
        ("concepts", True, lambda v: _texts(v) and bool(v), "a non-empty list of strings"),
        ("sampling", False, lambda v: isinstance(v, dict), "an object"),
        ("sampling.temperature", False, _number, "a number"),
    ],
    "text-encoder": [("tokenizer", True, _tokenizer, "'ngram' or 'gru'")],
}
_TEXT_CONDITION = [
    ("text_encoder", True, lambda v: isinstance(v, dict), "an object naming the text encoder"),
    ("text_encoder.name", True, _text, "a model name"),
    ("text_encoder.sha256", True, _text, "the encoder's sha256"),
    ("text_encoder.tokenizer", True, _tokenizer, "'ngram' or 'gru'"),
]
_CONCEPT_CONDITION = [
    ("concept_lookup", True, lambda v: isinstance(v, dict), "an object (data.concepts.pack)"),
    ("concept_lookup.captions", True, _text, "zlib-base64 text"),
    ("concept_lookup.bank", True, _text, "zlib-base64 text"),
    ("concept_lookup.shape", True, lambda v: isinstance(v, list) and len(v) == 2, "[rows, dim]"),
]  # fmt: skip
_RUNTIME = [("runtime.inputs", False, _texts, "a list of input names")]


_MISSING = object()


def _field(card: dict, dotted: str) -> Any:
    value: Any = card
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def check_fields(name: str, card: dict, card_path: Path | None = None) -> dict:
    """Check the fields the loader of the card's kind reads (``CARD_FIELDS``); an ImgfixError
    naming the model, the card file and the field otherwise. Returns the card."""
    fields = list(CARD_FIELDS.get(str(card.get("kind")), []))
    condition = card.get("condition", "text")
    if card.get("kind") == "generator" and condition in ("text", "concept"):
        fields += _TEXT_CONDITION
    if card.get("kind") == "generator" and condition == "concept":
        fields += _CONCEPT_CONDITION
    if isinstance(card.get("runtime"), dict):
        fields += _RUNTIME
    where = f"model '{name}': card {card_path or f'{name}.json'}"
    for dotted, required, test, what in fields:
        value = _field(card, dotted)
        if value is _MISSING:
            if required:
                raise ImgfixError(f"{where}: field '{dotted}' is missing (it must be {what})")
            continue
        if not test(value):
            shown = json.dumps(value, ensure_ascii=False, default=str)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise ImgfixError(f"{where}: field '{dotted}' is {shown}; it must be {what}")
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


def _check_sha(name: str, path: Path, expected: Any) -> None:
    if not isinstance(expected, str) or not expected:
        raise ImgfixError(
            f"model '{name}': its card has no sha256 for {path.name}, so the file cannot be "
            "checked (remove it and add it again with 'imgfix zoo import')"
        )
    try:
        actual = _sha256(path)
    except OSError as exc:
        raise ImgfixError(f"model '{name}': cannot read {path.name} ({exc.strerror})") from exc
    if actual != expected.lower():
        raise ImgfixError(
            f"model '{name}': {path.name} sha256 mismatch, file is corrupt or was modified"
        )


def _verify_keras(name: str, zoo: str | os.PathLike | None) -> dict:
    card = read_card(name, zoo)
    path, _ = _paths(name, zoo)
    if not path.is_file():
        raise _unknown(name, path.parent, f"{path.name} is missing")
    _check_sha(name, path, card.get("sha256"))
    return card


def runtime_file(name: str, zoo: str | os.PathLike | None = None) -> Path | None:
    """The model's ``.tflite`` after checking it against its card; None when the card names
    none (an imported model that did not convert, or one from before the LiteRT runtime)."""
    card = read_card(name, zoo)
    entry = card.get("runtime")
    if not isinstance(entry, dict) or not entry.get("file"):
        return None
    path = _runtime_path(name, zoo)
    if not path.is_file():
        raise ImgfixError(
            f"model '{name}': {path.name} is missing (imgfix zoo export-runtime {name} rebuilds it)"
        )
    _check_sha(name, path, entry.get("sha256"))
    return path


def verify(name: str, zoo: str | os.PathLike | None = None) -> dict:
    """Check the model's files (``.keras`` and, when the card names one, ``.tflite``) against
    the sha256 values in its card; return the card."""
    card = _verify_keras(name, zoo)
    runtime_file(name, zoo)
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


def _load_keras(path: Path, label: str) -> Any:
    import keras

    try:
        import imgfix.models  # noqa: F401  (registers the custom layers)
    except ModuleNotFoundError as exc:
        if exc.name != "imgfix.models":
            raise
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        raise ImgfixError(f"{label}: cannot load {path.name} ({_one_line(exc)})") from exc


def load_model(
    name: str, zoo: str | os.PathLike | None = None, kind: str | None = None
) -> tuple[Any, dict]:
    """Load a zoo model's ``.keras`` after checking its kind and its sha256; returns
    ``(model, card)``. Needs TensorFlow: ``runtime.load`` is what inference calls."""
    read_card(name, zoo, kind)
    card = _verify_keras(name, zoo)
    return _load_keras(_paths(name, zoo)[0], f"model '{name}'"), card


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


def _write_runtime(
    model: Any, name: str, zoo: str | os.PathLike | None, weights: str, keras_file: Path
) -> dict:
    """Convert ``model`` (saved at ``keras_file``) to the staged ``<name>.tflite`` (see
    ``_commit``); the card's runtime entry. Off TensorFlow, the file converts in a TensorFlow
    child process."""
    import keras

    from imgfix.export import convert_in_tensorflow, to_litert, xnnpack_agrees

    path = _runtime_path(name, zoo)
    with _stage(path) as tmp:
        if keras.backend.backend() == "tensorflow":
            stored = to_litert(model, tmp, weights)
            xnnpack = xnnpack_agrees(model, tmp)
        else:
            stored, xnnpack = convert_in_tensorflow(keras_file, tmp, weights)
        sha = _sha256(tmp)
        size = tmp.stat().st_size
    return {
        **({"xnnpack": False} if xnnpack is False else {}),
        "format": "litert",
        "file": path.name,
        "sha256": sha,
        "weights": stored,
        "bytes": size,
        "builtin_ops_only": True,
        "inputs": [t.name for t in model.inputs],
    }


# --- an entry changes as a unit --------------------------------------------------------------
# New files are written complete beside the entry (``.<name>.next.keras``), then a journal
# (``.<name>.pending.json``) names them with the new card, then they are moved in and the card
# written. A kill before the journal exists leaves the old entry whole; after it, the next
# reader of the entry finishes the moves (``_finish``), so the card always matches its files.


def _staged(final: Path) -> Path:
    """Where the new version of ``final`` waits until its entry is committed; it keeps the
    suffix, which Keras checks."""
    return final.with_name(f".{final.stem}.next{final.suffix}")


@contextlib.contextmanager
def _stage(final: Path) -> Iterator[Path]:
    """``atomic_path`` for the staged version of ``final``: a write that fails (a full disk)
    names ``final``, the file the user knows, rather than its staged name."""
    from imgfix.io import atomic_path

    staged = _staged(final)
    try:
        with atomic_path(staged) as tmp:
            yield tmp
    except ImgfixError as exc:
        text = str(exc)
        if not text.startswith(f"{staged}: "):
            raise
        raise type(exc)(f"{final}: {text[len(str(staged)) + 2 :]}") from exc


@contextlib.contextmanager
def _dropped_on_failure(name: str, zoo: str | os.PathLike | None, files: list[Path]):
    """Remove the staged versions of ``files`` when the block fails before the journal exists:
    the old entry then stands whole, and a full disk gets its space back. Once the journal
    exists they are its to move in."""
    try:
        yield
    except BaseException:
        if not _journal(name, zoo).is_file():
            for final in files:
                _staged(final).unlink(missing_ok=True)
        raise


def _journal(name: str, zoo: str | os.PathLike | None) -> Path:
    return zoo_dir(zoo) / f".{check_name(name)}.pending.json"


def _commit(name: str, zoo: str | os.PathLike | None, card: dict, files: list[Path]) -> None:
    """Move the staged versions of ``files`` in and write ``card``, as a unit."""
    from imgfix.io import atomic_write_text

    plan = {"card": card, "files": [p.name for p in files]}
    atomic_write_text(_journal(name, zoo), json.dumps(plan, default=_json_default) + "\n")
    _finish(name, zoo)


def _finish(name: str, zoo: str | os.PathLike | None) -> None:
    """Complete the commit of ``name``'s entry that a kill interrupted, if there is one."""
    journal = _journal(name, zoo)
    if not journal.is_file():
        return
    allowed = {f"{name}.keras", f"{name}{RUNTIME_SUFFIX}"}
    try:
        plan = json.loads(journal.read_text(encoding="utf-8"))
        card, files = dict(plan["card"]), [f for f in plan["files"] if f in allowed]
    except (ValueError, KeyError, TypeError, OSError):
        journal.unlink(missing_ok=True)  # not one this code wrote: the old entry stands
        return
    for final in (journal.parent / f for f in files):
        if _staged(final).exists():
            os.replace(_staged(final), final)
    _write_card(_paths(name, zoo)[1], card)
    journal.unlink(missing_ok=True)


def save_model(
    model: Any,
    name: str,
    card: dict,
    zoo: str | os.PathLike | None = None,
    weights: str = "auto",
) -> Path:
    """Save ``model``, its LiteRT conversion and its card as one unit (``_commit``); the
    caller's card keys are kept, the files' hashes, name, library versions and creation time
    are filled in. ``weights`` is the ``.tflite`` weight storage (``export.WEIGHTS``). Returns
    the ``.keras`` path. A model that does not convert to LiteRT's builtin ops raises
    ``ExportError``, and the zoo keeps its previous entry."""
    from imgfix.export import in_float32

    model = in_float32(model)  # trained with --precision mixed: the zoo's copy is float32
    path, _ = _paths(name, zoo)
    files = [path, _runtime_path(name, zoo)]
    _finish(name, zoo)
    with _dropped_on_failure(name, zoo, files):
        with _stage(path) as tmp:
            model.save(tmp)
            sha = _sha256(tmp)
        runtime = _write_runtime(model, name, zoo, weights, _staged(path))
        full = {"name": name, **card}
        full.setdefault("params", int(model.count_params()))
        full.update(
            sha256=sha,
            file=path.name,
            runtime=runtime,
            tensorflow=_version("tensorflow"),
            keras=_version("keras"),
            created=_now(),
        )
        _commit(name, zoo, full, files)
    return path


def export_runtime(name: str, zoo: str | os.PathLike | None = None, weights: str = "auto") -> dict:
    """Rebuild model ``name``'s ``.tflite`` from its (verified) ``.keras`` and record it on the
    card; returns the card. Raises ``ExportError`` if it does not convert."""
    model, card = load_model(name, zoo)
    with _dropped_on_failure(name, zoo, [_runtime_path(name, zoo)]):
        card["runtime"] = _write_runtime(model, name, zoo, weights, _paths(name, zoo)[0])
        _commit(name, zoo, card, [_runtime_path(name, zoo)])
    return card


def update_metrics(name: str, metrics: dict, zoo: str | os.PathLike | None = None) -> dict:
    """Merge measured figures into a card's ``metrics`` (the model file is untouched)."""
    card = read_card(name, zoo)
    card["metrics"] = {**card.get("metrics", {}), **metrics}
    _write_card(_paths(name, zoo)[1], card)
    return card


def remove(name: str, zoo: str | os.PathLike | None = None) -> None:
    """Delete a model's files and card."""
    path, card_path = _paths(name, zoo)
    if not path.exists() and not card_path.exists():
        raise _unknown(name, path.parent)
    runtime = _runtime_path(name, zoo)
    for p in (_journal(name, zoo), _staged(path), _staged(runtime), path, runtime, card_path):
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
    runtime_path = _runtime_path(name, zoo)
    if path.exists() or card_path.exists():
        raise InputError(f"model '{name}' is already in the zoo; remove it first or pick a --name")

    try:
        with _stage(path) as tmp:
            shutil.copyfile(src, tmp)
            sha = _sha256(tmp)
            expected = info.get("sha256")
            if isinstance(expected, str) and expected and expected.lower() != sha:
                raise ImgfixError(
                    f"{src}: sha256 mismatch with its card, file is corrupt or was modified"
                )
        info["runtime"] = _import_runtime(src, info.get("runtime"), _staged(path), name, zoo)
        info = {"name": name, **info}
        info.setdefault("keras", meta.get("keras_version", "unknown"))
        info.setdefault("tensorflow", "unknown")
        info.setdefault("created", meta.get("date_saved") or _now())
        info.update(name=name, sha256=sha, file=path.name)
        files = [path] + ([runtime_path] if info["runtime"].get("file") else [])
        _commit(name, zoo, info, files)
    except BaseException:
        # All or nothing: a half-imported model would block its name and list as nothing.
        for p in (_journal(name, zoo), _staged(path), _staged(runtime_path), path, runtime_path):
            p.unlink(missing_ok=True)
        raise
    return info


def _import_runtime(
    src: Path, entry: Any, copied: Path, name: str, zoo: str | os.PathLike | None
) -> dict:
    """The runtime entry of an imported model: its ``.tflite`` copied when one comes with it
    and matches its card (no TensorFlow needed), else converted from the ``.keras``. A model
    that does not convert is still imported, for TensorFlow to run; the card says why."""
    from imgfix.export import ExportError

    source = src.with_suffix(RUNTIME_SUFFIX)
    if source.is_file() and isinstance(entry, dict) and entry.get("sha256"):
        with _stage(_runtime_path(name, zoo)) as tmp:
            shutil.copyfile(source, tmp)
            if _sha256(tmp) != str(entry["sha256"]).lower():
                raise ImgfixError(
                    f"{source}: sha256 mismatch with its card, file is corrupt or was modified"
                )
        return {**entry, "file": _runtime_path(name, zoo).name}
    model = _load_keras(copied, str(src))
    try:
        return _write_runtime(model, name, zoo, "auto", copied)
    except ExportError as exc:
        return {"error": f"no LiteRT file: {exc}"}


def export_model(name: str, dest: str | os.PathLike, zoo: str | os.PathLike | None = None) -> Path:
    """Copy a verified model, its ``.tflite`` (if any) and its card into folder ``dest``;
    returns the copied ``.keras``."""
    from imgfix.io import atomic_path

    verify(name, zoo)
    path, card_path = _paths(name, zoo)
    sources = [path, card_path]
    if runtime_file(name, zoo) is not None:
        sources.insert(1, _runtime_path(name, zoo))
    folder = Path(dest)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    targets = [folder / source.name for source in sources]
    for target in targets:
        if target.exists():
            raise InputError(f"{target}: already exists")
    try:
        for source, target in zip(sources, targets, strict=True):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
    except BaseException:
        for target in targets:  # none of them existed: all or nothing
            target.unlink(missing_ok=True)
        raise
    return targets[0]
