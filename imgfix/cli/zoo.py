"""``imgfix zoo list|show|verify|rm|import|export-runtime|export``: the models in the zoo."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from imgfix.cli.common import (
    emit_json,
    format_value,
    group,
    options_of,
    out,
    print_mapping,
    say,
    warn,
)
from imgfix.errors import ImgfixError, InputError

app = group("List, check, import and export the models in the zoo.")


class Weights(str, Enum):
    auto = "auto"
    float32 = "float32"
    float16 = "float16"


def _leaves(metrics: Any) -> dict:
    """Metrics, flattened: cards may group them (``{"validation": {"psnr": ...}}``)."""
    if not isinstance(metrics, dict):
        return {}
    flat: dict = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(_leaves(value))
        else:
            flat[key] = value
    return flat


def _model_mb(folder: Path, name: str) -> str:
    """Megabytes of the model's files (.keras and .tflite)."""
    paths = [folder / f"{name}.keras", folder / f"{name}.tflite"]
    sizes = [p.stat().st_size for p in paths if p.is_file()]
    return f"{sum(sizes) / 1e6:.1f}" if sizes else "-"


def _runtime_label(card: dict) -> str:
    """What runs the model on the CPU: its .tflite on LiteRT, else the .keras on TensorFlow."""
    entry = card.get("runtime")
    if isinstance(entry, dict) and entry.get("file"):
        return f"litert ({entry.get('weights', '?')})"
    return "tensorflow"


@app.command("list")
def zoo_list(ctx: typer.Context) -> None:
    """List the models in the zoo."""
    from imgfix import zoo

    g = options_of(ctx)
    cards = zoo.list_cards(g.zoo)
    if g.json:
        emit_json(cards)
        return
    folder = zoo.zoo_dir(g.zoo)
    if not cards:
        say(g, f"no models in {folder}")
        return
    table = Table(title=f"models in {folder}")
    for column in ("name", "kind", "size", "steps", "runtime", "metrics"):
        table.add_column(column, overflow="fold")
    table.add_column("MB", justify="right")
    for card in cards:
        key_metrics = dict(list(_leaves(card.get("metrics")).items())[:3])
        table.add_row(
            card["name"],
            str(card.get("kind", "?")),
            str(card.get("image_size", "")),
            str(card.get("steps", "")),
            _runtime_label(card),
            card["error"] if "error" in card else format_value(key_metrics),
            _model_mb(folder, card["name"]),
        )
    out.print(table)


@app.command("show")
def zoo_show(
    ctx: typer.Context, name: str = typer.Argument(..., help="Model name.", show_default=False)
) -> None:
    """Show a model's card."""
    from imgfix import zoo

    g = options_of(ctx)
    card = zoo.read_card(name, g.zoo)
    if g.json:
        emit_json(card)
        return
    folder = zoo.zoo_dir(g.zoo)
    concepts = card.pop("concepts", None)
    # A concept generator's lookup tables are data, not settings: count them (--json has them).
    if isinstance(card.get("concept_lookup"), dict):
        from imgfix.data import concepts

        table, bank = concepts.unpack(card["concept_lookup"])
        card["concept_lookup"] = (
            f"{len(table)} captions of {bank.shape[0]} concepts, {bank.shape[1]}-d centroids"
        )
    print_mapping({**card, "path": str(folder / f"{name}.keras"), "MB": _model_mb(folder, name)})
    if concepts:
        out.print(f"[bold]concepts[/bold] ({len(concepts)}): ", end="")
        out.print(", ".join(concepts), markup=False, highlight=False)


