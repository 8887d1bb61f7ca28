"""Full disks, for real: image writes, batch writes, ``zoo import``, ``zoo export`` and
checkpoints into a 4 MB tmpfs that a ballast file fills. Each failure is one line naming the
path, leaves no partial file, keeps the good file that was there, and a retry succeeds once
there is room.

Mounting needs root (or CAP_SYS_ADMIN). Without it this file runs itself again inside a user
namespace (``unshare -rm``), where an ordinary user may mount a tmpfs, and each test reports
what it did there; where neither works, the tests skip and say why. The ENOSPC tests of
``test_faults.py`` (a failing ``os.replace``) run everywhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from PIL import Image

from imgfix import io, zoo
from imgfix.errors import ImgfixError

SIZE = 4 * 2**20
PAGE = 4096
INNER = "IMGFIX_FULL_DISK_INNER"  # set in the run inside the user namespace
ROOT = Path(__file__).resolve().parent.parent
NO_SPACE = "cannot write (No space left on device)"


@dataclass
class Disk:
    """A mounted tmpfs of ``SIZE`` bytes at ``root``."""

    root: Path

    def fill(self, leave: int = 0) -> None:
        """Take all the free space but ``leave`` bytes (whole pages) with a ballast file."""
        self.free()
        stat = os.statvfs(self.root)
        room = stat.f_bavail * stat.f_frsize - leave
        ballast = open(self.root / "ballast", "wb")  # noqa: SIM115
        with ballast, contextlib.suppress(OSError):  # OSError: already full
            ballast.write(b"\0" * max(0, room))

    def free(self) -> None:
        (self.root / "ballast").unlink(missing_ok=True)


def _mount(folder: Path) -> str | None:
    """Mount a tmpfs at ``folder``; None when done, else why not."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"mount: {exc}"
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount: {done.returncode}")


@pytest.fixture(scope="module")
def _namespace_results(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """Run this file inside a user namespace once; each test's outcome and message there."""
    folder = tmp_path_factory.mktemp("userns")
    junit = folder / "results.xml"
    command = [
        "unshare", "-rm", sys.executable, "-m", "pytest", str(Path(__file__)), "-q",
        "-p", "no:cacheprovider", f"--junitxml={junit}", f"--basetemp={folder / 'tmp'}",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, INNER: "1"},
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"": ("skipped", f"unshare: {exc}")}
    if not junit.is_file():
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return {"": ("skipped", f"unshare -rm: {why}")}
    results = {}
    for case in ET.parse(junit).iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "skipped" if child.tag == "skipped" else "failed"
                message = f"{child.get('message', '')}\n{child.text or ''}"
        results[case.get("name")] = (outcome, message)
    return results


@pytest.fixture
def disk(request, tmp_path) -> Disk | None:
    """A small tmpfs; None when the test already ran (and passed) in a user namespace."""
    root = tmp_path / "disk"
    why = _mount(root)
    if why is None:
        yield Disk(root)
        subprocess.run(["umount", "-l", str(root)], capture_output=True, timeout=30)
        return
    if os.environ.get(INNER):
        pytest.fail(f"cannot mount a tmpfs even in a user namespace: {why}")
    if shutil.which("unshare") is None:
        pytest.skip(f"cannot mount a tmpfs ({why}) and there is no unshare for a user namespace")
    results = request.getfixturevalue("_namespace_results")
    outcome, message = results.get(request.node.name) or results.get("") or ("skipped", "")
    if outcome == "skipped":
        pytest.skip(f"cannot mount a tmpfs here ({why}), nor in a user namespace: {message}")
    if outcome == "failed":
        pytest.fail(f"failed inside a user namespace:\n{message}", pytrace=False)
    yield None


def _cli(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "imgfix", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


def _error_lines(done: subprocess.CompletedProcess) -> list[str]:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and lines, (done.returncode, done.stderr)
    return lines


def _no_temps(folder: Path) -> None:
    assert not [p.name for p in folder.rglob("*") if io.is_temp(p)]


@pytest.fixture
def photo(tmp_path) -> tuple[Path, Path]:
    image, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (128, 160, 3), np.uint8)).save(image)  # ~60 KB
    hole = np.zeros((128, 160), np.uint8)
    hole[40:80, 50:110] = 255
    Image.fromarray(hole).save(mask)
    return image, mask


def _outside_hole_is_kept(output: Path, image: Path, mask: Path) -> None:
    original = io.load_image(image).pixels
    hole = io.load_mask(mask, (original.shape[1], original.shape[0]))
    np.testing.assert_array_equal(io.load_image(output).pixels[~hole], original[~hole])


def test_an_image_write_on_a_full_disk(disk, photo, tiny_zoo):
    if disk is None:
        return  # it ran, and passed, in a user namespace
    image, mask = photo
    target = disk.root / "out.png"
    target.write_bytes(b"a good earlier result")
    args = ["--zoo", tiny_zoo, "inpaint", image, "-m", mask, "--model", TINY, "-o", target]
    disk.fill()
    done = _cli(*args, "--overwrite")
    assert _error_lines(done) == [f"imgfix: error: {target}: {NO_SPACE}"]
    assert target.read_bytes() == b"a good earlier result"
    _no_temps(disk.root)
    disk.free()
    assert _cli(*args, "--overwrite").returncode == 0
    _outside_hole_is_kept(target, image, mask)


