"""The kill loop: SIGKILL a run that checkpoints every step, again and again, at random moments
and while its temporary files exist; after each kill the zoo entry verifies and loads, the
run's checkpoint loads, and the next run resumes from it. Then the real ``imgfix train
--resume`` continues the run. Select it with ``-m kill_loop``; ``IMGFIX_KILL_SEED`` replays
a seed (each run prints its own on failure).

The runs are forks of one process that imported TensorFlow once (``_kill_loop_worker.py``):
ten fresh ``imgfix train`` processes took 6 minutes on 2 cores, this takes about a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_photos

from imgfix import io, runtime, zoo

pytestmark = [pytest.mark.slow, pytest.mark.kill_loop]

WORKER = Path(__file__).with_name("_kill_loop_worker.py")
NAME = "killed"
KILLS = 10
LITERT = runtime.Settings(device="cpu", runtime="litert")


class Worker:
    """The forking process, its answers read by a thread (lines never block the test)."""

    def __init__(self, folder: Path):
        self.folder = folder
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(folder / "worker.err", "wb"),  # noqa: SIM115  closed with the process
            env=env,
            cwd=folder,
        )
        self.lines: queue.Queue[list[str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.child: int | None = None

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.put(raw.decode(errors="replace").split())
        self.lines.put(["eof"])

    def next(self, timeout: float) -> list[str]:
        try:
            words = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the worker said nothing for {timeout} s") from None
        assert words[0] not in ("error", "eof"), " ".join(words) + self._stderr()
        return words

    def expect(self, word: str, timeout: float = 60) -> list[str]:
        words = self.next(timeout)
        assert words[0] == word, f"expected {word!r}, got {words}"
        return words

    def start(self, job: dict) -> int:
        stderr = self.folder / f"child-{time.monotonic_ns()}.err"
        job = {"stderr": str(stderr), **job}
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()
        self.child = int(self.expect("pid")[1])
        return self.child

    def _stderr(self) -> str:
        logs = sorted(self.folder.glob("*.err"), key=os.path.getmtime)
        return "\n" + "\n".join(p.read_text(errors="replace")[-1500:] for p in logs[-2:])

    def close(self) -> None:
        if self.child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signal.SIGKILL)
        self.proc.kill()
        self.proc.wait(timeout=30)


def _temps(*folders: Path) -> list[Path]:
    found = []
    for folder in folders:
        if folder.is_dir():
            found += [p for p in folder.iterdir() if io.is_temp(p)]
    return found


def _temps_of(pid: int, folders: tuple[Path, ...]) -> list[Path]:
    """The temporary files of process ``pid`` (their names carry it)."""
    return [p for p in _temps(*folders) if p.name.startswith(f"{io.TEMP_PREFIX}{pid}-")]


def _wait_for_a_temp(pid: int, folders: tuple[Path, ...], timeout: float = 30) -> bool:
    """Wait until process ``pid`` is writing a file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _temps_of(pid, folders):
            return True
        time.sleep(0.001)
    return False


@pytest.fixture
def photos(tmp_path) -> Path:
    return write_photos(tmp_path / "photos", 4, 48, 64, ".png")


class Progress:
    """What a killed run reported: the step it resumed from, the last checkpoint it began, and
    the last it finished (checkpoint, log and zoo entry all written)."""

    def __init__(self, resumed: int, entry_step: int):
        self.resumed = self.begun = self.checkpoint_done = resumed
        self.entry_done = entry_step  # a kill may have come between checkpoint and export
        self.saved = False
        self.events = [f"resumed {resumed}"]

    def note(self, words: list[str]) -> None:
        word, step = words[0], int(words[1])
        self.events.append(f"{word} {step}")
        if word == "begin":
            self.begun = step
        else:
            self.checkpoint_done = self.entry_done = step
            self.saved = True


def _check_entry(folder: Path, low: int, high: int, context: str) -> int:
    """The zoo entry verifies, loads on both runtimes, and holds one step's files, between the
    last checkpoint reported done and the last begun; returns that step."""
    card = zoo.verify(NAME, folder)  # a reader finishes a commit a kill interrupted
    step = card["steps"]
    assert low <= step <= high, f"{context}: entry of step {step}, not in [{low}, {high}]"
    model, _ = zoo.load_model(NAME, folder, kind="inpainter")
    np.testing.assert_allclose(np.asarray(model.get_layer("fill").bias), step / 1000, rtol=1e-6)
    lite, _ = runtime.load(NAME, folder, "inpainter", LITERT)
    zeros = np.zeros((1, 16, 16, 3), np.float32)
    filled = lite(image=zeros, mask=zeros[..., :1])
    np.testing.assert_allclose(filled, step / 1000, rtol=1e-6)  # the .tflite matches too
    return step


