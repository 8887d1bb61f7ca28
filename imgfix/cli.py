"""The ``imgfix`` command line.

Only typer, rich and the standard library are imported here: TensorFlow takes seconds to start,
so ``--help``, usage errors and missing-file errors must not wait for it. Each command imports
what it needs, checks the user's files and names first, and starts TensorFlow last.

Errors: ``ImgfixError`` exits 1, ``InputError`` (and Typer's usage errors) exit 2, each reported
as one line on stderr. Results go to stdout (``--json``: one JSON document), everything else
(progress, warnings, messages) to stderr.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from imgfix.errors import ImgfixError, InputError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Repair (inpaint) and generate images with deep learning.",
)
train_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Train a model and add it to the zoo.",
)
zoo_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="List, check, import and export the models in the zoo.",
)
data_app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Prepare training data.",
)
app.add_typer(train_app, name="train")
app.add_typer(zoo_app, name="zoo")
app.add_typer(data_app, name="data")

err = Console(stderr=True)
out = Console()


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"


class Runtime(str, Enum):
    auto = "auto"
    litert = "litert"
    tensorflow = "tensorflow"


DEVICES_OPTION = typer.Option(
    "1",
    "--devices",
    metavar="N|all",
    help="Devices to train on, data parallel (JAX: --backend jax); the batch is split over them.",
)


def _setup_training(g: Globals, devices: str, batch_size: int) -> None:
    """Before any model is built: the device, the seeds and --devices."""
    from imgfix import runtime
    from imgfix.training.devices import use_devices

    runtime.setup(g.device, g.seed)
    use_devices(devices, batch_size)


class Backend(str, Enum):
    tensorflow = "tensorflow"
    jax = "jax"


class Weights(str, Enum):
    auto = "auto"
    float32 = "float32"
    float16 = "float16"


class TextKind(str, Enum):
    ngram = "ngram"
    gru = "gru"


class RecLoss(str, Enum):
    l1 = "l1"
    l2 = "l2"
    psnr = "psnr"
    lowpass = "lowpass"


class InpainterCritic(str, Enum):
    patch = "patch"
    lama = "lama"


class TextureTransfer(str, Enum):
    blocks = "blocks"
    offsets = "offsets"


class InpainterArch(str, Enum):
    context = "context"
    texture = "texture"


@dataclass
class Globals:
    """The options given before the command, shared by every command through ``ctx.obj``."""

    device: str = "auto"
    seed: int | None = None
    quiet: bool = False
    json: bool = False
    debug: bool = False
    zoo: Path | None = None
    runtime: str = "auto"
    threads: int | None = None

    @property
    def settings(self) -> Any:
        """The ``runtime.Settings`` that loading a model for inference takes."""
        from imgfix.runtime import Settings

        return Settings(self.device, self.runtime, self.threads, self.seed)

    @property
    def chatty(self) -> bool:
        """Progress bars and informational messages: not with --quiet, and not with --json."""
        return not (self.quiet or self.json)


_globals = Globals()  # main() reads --debug after the command has failed and its context is gone


def _g(ctx: typer.Context) -> Globals:
    return ctx.obj if isinstance(ctx.obj, Globals) else _globals


def _info(g: Globals, text: str) -> None:
    if g.chatty:
        err.print(text, markup=False, highlight=False, soft_wrap=True)


def _warn(text: str) -> None:
    print(f"imgfix: warning: {text}", file=sys.stderr, flush=True)


def _emit_json(data: Any) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    # JSON is UTF-8 whatever the locale. A file name that is not UTF-8 (Linux names are bytes)
    # holds lone surrogates, which become \udcXX escapes: they decode back to the same string,
    # and os.fsencode gives the name's own bytes.
    payload = text.encode("utf-8", "backslashreplace")
    buffer = getattr(sys.stdout, "buffer", None)
    sys.stdout.flush()
    if buffer is None:
        sys.stdout.write(payload.decode("utf-8"))
    else:
        buffer.write(payload)
    sys.stdout.flush()


@contextlib.contextmanager
def _progress(g: Globals, description: str, total: int | None = None) -> Iterator[tuple]:
    """A progress bar on stderr, shown from its first update: errors found before any work
    is done then print alone. Yields the ``Progress`` and an ``update(**fields)`` function."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not g.chatty,
    )
    task = progress.add_task(description, total=total)

    def update(**fields: Any) -> None:
        progress.start()
        progress.update(task, **fields)

    try:
        yield progress, update
    finally:
        progress.stop()


