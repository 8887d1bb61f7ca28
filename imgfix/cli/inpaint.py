"""``imgfix inpaint``: fill the masked parts of one image or of many."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from imgfix.cli.common import emit_json, options_of, progress_bar, say, warn
from imgfix.errors import InputError


def _inpaint_message(result: Any) -> str:
    return (
        f"{result.input} -> {result.output} "
        f"(hole {result.hole_fraction:.1%}, {result.seconds:.1f} s)"
    )


def _check_pair(image: Path, mask: Path, options: Any) -> None:
    """Decode the image and its mask once before TensorFlow starts: an unreadable file or a
    mask of the wrong size then fails in a second rather than after the model has loaded."""
    from imgfix import io, masks
    from imgfix.pipelines.inpaint import check_hole

    picture = io.load_image(image)
    hole = io.load_mask(
        mask,
        (picture.width, picture.height),
        invert=options.invert_mask,
        resize=options.resize_mask,
    )
    check_hole(masks.dilate(hole, options.dilate), mask, options)


def inpaint(
    ctx: typer.Context,
    inputs: list[Path] = typer.Argument(
        ..., help="Image files, or folders of images.", show_default=False
    ),
    mask: Path = typer.Option(
        ...,
        "--mask",
        "-m",
        help="Mask image, white where to fill; or a folder of masks named like the images.",
        show_default=False,
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Output file (one input only). Default: NAME.inpainted.EXT."
    ),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="Write outputs to this folder (batch mode)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Zoo model to use (default: the standard photo inpainter)."
    ),
    dilate: int = typer.Option(0, "--dilate", min=0, help="Grow the hole by this many pixels."),
    invert_mask: bool = typer.Option(False, "--invert-mask", help="Black marks the hole."),
    resize_mask: bool = typer.Option(
        False, "--resize-mask", help="Stretch a mask of another size to the image's size."
    ),
    texture: float = typer.Option(
        0.0,
        "--texture",
        min=0.0,
        max=3.0,
        metavar="STRENGTH",
        help="Copy the surrounding texture (grain, fur, grass) onto the smooth fill, at this "
        "strength; 0 = off. 1.5 is the benchmarked setting: far less smear, about 1 dB less "
        "hole PSNR (docs/texture.md).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    quality: int = typer.Option(
        95, "--quality", min=1, max=100, help="JPEG/WebP quality of the outputs."
    ),
    shard_text: str | None = typer.Option(
        None,
        "--shard",
        metavar="K/N",
        help="Only shard K of N (1-based: --shard 2/4 = the second quarter) of the images, in "
        "the order given (a folder's by name), dealt round-robin: 2/4 takes the 2nd, 6th, "
        "10th... N runs, K = 1..N, write what one run writes.",
    ),
) -> None:
    """Fill the masked parts of one or many images."""
    from imgfix.pipelines.shard import parse_shard

    g = options_of(ctx)
    if output is not None and out_dir is not None:
        raise typer.BadParameter("use either -o/--output or --out-dir", param_hint="'-o'")
    shard = parse_shard(shard_text)
    if shard is not None and output is not None:
        raise InputError(f"--shard {shard}: not with -o/--output; shards write NAME.inpainted.EXT")
    for path in [*inputs, mask]:
        if not path.exists():
            raise InputError(f"{path}: no such file or directory")
    single = len(inputs) == 1 and not inputs[0].is_dir() and out_dir is None and shard is None
    if output is not None and not single:
        raise typer.BadParameter(
            "-o/--output takes a single input file; use --out-dir for several", param_hint="'-o'"
        )

    from imgfix import io, zoo
    from imgfix.pipelines import inpaint as pipeline
    from imgfix.pipelines.texture import texture_options

    options = pipeline.InpaintOptions(
        dilate=dilate,
        invert_mask=invert_mask,
        resize_mask=resize_mask,
        overwrite=overwrite,
        quality=quality,
    )
    name = model or zoo.DEFAULT_INPAINTER
    if single:
        image = inputs[0]
        if mask.is_dir():
            raise InputError(f"{mask}: a folder of masks needs several inputs or --out-dir")
        if mask.resolve() == image.resolve():
            raise InputError(f"{mask}: the mask is the input image itself")
        target = io.check_output(output or pipeline.default_output(image))
        if target.exists() and not overwrite:
            same = target.resolve() == image.resolve()
            what = "is the input image" if same else "exists"
            raise InputError(f"{target}: output {what}; use --overwrite to replace it")
        _check_pair(image, mask, options)
        zoo.read_card(name, g.zoo, kind="inpainter")
        inpainter = pipeline.load_inpainter(name, g.zoo, g.settings, texture_options(texture))
        result = pipeline.inpaint_file(inpainter, image, mask, target, options, last=True)
        if result.warning:
            warn(result.warning)
        if g.json:
            emit_json(result.to_dict())
        else:
            say(g, _inpaint_message(result))
        return

    images = [p for p in pipeline.expand_inputs(inputs) if p.resolve() != mask.resolve()]
    if not images:
        raise InputError(f"{mask}: the mask is the only input image")
    zoo.read_card(name, g.zoo, kind="inpainter")
    inpainter = pipeline.load_inpainter(name, g.zoo, g.settings, texture_options(texture))
    count = len(images) if shard is None else len(shard.select(images))
    with progress_bar(g, "inpainting", count) as (progress, update):

        def on_result(result: Any) -> None:
            if not result.ok:
                progress.console.print(
                    f"imgfix: failed: {result.message}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            elif result.warning:
                progress.console.print(
                    f"imgfix: warning: {result.warning}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            update(advance=1)

        results = pipeline.inpaint_batch(
            inpainter, images, mask, out_dir, options, on_result, shard=shard
        )
    failed = sum(not r.ok for r in results)
    if g.json:
        report = {"results": [r.to_dict() for r in results], "failed": failed}
        emit_json(report if shard is None else {**report, "shard": str(shard)})
    else:
        where = "" if shard is None else f" (shard {shard}; {len(images)} in all)"
        done = len(results) - failed
        say(g, f"inpainted {done} of {len(results)} images{where}, {failed} failed")
    if failed:
        raise typer.Exit(1)