def _check_checkpoint(run: Path, low: int, high: int, context: str = "") -> int:
    from imgfix.training.checkpoints import load_checkpoint

    step = load_checkpoint(run / "checkpoint.keras").step
    assert low <= step <= high, f"{context}: checkpoint of step {step}, not in [{low}, {high}]"
    lines = (run / "log.jsonl").read_text().splitlines()
    logged = [json.loads(line)["step"] for line in lines]  # every line whole
    assert logged == sorted(logged) and logged[-1] <= step
    return step


def test_kill_loop_sigkill_at_random_moments_loses_nothing(photos, tmp_path):
    seed = int(os.environ.get("IMGFIX_KILL_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    print(f"kill loop: IMGFIX_KILL_SEED={seed}")  # shown with any failure
    run, folder = tmp_path / "runs" / NAME, tmp_path / "zoo"
    watched = (run, run / "samples", folder)
    job = {"cmd": "loop", "run": str(run), "zoo": str(folder), "name": NAME}
    job["photos"] = str(photos)
    modes = ["while a temporary file exists", "at a random moment"] * (KILLS // 2)
    rng.shuffle(modes)
    worker = Worker(tmp_path)
    checkpoint_step, entry_step, left_temps = None, 0, 0
    try:
        import keras  # noqa: F401  TensorFlow starts here while it starts in the worker

        worker.expect("ready", timeout=120)
        for kill, mode in enumerate(modes):
            context = f"seed {seed}, kill {kill} {mode}"
            pid = worker.start(job)
            run_of = Progress(int(worker.expect("resumed", timeout=120)[1]), entry_step)
            if checkpoint_step is not None:  # --resume continues from the last checkpoint
                assert run_of.resumed == checkpoint_step, context
            else:  # the first run: kill it once it has a checkpoint and a zoo entry
                while not run_of.saved:
                    run_of.note(worker.next(timeout=120))
            if mode == "at a random moment":
                time.sleep(rng.uniform(0.0, 4.0))
            else:
                assert _wait_for_a_temp(pid, watched), context
                time.sleep(rng.uniform(0.0, 0.05))
            os.kill(pid, signal.SIGKILL)
            while (words := worker.next(timeout=60))[0] != "exit":
                run_of.note(words)
            worker.child = None
            assert int(words[2]) == -signal.SIGKILL, context
            left_temps += bool(_temps_of(pid, watched))

            context += f", events {run_of.events}"
            checkpoint_step = _check_checkpoint(run, run_of.checkpoint_done, run_of.begun, context)
            entry_step = _check_entry(folder, run_of.entry_done, checkpoint_step, context)

        # The real command resumes the run and takes one step from where the kills left it.
        out, err = tmp_path / "train.out", tmp_path / "train.err"
        args = [
            "--quiet", "--json", "--zoo", str(folder), "train", "inpainter",
            "--data", str(photos), "--name", NAME, "--image-size", "32", "--epochs", "1",
            "--steps", str(checkpoint_step + 1), "--batch-size", "2", "--filters", "4",
            "--logdir", str(run), "--checkpoint-minutes", "0", "--resume",
        ]  # fmt: skip
        worker.start({"cmd": "cli", "args": args, "stdout": str(out), "stderr": str(err)})
        code = int(worker.expect("exit", timeout=240)[2])
        assert code == 0, err.read_text()[-3000:]
        summary = json.loads(out.read_text())
        assert summary["steps"] == checkpoint_step + 1 and summary["steps_this_run"] == 1
    finally:
        worker.close()
    card = zoo.verify(NAME, folder)
    assert card["steps"] == checkpoint_step + 1 and card["training_command"]
    zoo.load_model(NAME, folder, kind="inpainter")
    assert _check_checkpoint(run, checkpoint_step + 1, checkpoint_step + 1)
    assert left_temps >= 3, f"seed {seed}: only {left_temps} kills left temporary files"
    # The resumed run swept what the killed ones left (their pids are dead).
    assert not _temps(*watched), _temps(*watched)
