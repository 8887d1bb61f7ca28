"""Training loop pieces shared by every model: progress, checkpoints, sample grids, resume,
clean stops on Ctrl-C or SIGTERM, and export of the trained network to the zoo.

A run lives in ``logdir`` (default ``runs/<name>``):
  checkpoint.keras   the whole training model, optimizer state included (written atomically)
  samples/           a sample grid PNG at every checkpoint (input, mask, output, truth)
  log.jsonl          one line per checkpoint: step, losses, validation figures
  tensorboard/       the same figures and the sample grid as TensorBoard event files
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import numbers
import signal
import time
from pathlib import Path

import numpy as np

from imgfix.errors import ImgfixError, InputError


class StopFlag:
    """Turns the first Ctrl-C or SIGTERM into a request to checkpoint and stop; a second
    Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False
        self.signum: int | None = None  # the signal that asked to stop
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def current_step(model) -> int:
    """Optimizer steps taken so far, for a training subclass (``.step``) or a plain model."""
    step = getattr(model, "step", None)
    if step is None:
        step = model.optimizer.iterations
    return int(step)


def sample_grid(images: np.ndarray, masks: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Rows of (masked input, mask, output, truth) as one ``uint8`` image."""
    rows = []
    for image, mask, output in zip(images, masks, outputs, strict=True):
        masked = image * (1 - mask) + 0.5 * mask
        rows.append(np.concatenate([masked, np.repeat(mask, 3, -1), output, image], axis=1))
    return (np.clip(np.concatenate(rows, axis=0), 0, 1) * 255 + 0.5).astype(np.uint8)


def hole_psnr_np(truth: np.ndarray, prediction: np.ndarray, masks: np.ndarray) -> float:
    """PSNR in dB over the hole pixels of a whole set."""
    err = ((truth - prediction) ** 2 * masks).sum() / max(3.0 * masks.sum(), 1.0)
    return float(10 * np.log10(1.0 / max(err, 1e-10)))


class Checkpointer:
    """Saves the training model, a sample grid and a log line, and exports the trained network.

    ``validate()`` returns ``(figures, grid)``: a dict of validation numbers for the log and the
    card, and a ``uint8`` sample image (or None). Each save also goes to TensorBoard under
    ``logdir/tensorboard``; ``close()`` ends that event file once the run is over.
    """

    def __init__(self, trainer, logdir: Path, validate, export):
        self.trainer, self.logdir, self.validate, self.export = trainer, logdir, validate, export
        self.path = logdir / "checkpoint.keras"
        self.last_time = time.monotonic()
        self.saved_step: int | None = None
        """The step of the last checkpoint this run wrote (None: the one it started from)."""
        self._events = None  # opened by the first save, so a run that saves nothing leaves none

    def save(self, logs: dict) -> dict:
        from PIL import Image

        from imgfix.io import atomic_path, atomic_write_text

        step = current_step(self.trainer)
        if diverged(logs):
            raise ImgfixError(f"training diverged before step {step}; the checkpoint was kept")
        with atomic_path(self.path) as tmp:
            self.trainer.save(tmp)
        figures, grid = self.validate()
        png = None
        if grid is not None:
            buffer = io.BytesIO()
            Image.fromarray(grid).save(buffer, format="PNG")
            png = buffer.getvalue()
            samples = self.logdir / "samples"  # atomic_path creates it, naming it if it cannot
            for target in (samples / f"step_{step:07d}.png", samples / "latest.png"):
                with atomic_path(target) as tmp:
                    tmp.write_bytes(png)
        entry = {
            "step": step,
            "time": time.time(),
            **{k: float(v) for k, v in logs.items()},
            **figures,
        }
        log = self.logdir / "log.jsonl"
        previous = log.read_text() if log.exists() else ""
        atomic_write_text(log, previous + json.dumps(entry) + "\n")
        self.export(step, figures)
        self.last_time, self.saved_step = time.monotonic(), step
        self._write_events(step, entry, png, None if grid is None else grid.shape)
        return entry

    def _write_events(self, step: int, entry: dict, png: bytes | None, shape) -> None:
        """The log line's numbers as scalars and the grid as the image "samples", at ``step``.

        Event files are append-only logs that TensorBoard reads while they grow and whose
        torn last record (a killed run) it skips, so they are not written through a temporary
        file; a resumed run opens a new one in the same folder. Only ``tf.summary.write`` with
        the plugins' metadata is used: ``tf.summary.scalar`` and ``image`` need the tensorboard
        package, and nothing here depends on the Keras backend or creates a TF variable.
        """
        from imgfix.runtime import import_tensorflow

        tf = import_tensorflow()
        folder = self.logdir / "tensorboard"
        try:
            if self._events is None:
                self._events = tf.summary.create_file_writer(str(folder))
            with self._events.as_default():
                scalars = tf.compat.v1.SummaryMetadata()
                scalars.plugin_data.plugin_name = "scalars"
                for name, value in entry.items():
                    if name not in ("step", "time") and _is_number(value):
                        tf.summary.write(name, tf.constant(float(value)), step, scalars)
                if png is not None:
                    images = tf.compat.v1.SummaryMetadata()
                    images.plugin_data.plugin_name = "images"
                    # The images plugin's layout: width, height, then the encoded images.
                    tensor = tf.constant([str(shape[1]).encode(), str(shape[0]).encode(), png])
                    tf.summary.write("samples", tensor, step, images)
            self._events.flush()
        except tf.errors.OpError as exc:
            raise ImgfixError(
                f"{folder}: cannot write TensorBoard events ({exc.message})"
            ) from None

    def close(self) -> None:
        """Flush and close the TensorBoard event file: the run is over."""
        if self._events is not None:
            from imgfix.runtime import import_tensorflow

            events, self._events = self._events, None
            # Every save flushed its events: a failing close (the error a save already
            # reported) loses nothing and must not hide that error.
            with contextlib.suppress(import_tensorflow().errors.OpError):
                events.close()


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def inpainter_validation(generator, val: tuple[np.ndarray, np.ndarray]):
    """Hole PSNR of the network and of what it builds on (the coarse fill of a context encoder,
    the base inpainter of a texture model), the texture figures of ``imgfix.metrics.hole_texture``
    (as the benchmark reports them), plus a sample grid."""
    from imgfix import metrics

    names = {layer.name for layer in generator.layers}
    reference = "base" if "base" in names else "coarse_fill"

    def validate() -> tuple[dict, np.ndarray]:
        images, masks = val
        outputs = generator.predict([images, masks], batch_size=16, verbose=0)
        before = np.asarray(generator.get_layer(reference)([images, masks]))
        texture = metrics.hole_texture(images, outputs, masks)
        figures = {
            "val_hole_psnr": round(hole_psnr_np(images, outputs, masks), 3),
            f"val_{reference}_psnr": round(hole_psnr_np(images, before, masks), 3),
            "val_hole_l1": round(
                float((np.abs(images - outputs) * masks).sum() / (3 * masks.sum())), 5
            ),
            **{f"val_{k}": round(v, 4) for k, v in texture.items()},
        }
        return figures, sample_grid(images[:8], masks[:8], outputs[:8])

    return validate


def _progress_callback(
    trainer, total: int, checkpointer, every_steps: int, minutes: float, stop, quiet
):
    import keras
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    class TrainingProgress(keras.callbacks.Callback):
        """Draws the bar, checkpoints on schedule, and stops at ``total`` steps or on request."""

        def on_train_begin(self, logs=None):
            self.progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[losses]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                disable=quiet,
            )
            self.progress.start()
            self.step = current_step(trainer)
            self.task = self.progress.add_task("train", total=total, completed=self.step, losses="")
            self.logs, self.diverged_at = {}, None

        def on_train_batch_end(self, batch, logs=None):
            # Counted here, not read from the optimizer: under JAX the model's variables hold
            # no values between syncs, and ``self.model`` syncs them, which is for checkpoints.
            self.step += 1
            step = self.step
            self.logs = logs or {}
            if step % 10 == 0 or step >= total:
                text = "  ".join(f"{k} {float(v):.4f}" for k, v in self.logs.items())
                self.progress.update(self.task, completed=step, losses=text)
                if diverged(self.logs):
                    self.diverged_at = step
                    trainer.stop_training = True
                    return
            due = (
                step % every_steps == 0 or time.monotonic() - checkpointer.last_time > minutes * 60
            )
            if step >= total or stop.requested:
                trainer.stop_training = True
            elif due:
                model = self.model  # syncs the variables (JAX) before they are read
                checkpointer.save(self.logs)
                model.reset_metrics()

        def on_train_end(self, logs=None):
            self.progress.stop()

    return TrainingProgress()


def prepare_run(name: str, logdir: Path | None, resume: bool) -> tuple[Path, Path]:
    """The run folder (default ``runs/<name>``) and its checkpoint path; refuses to overwrite
    an existing checkpoint unless the run is resumed."""
    logdir = Path(logdir or Path("runs") / name)
    checkpoint = logdir / "checkpoint.keras"
    if checkpoint.exists() and not resume:
        raise InputError(f"{checkpoint}: a checkpoint exists; pass --resume or another --logdir")
    logdir.mkdir(parents=True, exist_ok=True)
    return logdir, checkpoint


def check_checkpoint(path: Path) -> Path:
    """Refuse, without TensorFlow, a checkpoint that is not a complete ``.keras`` archive: one
    truncated by a full disk or a copy cut short (Keras itself says "File not found" for it)."""
    import zipfile

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a checkpoint file")
    if not path.exists():
        raise InputError(f"{path}: no such checkpoint file")
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # reads every member and checks its CRC
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except Exception as exc:  # BadZipFile, EOFError, zlib.error, OSError: all mean damaged
        raise ImgfixError(
            f"{path}: checkpoint is truncated or corrupt ({_first_line(exc)}); "
            "restore it, or start over with another --logdir"
        ) from None
    if damaged is not None:
        raise ImgfixError(
            f"{path}: checkpoint is corrupt ({damaged} fails its CRC check); "
            "restore it, or start over with another --logdir"
        )
    return path


def load_checkpoint(path: Path):
    """The training model saved at ``path``, optimizer state included (``--resume``,
    ``--init``), after ``check_checkpoint``; any failure is one line naming the file."""
    import keras

    import imgfix.models  # noqa: F401  registers the custom objects

    check_checkpoint(path)
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:
        raise ImgfixError(f"{path}: cannot load the checkpoint ({_first_line(exc)})") from exc
    # A compiled checkpoint keeps the XLA choice of the backend that wrote it (TensorFlow on a
    # CPU: off, so JAX would run eagerly); None lets this backend choose again.
    model.jit_compile = None
    return model


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def previous_card(name: str, zoo: Path | None, resume: bool) -> dict:
    """The zoo card of a resumed run (its metrics and training time carry over), else {}."""
    from imgfix import zoo as zoo_mod

    path = zoo_mod.zoo_dir(zoo) / f"{name}.json"
    if not (resume and path.exists()):
        return {}
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: card is not valid JSON ({_first_line(exc)})") from None


def fit_with_checkpoints(
    trainer,
    dataset,
    total: int,
    checkpointer: Checkpointer,
    *,
    every_steps: int,
    minutes: float,
    stop: StopFlag,
    quiet: bool,
) -> dict:
    """Run ``trainer.fit`` up to ``total`` steps with the progress bar and scheduled checkpoints,
    then write a final checkpoint; returns its log entry."""
    try:
        start_step = current_step(trainer)
        logs: dict = {}
        if start_step < total:
            callback = _progress_callback(
                trainer, total, checkpointer, every_steps, minutes, stop, quiet
            )
            trainer.fit(
                dataset,
                epochs=1,
                steps_per_epoch=total - start_step,
                callbacks=[callback],
                verbose=0,
                shuffle=False,  # the tf.data pipelines shuffle themselves
            )
            logs = callback.logs
            if callback.diverged_at is not None:
                bad = ", ".join(k for k, v in logs.items() if not math.isfinite(float(v)))
                last = (
                    checkpointer.saved_step if checkpointer.saved_step is not None else start_step
                )
                kept = (
                    f"its checkpoint of step {last} is kept: --resume it with a lower --lr"
                    if checkpointer.path.exists()
                    else "no checkpoint was written: start again with a lower --lr"
                )
                raise ImgfixError(
                    f"training diverged: {bad} not finite at step {callback.diverged_at}; {kept}"
                )
        return checkpointer.save(logs if current_step(trainer) > start_step else {})
    finally:
        checkpointer.close()


def diverged(logs: dict) -> bool:
    """True when a logged loss or metric is NaN or infinite: the weights are lost, so the run
    must stop before it overwrites its last good checkpoint."""
    return not all(math.isfinite(float(v)) for v in logs.values())


def run_summary(
    name: str,
    trainer,
    start_step: int,
    started: float,
    stop: StopFlag,
    checkpoint: Path,
    entry: dict,
) -> dict:
    """What a training command reports: steps, time, and the last checkpoint's log entry."""
    step = current_step(trainer)
    return {
        "name": name,
        "steps": step,
        "steps_this_run": step - start_step,
        "stopped_early": stop.requested,
        "stopped_by": signal.Signals(stop.signum).name if stop.signum else None,
        "seconds": round(time.time() - started, 1),
        "checkpoint": str(checkpoint),
        **{k: v for k, v in entry.items() if k not in ("step", "time")},
    }


ARCHITECTURES = ("context", "texture")
CRITICS = ("patch", "lama")


def build_inpainting_trainer(
    filters: int = 32,
    lr: float = 2e-4,
    adv_weight: float = 0.001,
    rec_loss: str = "psnr",
    arch: str = "context",
    base=None,
    texture_weight: float = 0.0,
    critic: str = "patch",
    fm_weight: float = 100.0,
    r1_gamma: float = 0.001,
    transfer: str = "blocks",
):
    """The compiled training model a new ``train_inpainter`` run starts from (the benchmark
    times this same model). ``arch`` ``texture`` wraps ``base``, a trained context encoder,
    in ``build_texture_inpainter`` (see ``imgfix.models.texture``); ``arch`` ``context`` with a
    ``base`` starts from the base's weights. ``critic`` ``patch`` is the hinge PatchGAN that sees
    the mask; ``lama`` is LaMa's recipe (``imgfix.models.adversarial``), with ``fm_weight`` and
    ``r1_gamma``."""
    import keras

    from imgfix.models.adversarial import FeatureMatchingGAN, build_feature_critic
    from imgfix.models.context_encoder import (
        InpaintingGAN,
        build_context_encoder,
        build_patch_discriminator,
    )
    from imgfix.models.texture import build_texture_inpainter, rebuild_texture_inpainter

    if arch not in ARCHITECTURES:
        raise InputError(f"--arch {arch}: must be one of {', '.join(ARCHITECTURES)}")
    if critic not in CRITICS:
        raise InputError(f"--critic {critic}: must be one of {', '.join(CRITICS)}")
    if arch == "texture":
        if base is None:
            raise InputError("--arch texture needs a trained base inpainter (--base)")
        if arch_of(base) == "texture":  # go on from a texture model, its base frozen
            generator = rebuild_texture_inpainter(base, transfer=transfer)
        else:
            generator = build_texture_inpainter(base, filters=filters, transfer=transfer)
    elif base is not None:
        if arch_of(base) != "context":
            raise InputError("--arch context --base: the base must be a context encoder")
        generator, base.trainable = base, True
    else:
        generator = build_context_encoder(filters=filters)
    optimizers = {
        "g_optimizer": keras.optimizers.Adam(lr, beta_1=0.5),
        "d_optimizer": keras.optimizers.Adam(lr, beta_1=0.5),
        "adv_weight": adv_weight,
        "rec_loss": rec_loss,
        "texture_weight": texture_weight,
    }
    if critic == "lama":
        trainer = FeatureMatchingGAN(
            generator,
            build_feature_critic(filters=filters),
            fm_weight=fm_weight,
            r1_gamma=r1_gamma,
            **optimizers,
        )
    else:
        trainer = InpaintingGAN(generator, build_patch_discriminator(filters=filters), **optimizers)
    trainer.compile()
    return trainer


DESCRIPTIONS = {
    "context": "Context encoder: a coarse push-pull fill refined by a U-Net",
    "texture": "Texture transfer: a context encoder's fill plus detail copied by attention "
    "from the known region",
}


def arch_of(generator) -> str:
    """``texture`` for a texture-transfer generator, else ``context``."""
    names = {layer.name for layer in generator.layers}
    return "texture" if names & {"transfer", "texture_head"} else "context"


def transfer_of(generator) -> str:
    """How a texture generator copies detail: ``offsets`` (``OffsetTransfer``) or ``blocks``."""
    from imgfix.models.texture import OffsetTransfer

    names = {layer.name: layer for layer in generator.layers}
    head = names.get("texture_head", generator)
    return "offsets" if isinstance(head.get_layer("transfer"), OffsetTransfer) else "blocks"


def train_inpainter(
    data: Path,
    name: str,
    *,
    image_size: int = 128,
    epochs: int = 1,
    steps: int = 1000,
    batch_size: int = 16,
    resume: bool = False,
    logdir: Path | None = None,
    zoo: Path | None = None,
    seed: int = 0,
    command: str = "",
    quiet: bool = False,
    checkpoint_minutes: float = 5.0,
    lr: float | None = None,
    adv_weight: float = 0.001,
    rec_loss: str = "psnr",
    filters: int = 32,
    arch: str = "context",
    base: str | None = None,
    texture_weight: float | None = None,
    critic: str = "patch",
    fm_weight: float = 100.0,
    r1_gamma: float = 0.001,
    transfer: str = "blocks",
) -> dict:
    """Train (or resume) an inpainter and export it to the zoo as ``name``: a context encoder,
    or (``arch="texture"``) a texture-transfer model around the zoo inpainter ``base``.

    The run is ``epochs`` x ``steps`` optimizer steps; a checkpoint is written at the end of each
    epoch, every ``checkpoint_minutes``, and when the run is stopped. A resumed run keeps its
    settings, except ``lr`` and ``texture_weight`` when they are given: a campaign lowers its
    learning rate, or moves along the perception-distortion trade-off, from the next step on.
    """
    import keras

    from imgfix import zoo as zoo_mod
    from imgfix.data.inpainting import (
        MASK_BANK,
        inpainting_dataset,
        list_images,
        load_photos,
        split_holdout,
        validation_set,
    )
    from imgfix.models.context_encoder import MULTIPLE

    zoo_mod.check_name(name)
    if image_size % MULTIPLE:
        raise InputError(f"--image-size {image_size}: must be a multiple of {MULTIPLE}")
    if min(epochs, steps, batch_size) < 1:
        raise InputError("--epochs, --steps and --batch-size must be at least 1")
    logdir, checkpoint = prepare_run(name, logdir, resume)

    # From here on Ctrl-C and SIGTERM only ask for a stop: even a stop during set-up ends in a
    # checkpoint rather than a lost run.
    with StopFlag() as stop:
        files = list_images(Path(data))
        train_files, val_files = split_holdout(files)
        val = validation_set(load_photos(val_files, image_size), image_size)
        if resume and checkpoint.exists():
            trainer = load_checkpoint(checkpoint)
            trainer.compile()  # InpaintingGAN.compile takes no arguments to restore
            if lr is not None:
                trainer.g_optimizer.learning_rate.assign(lr)
                trainer.d_optimizer.learning_rate.assign(lr)
            if texture_weight is not None:
                trainer.texture_weight = texture_weight
        else:
            base_model = None
            if arch == "texture" or base:
                base_model, _ = zoo_mod.load_model(base or "photo-inpainter", zoo, "inpainter")
            trainer = build_inpainting_trainer(
                filters,
                lr or 2e-4,
                adv_weight,
                rec_loss,
                arch,
                base_model,
                texture_weight or 0.0,
                critic,
                fm_weight,
                r1_gamma,
                transfer,
            )
        # A resumed run draws new crops rather than replaying the ones it started with.
        total, start_step, started = epochs * steps, trainer.step, time.time()
        # No more distinct masks than the run will draw (each is also flipped and rotated).
        bank = min(MASK_BANK, max(64, (total - start_step) * batch_size))
        dataset = inpainting_dataset(
            load_photos(train_files, image_size),
            image_size,
            batch_size,
            seed + start_step,
            mask_bank=bank,
        )
        old_card = previous_card(name, zoo, resume)
        previous_seconds = old_card.get("training", {}).get("seconds", 0.0)

        def export(step: int, figures: dict) -> None:
            card = {
                "name": name,
                "kind": "inpainter",
                "description": DESCRIPTIONS[arch_of(trainer.generator)],
                "image_size": image_size,
                "multiple": MULTIPLE,
                "work_size": 512,
                "params": int(trainer.generator.count_params()),
                "data": {
                    "path": str(data),
                    "train_images": len(train_files),
                    "validation_images": len(val_files),
                },
                "training_command": command,
                "steps": step,
                "training": {
                    "batch_size": batch_size,
                    "lr": float(keras.ops.convert_to_numpy(trainer.g_optimizer.learning_rate)),
                    "adv_weight": trainer.adv_weight,
                    "rec_loss": trainer.rec_loss,
                    "texture_weight": trainer.texture_weight,
                    **(
                        {
                            "critic": "lama",
                            "fm_weight": trainer.fm_weight,
                            "r1_gamma": trainer.r1_gamma,
                        }
                        if hasattr(trainer, "fm_weight")
                        else {"critic": "patch"}
                    ),
                    **(
                        {"transfer": transfer_of(trainer.generator)}
                        if arch_of(trainer.generator) == "texture"
                        else {}
                    ),
                    "seconds": round(previous_seconds + time.time() - started, 1),
                },
                # Figures measured by the benchmark stay until it measures again.
                "metrics": {**old_card.get("metrics", {}), "validation": figures},
            }
            zoo_mod.save_model(trainer.generator, name, card, zoo)

        checkpointer = Checkpointer(
            trainer, logdir, inpainter_validation(trainer.generator, val), export
        )
        entry = fit_with_checkpoints(
            trainer,
            dataset,
            total,
            checkpointer,
            every_steps=steps,
            minutes=checkpoint_minutes,
            stop=stop,
            quiet=quiet,
        )
    return run_summary(name, trainer, start_step, started, stop, checkpoint, entry)