def _version_callback(value: bool) -> None:
    if value:
        from imgfix import __version__

        print(f"imgfix {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    device: Device = typer.Option(
        Device.auto,
        "--device",
        case_sensitive=False,
        help="Where models run: auto uses a GPU when there is one (NVIDIA), else the CPU.",
    ),
    runtime: Runtime = typer.Option(
        Runtime.auto,
        "--runtime",
        case_sensitive=False,
        help="Inference runtime: auto runs LiteRT on the CPU and TensorFlow on a GPU.",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        max=256,
        help="CPU threads for LiteRT [one per CPU].",
        show_default=False,
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed every random generator."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress bars or messages; warnings and errors only."
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print the results as JSON on stdout (no progress bars)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors."),
    zoo: Path | None = typer.Option(
        None,
        "--zoo",
        help="Model zoo folder (default: $IMGFIX_ZOO, else models_zoo in the repository).",
    ),
    backend: Backend | None = typer.Option(
        None,
        "--backend",
        case_sensitive=False,
        help="Keras backend for training [$KERAS_BACKEND, else tensorflow]. "
        "Inference runs LiteRT or TensorFlow whatever this is.",
        show_default=False,
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Repair (inpaint) and generate images with deep learning."""
    global _globals
    if seed is not None and not 0 <= seed < 2**32:
        raise InputError(f"--seed {seed}: choose between 0 and {2**32 - 1}")
    if backend is not None:
        from imgfix.runtime import choose_backend

        choose_backend(backend.value)
    _globals = Globals(
        device=device.value,
        seed=seed,
        quiet=quiet,
        json=json_output,
        debug=debug,
        zoo=zoo,
        runtime=runtime.value,
        threads=threads,
    )
    ctx.obj = _globals


# --- inpaint ----------------------------------------------------------------------------------


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


@app.command()
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

    g = _g(ctx)
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
        inpainter = pipeline.load_inpainter(name, g.zoo, g.settings)
        result = pipeline.inpaint_file(inpainter, image, mask, target, options, last=True)
        if result.warning:
            _warn(result.warning)
        if g.json:
            _emit_json(result.to_dict())
        else:
            _info(g, _inpaint_message(result))
        return

    images = [p for p in pipeline.expand_inputs(inputs) if p.resolve() != mask.resolve()]
    if not images:
        raise InputError(f"{mask}: the mask is the only input image")
    zoo.read_card(name, g.zoo, kind="inpainter")
    inpainter = pipeline.load_inpainter(name, g.zoo, g.settings)
    count = len(images) if shard is None else len(shard.select(images))
    with _progress(g, "inpainting", count) as (progress, update):

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
        _emit_json(report if shard is None else {**report, "shard": str(shard)})
    else:
        where = "" if shard is None else f" (shard {shard}; {len(images)} in all)"
        done = len(results) - failed
        _info(g, f"inpainted {done} of {len(results)} images{where}, {failed} failed")
    if failed:
        raise typer.Exit(1)


# --- generate ---------------------------------------------------------------------------------


@app.command()
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

    g = _g(ctx)
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
    with _progress(g, "generating", len(mine)) as (_, update):
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
            _warn(f"prompt {r.prompt!r} is far from everything '{name}' knows; nearest: {near}")
    if g.json:
        _emit_json(
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
            _info(g, f"wrote {path}")


# --- train ------------------------------------------------------------------------------------


_DATA_HELP = (
    "Corpus folder: captions.jsonl, captions.csv, or one subfolder per label "
    "(see 'imgfix data emoji')."
)
# Options shared by the training commands, declared once.
_DATA = typer.Option(..., "--data", help=_DATA_HELP, show_default=False)
_NAME = typer.Option(..., "--name", help="Zoo name of the model.", show_default=False)
_RESUME = typer.Option(False, "--resume", help="Continue from the last checkpoint.")
_LOGDIR = typer.Option(None, "--logdir", help="Run folder [runs/NAME].")
_CHECKPOINT_MINUTES = typer.Option(
    5.0, "--checkpoint-minutes", min=0.0, help="Minutes between checkpoints."
)
_CHECKPOINTS = typer.Option(
    10,
    "--checkpoints",
    min=1,
    help="Checkpoints spread evenly over --steps (besides the timed ones).",
)
_TEXT_ENCODER = typer.Option("prompt-encoder", "--text-encoder", help="Zoo text encoder.")
_GEN_SIZE = typer.Option(48, "--image-size", help="Image side: 24, 48 or 96 px.")
_STEPS = typer.Option(4000, "--steps", min=1, help="Training steps.")
_FILTERS = typer.Option(32, "--filters", min=2, help="Width of the last block.")


@train_app.command("inpainter")
def train_inpainter(
    ctx: typer.Context,
    data: Path = typer.Option(
        ...,
        "--data",
        help="Folder of training photos (see 'imgfix data photos').",
        show_default=False,
    ),
    name: str = _NAME,
    image_size: int = typer.Option(128, "--image-size", min=16, help="Training crop side (px)."),
    epochs: int = typer.Option(1, "--epochs", min=1, help="Epochs to train."),
    steps: int = typer.Option(1000, "--steps", min=1, help="Training steps per epoch."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per step."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    logdir: Path | None = typer.Option(
        None,
        "--logdir",
        help="Folder for checkpoints, sample grids and the log (default runs/NAME).",
    ),
    checkpoint_minutes: float = typer.Option(
        5.0, "--checkpoint-minutes", min=0.0, help="Minutes between checkpoints."
    ),
    lr: float | None = typer.Option(
        None, "--lr", min=0.0, help="Learning rate (with --resume: from the next step on)."
    ),
    adv_weight: float | None = typer.Option(
        None, "--adv-weight", min=0.0, help="Weight of the adversarial loss."
    ),
    filters: int | None = typer.Option(
        None, "--filters", min=2, help="Width of the generator's first layers."
    ),
    rec_loss: RecLoss | None = typer.Option(
        None,
        "--rec-loss",
        help="Reconstruction loss over the hole (default psnr: per-image, like benchmarks).",
    ),
    arch: InpainterArch = typer.Option(
        InpainterArch.context,
        "--arch",
        help="context: a U-Net on a coarse fill. texture: a trained inpainter (--base) plus "
        "detail copied from the known region by attention.",
    ),
    base: str | None = typer.Option(
        None,
        "--base",
        help="Zoo inpainter a texture model builds on (default photo-inpainter; a texture "
        "model's head is kept), or that a context model starts from.",
    ),
    texture_weight: float | None = typer.Option(
        None,
        "--texture-weight",
        min=0.0,
        help="Weight of the detail-amplitude loss (imgfix.models.texture.texture_loss; "
        "with --resume: from the next step on).",
    ),
    critic: InpainterCritic = typer.Option(
        InpainterCritic.patch,
        "--critic",
        help="patch: a hinge PatchGAN that sees the mask. lama: LaMa's losses, hole patches "
        "fake, R1 and feature matching (default --adv-weight 10, --rec-loss lowpass).",
    ),
    fm_weight: float = typer.Option(
        100.0, "--fm-weight", min=0.0, help="Feature-matching weight (--critic lama)."
    ),
    r1_gamma: float = typer.Option(
        0.001, "--r1", min=0.0, help="R1 penalty on the critic at real images (--critic lama)."
    ),
    transfer: TextureTransfer = typer.Option(
        TextureTransfer.blocks,
        "--transfer",
        help="How a texture model copies detail: blocks (attention over source blocks) or "
        "offsets (a displacement per block, shared by its neighbours, as shift-map).",
    ),
    devices: str = DEVICES_OPTION,
) -> None:
    """Train an inpainting model on a folder of photos."""
    g = _g(ctx)
    _check_training_args(data, name, logdir, resume)
    model_options = {
        key: value
        for key, value in (
            ("lr", lr),
            ("adv_weight", adv_weight),
            ("filters", filters),
            ("rec_loss", rec_loss.value if rec_loss else None),
            ("base", base),
            ("texture_weight", texture_weight),
        )
        if value is not None
    }
    model_options["arch"] = arch.value
    if arch is InpainterArch.texture:
        model_options["transfer"] = transfer.value
    if critic is InpainterCritic.lama:
        model_options.update(critic=critic.value, fm_weight=fm_weight, r1_gamma=r1_gamma)
        model_options.setdefault("adv_weight", 10.0)
        model_options.setdefault("rec_loss", "lowpass")

    _setup_training(g, devices, batch_size)
    from imgfix.train import train_inpainter as run_training

    extra = {} if g.seed is None else {"seed": g.seed}
    summary = run_training(
        data,
        name,
        image_size=image_size,
        epochs=epochs,
        steps=steps,
        batch_size=batch_size,
        resume=resume,
        logdir=logdir,
        zoo=g.zoo,
        command=_run_command(),
        quiet=not g.chatty,
        checkpoint_minutes=checkpoint_minutes,
        **extra,
        **model_options,
    )
    _report_training(g, name, summary)


def _run_command() -> str:
    return "imgfix " + shlex.join(sys.argv[1:])


def _report_training(g: Globals, name: str, summary: dict) -> None:
    from imgfix import zoo

    if g.json:
        _emit_json(summary)
    else:
        _info(g, f"saved model '{name}' to {zoo.zoo_dir(g.zoo)}")
        _print_mapping(summary, title=f"training summary: {name}")
    stopped = summary.get("stopped_by")
    if stopped:
        # A stopped run is not a finished one: 130 (Ctrl-C) or 143 (SIGTERM), as a shell
        # reports a process ended by that signal, once the checkpoint is safe.
        import signal

        raise typer.Exit(128 + int(signal.Signals[stopped]))


def _check_training_args(data: Path, name: str, logdir: Path | None, resume: bool) -> None:
    """The checks a training run can make before TensorFlow starts."""
    from imgfix import zoo

    zoo.check_name(name)
    if not data.is_dir():
        raise InputError(f"{data}: no such folder")
    checkpoint = Path(logdir or Path("runs") / name) / "checkpoint.keras"
    if checkpoint.exists() and not resume:
        raise InputError(f"{checkpoint}: a checkpoint exists; pass --resume or another --logdir")
    if checkpoint.exists():
        from imgfix.train import check_checkpoint

        check_checkpoint(checkpoint)  # a truncated one fails now, not after TensorFlow starts


@train_app.command("text")
def train_text(
    ctx: typer.Context,
    data: Path = _DATA,
    name: str = typer.Option("prompt-encoder", "--name", help="Zoo name of the text encoder."),
    kind: TextKind = typer.Option(TextKind.ngram, "--kind", help="Text tower."),
    image_size: int = typer.Option(48, "--image-size", min=16, help="Image tower input (px)."),
    steps: int = typer.Option(3000, "--steps", min=1, help="Training steps."),
    batch_size: int = typer.Option(256, "--batch-size", min=2, help="Concepts per step."),
    lr: float = typer.Option(1e-3, "--lr", min=0.0, help="Learning rate."),
    resume: bool = _RESUME,
    logdir: Path | None = _LOGDIR,
    checkpoint_minutes: float = _CHECKPOINT_MINUTES,
    devices: str = DEVICES_OPTION,
) -> None:
    """Train the prompt encoder (CLIP-style text and image towers) on a text-image corpus."""
    g = _g(ctx)
    _check_training_args(data, name, logdir, resume)
    _setup_training(g, devices, batch_size)
    from imgfix.train_prompt import train_text_encoder

    summary = train_text_encoder(
        data,
        name,
        kind=kind.value,
        image_size=image_size,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        resume=resume,
        logdir=logdir,
        zoo=g.zoo,
        seed=g.seed or 0,
        command=_run_command(),
        quiet=not g.chatty,
        checkpoint_minutes=checkpoint_minutes,
    )
    _report_training(g, name, summary)


def _train_generator(family: str, ctx: typer.Context, **kwargs: Any) -> None:
    g = _g(ctx)
    kwargs["condition"] = kwargs["condition"].value
    if kwargs.get("init") is not None:
        kwargs["init"] = str(kwargs["init"])
    _check_training_args(kwargs["data"], kwargs["name"], kwargs["logdir"], kwargs["resume"])
    init = kwargs.get("init")
    if init is not None and not Path(init).is_file():
        raise InputError(f"{init}: no such checkpoint file")
    if init is not None:
        from imgfix.train import check_checkpoint

        check_checkpoint(Path(init))
    if kwargs["condition"] in ("text", "concept"):
        from imgfix import zoo

        zoo.read_card(kwargs["text_encoder"], g.zoo, kind="text-encoder")
    _setup_training(g, kwargs.pop("devices"), kwargs["batch_size"])
    from imgfix.train_generators import train_generator

    summary = train_generator(
        family,
        zoo=g.zoo,
        seed=g.seed or 0,
        command=_run_command(),
        quiet=not g.chatty,
        **{k: v for k, v in kwargs.items() if v is not None},
    )
    _report_training(g, kwargs["name"], summary)


class Condition(str, Enum):
    text = "text"
    label = "label"
    concept = "concept"


class DPooling(str, Enum):
    average = "average"
    sum = "sum"


class Augment(str, Enum):
    diffaugment = "diffaugment"
    translation = "translation"


_CONDITION_HELP = (
    "text: prompts via the text encoder; label: one-hot folder/concept names; concept: one-hot "
    "concepts, prompts mapped to them by caption or by the text encoder."
)


@train_app.command("vae")
def train_vae(
    ctx: typer.Context,
    data: Path = _DATA,
    name: str = _NAME,
    condition: Condition = typer.Option(Condition.text, "--condition", help=_CONDITION_HELP),
    text_encoder: str = _TEXT_ENCODER,
    image_size: int = _GEN_SIZE,
    steps: int = _STEPS,
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per step."),
    lr: float | None = typer.Option(None, "--lr", min=0.0, help="Learning rate [1e-3]."),
    kl_weight: float | None = typer.Option(None, "--kl-weight", min=0.0, help="KL weight [1]."),
    warmup_steps: int = typer.Option(
        2000, "--kl-warmup", min=0, help="Steps over which the KL weight rises from 0."
    ),
    filters: int = _FILTERS,
    z_dim: int = typer.Option(64, "--z-dim", min=1, help="Latent size."),
    resume: bool = _RESUME,
    logdir: Path | None = _LOGDIR,
    checkpoint_minutes: float = _CHECKPOINT_MINUTES,
    checkpoints: int = _CHECKPOINTS,
    devices: str = DEVICES_OPTION,
) -> None:
    """Train a text-, label- or concept-conditioned VAE on a corpus."""
    options = dict(locals())
    _train_generator("vae", options.pop("ctx"), **options)


@train_app.command("cgan")
def train_cgan(
    ctx: typer.Context,
    data: Path = _DATA,
    name: str = _NAME,
    condition: Condition = typer.Option(Condition.text, "--condition", help=_CONDITION_HELP),
    text_encoder: str = _TEXT_ENCODER,
    image_size: int = _GEN_SIZE,
    steps: int = _STEPS,
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per step."),
    lr: float | None = typer.Option(
        None, "--lr", min=0.0, help="Generator (and encoder) learning rate [1e-4]."
    ),
    d_lr: float | None = typer.Option(
        None, "--d-lr", min=0.0, help="Discriminator learning rate [4e-4]."
    ),
    init: Path | None = typer.Option(
        None,
        "--init",
        help="Start from a VAE checkpoint (runs/VAE/checkpoint.keras) and keep its encoder "
        "as a reconstruction path (VAE-GAN).",
    ),
    rec_weight: float = typer.Option(
        10.0, "--rec-weight", min=0.0, help="Weight of the VAE-GAN reconstruction loss."
    ),
    kl_weight: float | None = typer.Option(
        None, "--kl-weight", min=0.0, help="KL weight on the VAE-GAN encoder [0.01]."
    ),
    filters: int = _FILTERS,
    z_dim: int = typer.Option(64, "--z-dim", min=1, help="Latent size (ignored with --init)."),
    d_pooling: DPooling = typer.Option(
        DPooling.sum,
        "--d-pooling",
        help="The critic's global pooling before its heads; sum as in SNGAN and BigGAN.",
    ),
    r1_gamma: float = typer.Option(
        0.01, "--r1", min=0.0, help="R1 penalty on the critic's gradient at real images (gamma)."
    ),
    augment: Augment = typer.Option(
        Augment.translation,
        "--augment",
        help="What the critic sees: DiffAugment's translation and cutout, or translation only.",
    ),
    resume: bool = _RESUME,
    logdir: Path | None = _LOGDIR,
    checkpoint_minutes: float = _CHECKPOINT_MINUTES,
    checkpoints: int = _CHECKPOINTS,
    devices: str = DEVICES_OPTION,
) -> None:
    """Train a text-, label- or concept-conditioned GAN on a corpus."""
    options = dict(locals())
    options["d_pooling"], options["augment"] = d_pooling.value, augment.value
    _train_generator("cgan", options.pop("ctx"), **options)


# --- zoo --------------------------------------------------------------------------------------


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_format_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_format_value(v) for v in value)
    return str(value)


def _print_mapping(mapping: dict, title: str | None = None) -> None:
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    _add_rows(table, mapping, "")
    out.print(table)


def _add_rows(table: Table, mapping: dict, indent: str) -> None:
    """Nested mappings (a card's metrics, data, training) become indented rows."""
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            table.add_row(f"{indent}{key}", "")
            _add_rows(table, value, indent + "  ")
        else:
            table.add_row(f"{indent}{key}", _format_value(value))


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


@zoo_app.command("list")
def zoo_list(ctx: typer.Context) -> None:
    """List the models in the zoo."""
    from imgfix import zoo

    g = _g(ctx)
    cards = zoo.list_cards(g.zoo)
    if g.json:
        _emit_json(cards)
        return
    folder = zoo.zoo_dir(g.zoo)
    if not cards:
        _info(g, f"no models in {folder}")
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
            card["error"] if "error" in card else _format_value(key_metrics),
            _model_mb(folder, card["name"]),
        )
    out.print(table)


@zoo_app.command("show")
def zoo_show(
    ctx: typer.Context, name: str = typer.Argument(..., help="Model name.", show_default=False)
) -> None:
    """Show a model's card."""
    from imgfix import zoo

    g = _g(ctx)
    card = zoo.read_card(name, g.zoo)
    if g.json:
        _emit_json(card)
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
    _print_mapping({**card, "path": str(folder / f"{name}.keras"), "MB": _model_mb(folder, name)})
    if concepts:
        out.print(f"[bold]concepts[/bold] ({len(concepts)}): ", end="")
        out.print(", ".join(concepts), markup=False, highlight=False)


@zoo_app.command("verify")
def zoo_verify(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="Model name (default: every model)."),
) -> None:
    """Check model files against the sha256 in their cards."""
    from imgfix import zoo

    g = _g(ctx)
    if name is not None:
        zoo.verify(name, g.zoo)
        if g.json:
            _emit_json({"results": [{"name": name, "ok": True, "message": ""}], "failed": 0})
        else:
            _info(g, f"ok  {name}")
        return
    results = []
    for card in zoo.list_cards(g.zoo):
        try:
            zoo.verify(card["name"], g.zoo)
            results.append({"name": card["name"], "ok": True, "message": ""})
            _info(g, f"ok  {card['name']}")
        except ImgfixError as exc:
            results.append({"name": card["name"], "ok": False, "message": str(exc)})
            print(f"imgfix: failed: {exc}", file=sys.stderr, flush=True)
    failed = sum(not r["ok"] for r in results)
    if g.json:
        _emit_json({"results": results, "failed": failed})
    elif not results:
        _info(g, f"no models in {zoo.zoo_dir(g.zoo)}")
    if failed:
        raise typer.Exit(1)


@zoo_app.command("rm")
def zoo_rm(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name.", show_default=False),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a model and its card."""
    from imgfix import zoo

    g = _g(ctx)
    folder = zoo.zoo_dir(g.zoo)
    zoo.check_name(name)
    if not ((folder / f"{name}.keras").exists() or (folder / f"{name}.json").exists()):
        zoo.read_card(name, g.zoo)  # raises the "unknown model" error listing the others
    if not yes:
        if not sys.stdin.isatty():
            raise InputError(f"zoo rm {name}: not asking on a non-interactive input; use --yes")
        typer.confirm(f"Delete model '{name}' from {folder}?", abort=True, err=True)
    zoo.remove(name, g.zoo)
    _info(g, f"removed '{name}'")


@zoo_app.command("import")
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

    g = _g(ctx)
    written = zoo.import_model(file, name=name, card=card, zoo=g.zoo)
    problem = (written.get("runtime") or {}).get("error")
    if problem:
        _warn(f"'{written['name']}' will run on TensorFlow: {problem}")
    if g.json:
        _emit_json(written)
    else:
        _info(g, f"imported '{written['name']}' (sha256 {written['sha256'][:12]}...)")


@zoo_app.command("export-runtime")
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

    g = _g(ctx)
    names = names or [card["name"] for card in zoo.list_cards(g.zoo)]
    for name in names:
        zoo.read_card(name, g.zoo)
    runtime.setup(g.device, g.seed)
    cards = []
    for name in names:
        card = zoo.export_runtime(name, g.zoo, weights.value)
        cards.append(card)
        entry = card["runtime"]
        _info(g, f"wrote {entry['file']} ({entry['weights']}, {entry['bytes'] / 1e6:.1f} MB)")
    if g.json:
        _emit_json(cards)


@zoo_app.command("export")
def zoo_export(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name.", show_default=False),
    dest: Path = typer.Argument(..., help="Destination folder.", show_default=False),
) -> None:
    """Copy a model and its card to a folder (after checking its sha256)."""
    from imgfix import zoo

    g = _g(ctx)
    path = zoo.export_model(name, dest, g.zoo)
    if g.json:
        _emit_json({"name": name, "model": str(path), "card": str(path.with_suffix(".json"))})
    else:
        _info(g, f"exported '{name}' to {dest}")


# --- data -------------------------------------------------------------------------------------


@data_app.command("photos")
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

    g = _g(ctx)
    with _progress(g, "collecting") as (_, update):

        def on_progress(done: int, total: int) -> None:
            update(completed=done, total=total)

        manifest = collect_photos(
            out_dir, sources, min_side=min_side, max_side=max_side, on_progress=on_progress
        )
    if g.json:
        _emit_json(manifest)
        return
    dropped = manifest.get("dropped", {})
    reasons = ", ".join(f"{count} {reason}" for reason, count in dropped.items() if count)
    _info(
        g,
        f"kept {len(manifest.get('images', []))} photos in {out_dir}; "
        f"dropped {sum(dropped.values())}" + (f" ({reasons})" if reasons else ""),
    )


@data_app.command("emoji")
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

    g = _g(ctx)
    if noto is not None and not noto.is_file():
        raise InputError(f"{noto}: no such font file")
    if cldr is not None and not (cldr / "annotations").is_dir():
        raise InputError(f"{cldr}: not a CLDR 'common' folder (no annotations/ inside)")
    with _progress(g, "rendering") as (_, update):
        summary = build_corpus(
            out_dir,
            size=size,
            noto=noto,
            cldr=cldr,
            limit=limit,
            on_progress=lambda done, total: update(completed=done, total=total),
        )
    if g.json:
        _emit_json(summary)
    else:
        dropped = ", ".join(f"{k} {v}" for k, v in summary["dropped_undrawable"].items())
        _info(
            g,
            f"wrote {summary['images']} images of {summary['concepts']} concepts to {out_dir} "
            f"(fonts: {', '.join(summary['fonts'])}; undrawable glyphs dropped: {dropped})",
        )


# --- info -------------------------------------------------------------------------------------


@app.command()
def info(ctx: typer.Context) -> None:
    """Show versions, the inference runtime and why, the devices and the zoo folder."""
    from imgfix import runtime

    g = _g(ctx)
    runtime.setup(g.device, g.seed, g.threads)
    details = runtime.device_info(g.zoo, g.settings)
    if g.json:
        _emit_json(details)
    else:
        _print_mapping(details)


# --- entry point ------------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; errors become one line on stderr and an exit code (1 runtime, 2 usage)."""
    try:
        app(args=argv, prog_name="imgfix", standalone_mode=True)
    except ImgfixError as exc:
        if _globals.debug:
            traceback.print_exc()
        print(f"imgfix: error: {_first_line(exc)}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("imgfix: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    except Exception as exc:
        if _globals.debug:
            traceback.print_exc()
            hint = ""
        else:
            hint = " (run with --debug for the traceback)"
        message = _first_line(exc)
        detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        print(f"imgfix: error: {detail}{hint}", file=sys.stderr, flush=True)
        sys.exit(1)