def test_batch_writes_on_a_full_disk(disk, photo, tiny_zoo, tmp_path):
    if disk is None:
        return  # it ran, and passed, in a user namespace
    image, mask = photo
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(image, inputs / f"{name}.png")
    out = disk.root / "out"
    out.mkdir()
    (out / "a.inpainted.png").write_bytes(b"a good earlier result")
    args = ["--quiet", "--zoo", tiny_zoo, "inpaint", inputs, "-m", mask, "--model", TINY]
    args += ["--out-dir", out, "--overwrite"]
    disk.fill()
    lines = _error_lines(_cli(*args))
    assert lines == [f"imgfix: failed: {out / f'{n}.inpainted.png'}: {NO_SPACE}" for n in "abc"]
    assert (out / "a.inpainted.png").read_bytes() == b"a good earlier result"
    assert sorted(p.name for p in out.iterdir()) == ["a.inpainted.png"]
    disk.free()
    assert _cli(*args).returncode == 0
    for name in "abc":
        _outside_hole_is_kept(out / f"{name}.inpainted.png", inputs / f"{name}.png", mask)


def _pages(path: Path) -> int:
    return -(-path.stat().st_size // PAGE) * PAGE


def test_zoo_import_on_a_full_disk(disk, tiny_zoo, tmp_path):
    if disk is None:
        return  # it ran, and passed, in a user namespace
    exported = zoo.export_model(TINY, tmp_path / "exported", tiny_zoo)
    target = disk.root / "zoo"
    shutil.copytree(tiny_zoo, target)  # the good entry already there
    before = sorted(p.name for p in target.iterdir())
    model, runtime_file = _pages(exported), _pages(exported.with_suffix(".tflite"))
    # No room at all; room for part of the model; for the model and its .tflite but not the
    # card (the case); for all that and the journal, but not the card.
    for leave in (0, model // 2, model + runtime_file, model + runtime_file + PAGE):
        disk.fill(leave)
        done = _cli("--zoo", target, "zoo", "import", exported, "--name", "copy")
        [line] = _error_lines(done)
        assert line.startswith(f"imgfix: error: {target}/") and line.endswith(NO_SPACE), line
        assert sorted(p.name for p in target.iterdir()) == before, leave  # rolled back
    assert _cli("--zoo", target, "zoo", "verify", TINY).returncode == 0
    disk.free()
    assert _cli("--zoo", target, "zoo", "import", exported, "--name", "copy").returncode == 0
    assert zoo.verify("copy", target)["sha256"] == zoo.read_card(TINY, tiny_zoo)["sha256"]


def test_zoo_export_on_a_full_disk(disk, tiny_zoo):
    if disk is None:
        return  # it ran, and passed, in a user namespace
    dest = disk.root / "dest"
    dest.mkdir()
    (dest / "notes.txt").write_text("a good file")
    model = _pages(tiny_zoo / f"{TINY}.keras")
    for leave in (0, model // 2, model + PAGE):  # the .keras fails, or the .tflite after it
        disk.fill(leave)
        [line] = _error_lines(_cli("--zoo", tiny_zoo, "zoo", "export", TINY, dest))
        assert line.startswith(f"imgfix: error: {dest}/") and line.endswith(NO_SPACE), line
        assert sorted(p.name for p in dest.iterdir()) == ["notes.txt"], leave
    assert (dest / "notes.txt").read_text() == "a good file"
    disk.free()
    assert _cli("--zoo", tiny_zoo, "zoo", "export", TINY, dest).returncode == 0
    assert zoo.import_model(dest / f"{TINY}.keras", name="back", zoo=dest / "z")["sha256"]


def _small_inpainter():
    """An inpainter's inputs and one convolution: it converts to LiteRT in a second, where the
    8-filter context encoder takes ten."""
    import keras

    image = keras.Input((None, None, 3), name="image")
    mask = keras.Input((None, None, 1), name="mask")
    fill = keras.layers.Conv2D(3, 3, padding="same")(keras.layers.Concatenate()([image, mask]))
    return keras.Model([image, mask], fill)


def test_checkpoints_on_a_full_disk(disk):
    if disk is None:
        return  # it ran, and passed, in a user namespace
    from imgfix.training.checkpoints import Checkpointer, load_checkpoint
    from imgfix.training.inpainter import build_inpainting_trainer

    trainer = build_inpainting_trainer(filters=4)
    run = disk.root / "run"
    checkpointer = Checkpointer(trainer, run, lambda: ({}, None), lambda step, figures: None)
    checkpointer.save({})
    good = (run / "checkpoint.keras").read_bytes()
    trainer.g_optimizer.iterations.assign_add(1)
    disk.fill(PAGE)
    with pytest.raises(ImgfixError) as info:
        checkpointer.save({})
    assert str(info.value) == f"{run / 'checkpoint.keras'}: {NO_SPACE}"  # the CLI's one line
    assert (run / "checkpoint.keras").read_bytes() == good
    assert load_checkpoint(run / "checkpoint.keras").step == 0
    _no_temps(run)

    # The export that follows a checkpoint: the zoo entry stays whole.
    model, card = _small_inpainter(), {"kind": "inpainter"}
    folder = disk.root / "zoo"
    disk.free()
    zoo.save_model(model, TINY, card, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for leave in (0, _pages(folder / f"{TINY}.keras")):  # the .keras fails, or the .tflite
        disk.fill(leave)
        with pytest.raises(ImgfixError) as info:
            zoo.save_model(model, TINY, card, folder)
        named = [f"{folder / f'{TINY}.{x}'}: {NO_SPACE}" for x in ("keras", "tflite")]
        assert str(info.value) in named, leave
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before, leave
    zoo.verify(TINY, folder)

    disk.free()  # the retry: what --resume does once there is room
    checkpointer.save({})
    assert load_checkpoint(run / "checkpoint.keras").step == 1
    zoo.save_model(model, TINY, card, folder)
    zoo.verify(TINY, folder)
