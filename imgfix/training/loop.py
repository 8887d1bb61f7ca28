"""The training loop every trainer shares: ``trainer.fit`` up to a step count with a progress
bar, checkpoints on schedule, and clean stops on Ctrl-C or SIGTERM (``StopFlag``)."""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from imgfix.errors import ImgfixError
from imgfix.training.devices import agree

if TYPE_CHECKING:
    from imgfix.training.checkpoints import Checkpointer


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
            # Over several processes the chief's clock and signals decide for all of them:
            # each checkpoint is a collective validation, and a lone stop would hang the rest.
            due, stop.requested = agree([due, stop.requested])
            if step >= total or stop.requested:
                trainer.stop_training = True
            elif due:
                model = self.model  # syncs the variables (JAX) before they are read
                checkpointer.save(self.logs)
                model.reset_metrics()

        def on_train_end(self, logs=None):
            self.progress.stop()

    return TrainingProgress()


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