@app.command("verify")
def zoo_verify(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Model name (default: every model)."),
) -> None:
    """Check model files against the sha256 in their cards."""
    from imgfix import zoo

    g = options_of(ctx)
    if name is not None:
        zoo.verify(name, g.zoo)
        if g.json:
            emit_json({"results": [{"name": name, "ok": True, "message": ""}], "failed": 0})
        else:
            say(g, f"ok  {name}")
        return
    results = []
    for card in zoo.list_cards(g.zoo):
        try:
            zoo.verify(card["name"], g.zoo)
            results.append({"name": card["name"], "ok": True, "message": ""})
            say(g, f"ok  {card['name']}")
        except ImgfixError as exc:
            results.append({"name": card["name"], "ok": False, "message": str(exc)})
            print(f"imgfix: failed: {exc}", file=sys.stderr, flush=True)
    failed = sum(not r["ok"] for r in results)
    if g.json:
        emit_json({"results": results, "failed": failed})
    elif not results:
        say(g, f"no models in {zoo.zoo_dir(g.zoo)}")
    if failed:
        raise typer.Exit(1)


@app.command("rm")
def zoo_rm(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name.", show_default=False),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a model and its card."""
    from imgfix import zoo

    g = options_of(ctx)
    folder = zoo.zoo_dir(g.zoo)
    zoo.check_name(name)
    if not ((folder / f"{name}.keras").exists() or (folder / f"{name}.json").exists()):
        zoo.read_card(name, g.zoo)  # raises the "unknown model" error listing the others
    if not yes:
        if not sys.stdin.isatty():
            raise InputError(f"zoo rm {name}: not asking on a non-interactive input; use --yes")
        typer.confirm(f"Delete model '{name}' from {folder}?", abort=True, err=True)
    zoo.remove(name, g.zoo)
    say(g, f"removed '{name}'")


@app.command("import")
def zoo_import(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A .keras model file.", show_default=False),
    name: str | None = typer.Option(
        None, "--name", help="Zoo name (default: the card's name, else the file name)."
    ),
    card: Path | None = typer.Option(
        None, "--card", help="Card JSON (default: FILE.json next to the model, if any)."
    ),
) -> None:
    """Add a .keras model file to the zoo."""
    from imgfix import zoo

    g = options_of(ctx)
    written = zoo.import_model(file, name=name, card=card, zoo=g.zoo)
    problem = (written.get("runtime") or {}).get("error")
    if problem:
        warn(f"'{written['name']}' will run on TensorFlow: {problem}")
    if g.json:
        emit_json(written)
    else:
        say(g, f"imported '{written['name']}' (sha256 {written['sha256'][:12]}...)")


@app.command("export-runtime")
def zoo_export_runtime(
    ctx: typer.Context,
    names: list[str] = typer.Argument(
        None, help="Model names (default: every model).", show_default=False
    ),
    weights: Weights = typer.Option(
        Weights.auto,
        "--weights",
        case_sensitive=False,
        help="Weight storage in the .tflite: auto is float16 above 2 M parameters.",
    ),
) -> None:
    """Rebuild models' LiteRT files (.tflite) from their .keras files."""
    from imgfix import runtime, zoo

    g = options_of(ctx)
    names = names or [card["name"] for card in zoo.list_cards(g.zoo)]
    for name in names:
        zoo.read_card(name, g.zoo)
    runtime.setup(g.device, g.seed)
    cards = []
    for name in names:
        card = zoo.export_runtime(name, g.zoo, weights.value)
        cards.append(card)
        entry = card["runtime"]
        say(g, f"wrote {entry['file']} ({entry['weights']}, {entry['bytes'] / 1e6:.1f} MB)")
    if g.json:
        emit_json(cards)


@app.command("export")
def zoo_export(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name.", show_default=False),
    dest: Path = typer.Argument(..., help="Destination folder.", show_default=False),
) -> None:
    """Copy a model and its card to a folder (after checking its sha256)."""
    from imgfix import zoo

    g = options_of(ctx)
    path = zoo.export_model(name, dest, g.zoo)
    if g.json:
        emit_json({"name": name, "model": str(path), "card": str(path.with_suffix(".json"))})
    else:
        say(g, f"exported '{name}' to {dest}")
