"""``imgfix generate``: images from text prompts."""

from __future__ import annotations

from pathlib import Path

import typer

from imgfix.cli.common import emit_json, options_of, progress_bar, say, warn
from imgfix.errors import InputError


def generate(
    ctx: typer.Context,
    prompt: list[str] = typer.Option(
        [], "--prompt", "-p", help="What to draw; repeat for several prompts.", show_default=False
    ),
    prompts_file: Path | None = typer.Option(
        None, "--prompts-file", help="A file with one prompt per line ('#' starts a comment)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="Zoo generator to use (default: emoji-cgan)."
    ),
    n: int = typer.Option(1, "-n", "--num", help="Images per prompt."),
    seed: int | None = typer.Option(
        None, "--seed", help="Noise seed (default: the global --seed, else 0)."
    ),
    size: int | None = typer.Option(
        None, "--size", help="Side of the written images in px, upscaled for viewing [256]."
    ),
    temperature: float | None = typer.Option(
        None,
        "--temperature",
        help="Scale of the noise: lower is more typical, higher more varied "
        "[the model card's default, else 1].",
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Output file; several images are numbered FILE-1, FILE-2..."
    ),
    out_dir: Path | None = typer.Option(
        None, "--out-dir", help="Folder for the images, named after the prompts [.]."
    ),
    grid: bool = typer.Option(False, "--grid", help="One image: a row of -n images per prompt."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
    json_output: bool = typer.Option(
        False, "--json", help="Print the paths written (and prompt matches) as JSON."
    ),
    shard_text: str | None = typer.Option(
        None,
        "--shard",
        metavar="K/N",
        help="Only shard K of N (1-based: --shard 2/4 = the second quarter) of the prompts, "
        "in order (each --prompt, then the file's lines), dealt round-robin: 2/4 takes the "
        "2nd, 6th, 10th... N runs, K = 1..N, write the files of one run, with its names.",
    ),
) -> None:
    """Generate images from text prompts with a text-conditioned model."""
    from imgfix import zoo
    from imgfix.pipelines import generate as pipeline
    from imgfix.pipelines.shard import parse_shard

    g = options_of(ctx)
    if json_output:
        g.json = True
    if output is not None and out_dir is not None:
        raise InputError("use either -o/--output or --out-dir, not both")
    shard = parse_shard(shard_text)
    if not 1 <= n <= pipeline.MAX_IMAGES:
        raise InputError(f"-n {n}: choose between 1 and {pipeline.MAX_IMAGES}")
    if seed is not None and not 0 <= seed < 2**32:
        raise InputError(f"--seed {seed}: choose between 0 and {2**32 - 1}")
    size = 256 if size is None else size
    if not 8 <= size <= 4096:
        raise InputError(f"--size {size}: choose between 8 and 4096")
    if temperature is not None and not 0.0 <= temperature <= 10.0:
        raise InputError(f"--temperature {temperature}: choose between 0 and 10")
    prompts = list(prompt) + (pipeline.read_prompts_file(prompts_file) if prompts_file else [])
    prompts = pipeline.check_prompts(prompts)
    mine = prompts if shard is None else shard.select(prompts)
    if len(mine) * n > pipeline.MAX_IMAGES:
        raise InputError(
            f"{len(mine)} prompts x {n} images: at most {pipeline.MAX_IMAGES} per call"
        )
    if grid:
        pipeline.check_grid(len(prompts), n, size)
    targets = pipeline.output_paths(prompts, n, output, out_dir, grid)
    if shard is not None:
        targets = pipeline.shard_targets(targets, shard)
    flat = [targets] if isinstance(targets, Path) else [p for row in targets for p in row]
    for path in flat:
        pipeline.image_format(path)
        if path.is_dir():
            raise InputError(f"{path}: is a directory; give a file name (or use --out-dir)")
        if path.exists() and not overwrite:
            raise InputError(f"{path}: exists; use --overwrite to replace it")
    name = model or pipeline.DEFAULT_GENERATOR
    card = zoo.read_card(name, g.zoo, kind="generator")
    if temperature is None:
        temperature = float(card.get("sampling", {}).get("temperature", 1.0))
    options = pipeline.GenerateOptions(
        n=n,
        seed=seed if seed is not None else (g.seed if g.seed is not None else 0),
        size=size,
        temperature=temperature,
        grid=grid,
    )
    if card.get("condition") == "label":
        for p in prompts:
            pipeline.label_index(card.get("concepts", []), p)

    generator = pipeline.load_generator(name, g.zoo, g.settings)
    with progress_bar(g, "generating", len(mine)) as (_, update):
        results, written = pipeline.generate(
            generator,
            prompts,
            options,
            output=output,
            out_dir=out_dir,
            on_result=lambda _: update(advance=1),
            shard=shard,
        )
    for r in results:
        if r.match is not None and not r.match.known:
            near = ", ".join(f"{c} ({s:.2f})" for c, s in r.match.nearest)
            warn(f"prompt {r.prompt!r} is far from everything '{name}' knows; nearest: {near}")
    if g.json:
        emit_json(
            {
                "model": name,
                "seed": options.seed,
                "paths": [str(p) for p in written],
                "prompts": [
                    {
                        "prompt": r.prompt,
                        "paths": [str(p) for p in r.paths],
                        "known": r.match.known if r.match else True,
                        "nearest": [
                            {"concept": c, "similarity": s}
                            for c, s in (r.match.nearest if r.match else [])
                        ],
                    }
                    for r in results
                ],
                **({} if shard is None else {"shard": str(shard)}),
            }
        )
    else:
        for path in written:
            say(g, f"wrote {path}")
