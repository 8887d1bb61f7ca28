"""The process that ``tests/test_kill_loop.py`` kills: it imports TensorFlow once, then forks a
fresh child for each run the test asks for, and the test SIGKILLs that child.

Starting TensorFlow costs about five seconds a process, ten kills a minute; a fork of this
process costs nothing, and the child is killed like any other process. Nothing in TensorFlow
runs before the fork (no op, no thread pool: only imports), so each child starts it afresh.

Commands, one JSON object a line on stdin:
  {"cmd": "loop", ...}  a run that trains a tiny inpainter one eager step at a time and checkpoints
                        every step through the trainer's own ``Checkpointer`` (the checkpoint, a
                        sample grid, the log, then ``zoo.save_model`` of the zoo entry), resuming
                        from the run's checkpoint when there is one. It reports ``resumed STEP``,
                        then ``begin STEP`` before and ``saved STEP`` after each checkpoint.
  {"cmd": "cli", ...}   ``imgfix.cli.main(args)``, the real command line; stdout and stderr to
                        files.
This process answers ``pid PID`` for each child and ``exit PID STATUS`` (a negative signal number
when killed) once it has reaped it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow  # noqa: E402, F401

import imgfix.cli  # noqa: E402
import imgfix.data.inpainting  # noqa: E402
import imgfix.export  # noqa: E402, F401
import imgfix.models  # noqa: E402, F401
import imgfix.training.inpainter  # noqa: E402, F401
from imgfix import io, zoo  # noqa: E402


def _emit(*words) -> None:
    os.write(1, (" ".join(map(str, words)) + "\n").encode())  # one write: lines never interleave


def _entry_model():
    """The model the loop exports to the zoo: an inpainter's inputs, and a fill whose bias is the
    step, so the test can tell which step's files an entry holds (converting the real
    generator to LiteRT takes 6-12 s a checkpoint; this one, about one)."""
    image = keras.Input((None, None, 3), name="image")
    mask = keras.Input((None, None, 1), name="mask")
    joined = keras.layers.Concatenate()([image, mask])
    fill = keras.layers.Conv2D(3, 1, kernel_initializer="zeros", name="fill")(joined)
    return keras.Model([image, mask], fill, name="entry")


def save_loop(job: dict) -> None:
    from imgfix.data.inpainting import list_images, load_photos, validation_set
    from imgfix.training.checkpoints import Checkpointer, load_checkpoint
    from imgfix.training.inpainter import build_inpainting_trainer, sample_grid

    run, folder, name = Path(job["run"]), Path(job["zoo"]), job["name"]
    checkpoint = run / "checkpoint.keras"
    if checkpoint.exists():  # what --resume does
        trainer = load_checkpoint(checkpoint)
        trainer.compile()
    else:
        keras.utils.set_random_seed(0)
        trainer = build_inpainting_trainer(filters=4)
    _emit("resumed", trainer.step)
    images, masks = validation_set(load_photos(list_images(Path(job["photos"])), 32), 32, 2)
    batch = (keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(masks))
    entry = _entry_model()

    def validate():
        return {"val_step": float(trainer.step)}, sample_grid(images, masks, images)

    def export(step: int, figures: dict) -> None:
        entry.get_layer("fill").bias.assign(np.full(3, step / 1000, np.float32))
        card = {"kind": "inpainter", "multiple": 16, "steps": step, "metrics": figures}
        zoo.save_model(entry, name, card, folder)

    checkpointer = Checkpointer(trainer, run, validate, export)
    while True:
        logs = trainer.train_step(batch)
        _emit("begin", trainer.step)
        checkpointer.save(logs)
        _emit("saved", trainer.step)


def _redirect(fd: int, path: str) -> None:
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(target, fd)
    os.close(target)


def child(job: dict) -> int:
    # What a process that starts now would have: its start time decides which temporary files
    # of killed runs are stale (io.remove_stale_temps).
    io._STARTED = time.time()
    io._swept.clear()
    _redirect(2, job["stderr"])
    if job["cmd"] == "loop":
        save_loop(job)
        return 0
    _redirect(1, job["stdout"])
    try:
        imgfix.cli.main(job["args"])
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


def main() -> None:
    _emit("ready")
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = child(job)
            except BaseException as exc:  # noqa: BLE001  reported, then the child ends
                _emit("error", f"{type(exc).__name__}: {exc}"[:500].replace("\n", " "))
            os._exit(code)
        _emit("pid", pid)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        _emit("exit", pid, code)


if __name__ == "__main__":
    main()
