"""``imgfix train inpainter|text|vae|cgan``: train a model and add it to the zoo."""

from __future__ import annotations

import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from imgfix.cli.common import Globals, emit_json, group, options_of, print_mapping, say
from imgfix.errors import InputError

app = group("Train a model and add it to the zoo.")

DEVICES_OPTION = typer.Option(
    "1",
    "--devices",
    metavar="N|all",
    help="Devices to train on, data parallel (JAX DataParallel, TensorFlow MirroredStrategy); "
    "the global --batch-size is split over them.",
)


class Precision(str, Enum):
    float32 = "float32"
    mixed = "mixed"


PRECISION_OPTION = typer.Option(
    Precision.float32,
    "--precision",
    help="mixed: compute in bfloat16 with float32 weights (mixed_bfloat16), for GPUs; the zoo "
    "gets a float32 copy.",
)


# Several processes, one per machine (docs/scale.md); the defaults are Keras's own variables.
COORDINATOR_OPTION = typer.Option(
    None,
    "--coordinator",
    metavar="HOST:PORT",
    envvar="KERAS_DISTRIBUTION_JOB_ADDRESSES",
    help="Process 0's address, to train across processes (JAX).",
    show_default=False,
)
PROCESSES_OPTION = typer.Option(
    None,
    "--processes",
    min=1,
    envvar="KERAS_DISTRIBUTION_NUM_PROCESSES",
    help="Processes in the run, one per machine; --batch-size is the global batch.",
    show_default=False,
)
PROCESS_ID_OPTION = typer.Option(
    None,
    "--process-id",
    min=0,
    envvar="KERAS_DISTRIBUTION_PROCESS_ID",
    help="This process's rank, 0 to --processes - 1; process 0 writes the files.",
    show_default=False,
)


def _setup_training(
    g: Globals,
    devices: str,
    batch_size: int,
    coordinator: str | None = None,
    processes: int | None = None,
    process_id: int | None = None,
    precision: Precision = Precision.float32,
) -> None:
    """Before any model is built: the other processes, the device, the seeds, --devices and
    --precision. Only the chief (process 0) draws progress and prints messages."""
    from imgfix import runtime
    from imgfix.training.devices import is_chief, join_cluster, parse_cluster, use_devices

    if coordinator is not None:  # Keras's variable lists every address: process 0's first
        coordinator = coordinator.split(",")[0].strip()
    join_cluster(parse_cluster(coordinator, processes, process_id))
    runtime.setup(g.device, g.seed)
    use_devices(devices, batch_size)
    if precision is Precision.mixed:
        import keras

        keras.config.set_dtype_policy("mixed_bfloat16")
    if not is_chief():
        g.quiet = True


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


@app.command("inpainter")
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
    coordinator: str | None = COORDINATOR_OPTION,
    processes: int | None = PROCESSES_OPTION,
    process_id: int | None = PROCESS_ID_OPTION,
    precision: Precision = PRECISION_OPTION,
) -> None:
    """Train an inpainting model on a folder of photos."""
    g = options_of(ctx)
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

    _setup_training(g, devices, batch_size, coordinator, processes, process_id, precision)
    from imgfix.training.inpainter import train_inpainter as run_training

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
        emit_json(summary)
    else:
        say(g, f"saved model '{name}' to {zoo.zoo_dir(g.zoo)}")
        print_mapping(summary, title=f"training summary: {name}")
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
        from imgfix.training.checkpoints import check_checkpoint

        check_checkpoint(checkpoint)  # a truncated one fails now, not after TensorFlow starts


@app.command("text")
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
    coordinator: str | None = COORDINATOR_OPTION,
    processes: int | None = PROCESSES_OPTION,
    process_id: int | None = PROCESS_ID_OPTION,
    precision: Precision = PRECISION_OPTION,
) -> None:
    """Train the prompt encoder (CLIP-style text and image towers) on a text-image corpus."""
    g = options_of(ctx)
    _check_training_args(data, name, logdir, resume)
    _setup_training(g, devices, batch_size, coordinator, processes, process_id, precision)
    from imgfix.training.prompt import train_text_encoder

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
    g = options_of(ctx)
    kwargs["condition"] = kwargs["condition"].value
    if kwargs.get("init") is not None:
        kwargs["init"] = str(kwargs["init"])
    _check_training_args(kwargs["data"], kwargs["name"], kwargs["logdir"], kwargs["resume"])
    init = kwargs.get("init")
    if init is not None and not Path(init).is_file():
        raise InputError(f"{init}: no such checkpoint file")
    if init is not None:
        from imgfix.training.checkpoints import check_checkpoint

        check_checkpoint(Path(init))
    if kwargs["condition"] in ("text", "concept"):
        from imgfix import zoo

        zoo.read_card(kwargs["text_encoder"], g.zoo, kind="text-encoder")
    setup = [kwargs.pop(k) for k in ("devices", "coordinator", "processes", "process_id")]
    _setup_training(g, setup[0], kwargs["batch_size"], *setup[1:], kwargs.pop("precision"))
    from imgfix.training.generators import train_generator

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


class DCondition(str, Enum):
    learned = "learned"
    text = "text"


class Augment(str, Enum):
    diffaugment = "diffaugment"
    translation = "translation"


_CONDITION_HELP = (
    "text: prompts via the text encoder; label: one-hot folder/concept names; concept: one-hot "
    "concepts, prompts mapped to them by caption or by the text encoder."
)


@app.command("vae")
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
    coordinator: str | None = COORDINATOR_OPTION,
    processes: int | None = PROCESSES_OPTION,
    process_id: int | None = PROCESS_ID_OPTION,
    precision: Precision = PRECISION_OPTION,
) -> None:
    """Train a text-, label- or concept-conditioned VAE on a corpus."""
    options = dict(locals())
    _train_generator("vae", options.pop("ctx"), **options)


@app.command("cgan")
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
    mismatch_weight: float = typer.Option(
        0.5,
        "--mismatch",
        min=0.0,
        max=1.0,
        help="Share of the critic's 'not real' term taken by real images under a wrong "
        "condition (matching-aware); the rest is generated images.",
    ),
    d_warmup: int = typer.Option(
        0,
        "--d-warmup",
        min=0,
        help="Steps at the start in which only the critic learns (the generator's learning "
        "rate is 0).",
    ),
    d_steps: int | None = typer.Option(
        None,
        "--d-steps",
        min=1,
        help="Critic updates per generator update (n_critic) [1]; a resumed run may change it.",
    ),
    d_condition: DCondition = typer.Option(
        DCondition.learned,
        "--d-condition",
        help="How the critic embeds a concept (--condition concept): a learned vector per "
        "concept, or the concept's text centroid through one shared map.",
    ),
    resume: bool = _RESUME,
    logdir: Path | None = _LOGDIR,
    checkpoint_minutes: float = _CHECKPOINT_MINUTES,
    checkpoints: int = _CHECKPOINTS,
    devices: str = DEVICES_OPTION,
    coordinator: str | None = COORDINATOR_OPTION,
    processes: int | None = PROCESSES_OPTION,
    process_id: int | None = PROCESS_ID_OPTION,
    precision: Precision = PRECISION_OPTION,
) -> None:
    """Train a text-, label- or concept-conditioned GAN on a corpus."""
    options = dict(locals())
    options["d_pooling"], options["augment"] = d_pooling.value, augment.value
    options["d_condition"] = d_condition.value
    _train_generator("cgan", options.pop("ctx"), **options)
