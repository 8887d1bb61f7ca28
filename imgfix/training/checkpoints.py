"""A run's folder and its checkpoints.

A run lives in ``logdir`` (default ``runs/<name>``):
  checkpoint.keras   the whole training model, optimizer state included (written atomically)
  samples/           a sample grid PNG at every checkpoint
  log.jsonl          one line per checkpoint: step, losses, validation figures
  tensorboard/       the same figures and the sample grid as TensorBoard event files

``Checkpointer`` writes them and exports the trained network to the zoo; ``load_checkpoint`` is
what ``--resume`` and ``--init`` read.
"""

from __future__ import annotations

import contextlib
import io
import json
import numbers
import tempfile
import time
from pathlib import Path

from imgfix.errors import ImgfixError, InputError, first_line
from imgfix.training.devices import is_chief
from imgfix.training.loop import current_step, diverged


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
        """Checkpoint, validate, log and export at the current step; returns the log entry.
        In a run over several processes every one validates (the model's calls are
        collective) and only the chief writes."""
        from imgfix.io import atomic_path, atomic_write_text

        step = current_step(self.trainer)
        if diverged(logs):
            raise ImgfixError(f"training diverged before step {step}; the checkpoint was kept")
        chief = is_chief()
        if chief:
            with atomic_path(self.path) as tmp:
                self.trainer.save(tmp)
        else:  # Keras's saving checks every variable across the processes: all of them save
            with tempfile.TemporaryDirectory(prefix="imgfix-worker-") as folder:
                self.trainer.save(Path(folder) / "checkpoint.keras")
        figures, grid = self.validate()
        entry = {
            "step": step,
            "time": time.time(),
            **{k: float(v) for k, v in logs.items()},
            **figures,
        }
        if not chief:
            self.last_time, self.saved_step = time.monotonic(), step
            return entry
        png = None
        if grid is not None:
            png = _png(grid)
            samples = self.logdir / "samples"  # atomic_path creates it, naming it if it cannot
            for target in (samples / f"step_{step:07d}.png", samples / "latest.png"):
                with atomic_path(target) as tmp:
                    tmp.write_bytes(png)
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


def _png(grid) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")
    return buffer.getvalue()


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


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
            f"{path}: checkpoint is truncated or corrupt ({first_line(exc)}); "
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
        raise ImgfixError(f"{path}: cannot load the checkpoint ({first_line(exc)})") from exc
    # A compiled checkpoint keeps the XLA choice of the backend that wrote it (TensorFlow on a
    # CPU: off, so JAX would run eagerly); None lets this backend choose again.
    model.jit_compile = None
    return model


def previous_card(name: str, zoo: Path | None, resume: bool) -> dict:
    """The zoo card of a resumed run (its metrics and training time carry over), else {}."""
    from imgfix import zoo as zoo_mod

    path = zoo_mod.zoo_dir(zoo) / f"{name}.json"
    if not (resume and path.exists()):
        return {}
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: card is not valid JSON ({first_line(exc)})") from None
