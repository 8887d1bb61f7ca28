"""``imgfix data photos|emoji``: prepare training data."""

from __future__ import annotations

from pathlib import Path

import typer

from imgfix.cli.common import emit_json, group, options_of, progress_bar, say
from imgfix.errors import InputError

app = group("Prepare training data.")


@app.command("photos")
def data_photos(
    ctx: typer.Context,
    sources: list[Path] = typer.Argument(
        ..., help="Folders (or files) of images to collect from.", show_default=False
    ),
    out_dir: Path = typer.Option(
        ..., "--out", help="Folder to write the photos and manifest to.", show_default=False
    ),
    min_side: int = typer.Option(256, "--min-side", min=1, help="Drop images smaller than this."),
    max_side: int = typer.Option(1024, "--max-side", min=1, help="Shrink larger images to this."),
) -> None:
    """Collect a clean, de-duplicated folder of training photos."""
    from imgfix.data.photos import collect_photos

    g = options_of(ctx)
    with progress_bar(g, "collecting") as (_, update):

        def on_progress(done: int, total: int) -> None:
            update(completed=done, total=total)

        manifest = collect_photos(
            out_dir, sources, min_side=min_side, max_side=max_side, on_progress=on_progress
        )
    if g.json:
        emit_json(manifest)
        return
    dropped = manifest.get("dropped", {})
    reasons = ", ".join(f"{count} {reason}" for reason, count in dropped.items() if count)
    say(
        g,
        f"kept {len(manifest.get('images', []))} photos in {out_dir}; "
        f"dropped {sum(dropped.values())}" + (f" ({reasons})" if reasons else ""),
    )


@app.command("emoji")
def data_emoji(
    ctx: typer.Context,
    out_dir: Path = typer.Option(
        ..., "--out", help="Folder for the images and captions.jsonl.", show_default=False
    ),
    size: int = typer.Option(96, "--size", help="Image side in px."),
    noto: Path | None = typer.Option(
        None, "--noto", help="NotoColorEmoji.ttf (default: the system's, else data/raw)."
    ),
    cldr: Path | None = typer.Option(
        None,
        "--cldr",
        help="CLDR 'common' folder for keywords (default: the system's, else data/raw).",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N emoji."),
) -> None:
    """Render the emoji text-image corpus (OpenMoji and Noto Color Emoji, 14 languages)."""
    from imgfix.data.emoji import build_corpus

    g = options_of(ctx)
    if noto is not None and not noto.is_file():
        raise InputError(f"{noto}: no such font file")
    if cldr is not None and not (cldr / "annotations").is_dir():
        raise InputError(f"{cldr}: not a CLDR 'common' folder (no annotations/ inside)")
    with progress_bar(g, "rendering") as (_, update):
        summary = build_corpus(
            out_dir,
            size=size,
            noto=noto,
            cldr=cldr,
            limit=limit,
            on_progress=lambda done, total: update(completed=done, total=total),
        )
    if g.json:
        emit_json(summary)
    else:
        dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped_undrawable"].items())
        say(
            g,
            f"wrote {summary['images']} images of {summary['concepts']} concepts to {out_dir} "
            f"(fonts: {', '.join(summary['fonts'])}; undrawable glyphs dropped: {dropped})",
        )
