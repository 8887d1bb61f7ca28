"""Faults and hostile inputs: writes that fail, files a killed run left behind, names that are
not UTF-8, and sizes that would cost minutes or gigabytes. Nothing is lost, and each refusal
is one line naming the thing, before any model loads."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from PIL import Image

from imgfix import io, masks, zoo
from imgfix.errors import ImgfixError, InputError
from imgfix.pipelines.inpaint import expand_inputs

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _cli(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "imgfix", *map(os.fsencode, map(str, args))]
    return subprocess.run(
        command, capture_output=True, cwd=cwd, timeout=120, stdin=subprocess.DEVNULL
    )


def _one_error_line(done: subprocess.CompletedProcess, code: int, fragment: str) -> None:
    err = done.stderr.decode(errors="replace").strip().splitlines()
    assert done.returncode == code and len(err) == 1, err
    assert err[0].startswith("imgfix: error: ") and fragment in err[0], err[0]


# --- dilation -----------------------------------------------------------------------------------


def _square_dilation(hole: np.ndarray, px: int) -> np.ndarray:
    out = np.zeros_like(hole)
    for y, x in zip(*np.nonzero(hole), strict=True):
        out[max(0, y - px) : y + px + 1, max(0, x - px) : x + px + 1] = True
    return out


def test_dilation_is_a_square_structuring_element_of_any_radius():
    rng = np.random.default_rng(0)
    for _ in range(40):
        h, w = rng.integers(1, 40, 2)
        hole = rng.random((h, w)) < rng.random() * 0.1
        px = int(rng.integers(0, 50))
        expected = _square_dilation(hole, px) if px else hole
        np.testing.assert_array_equal(masks.dilate(hole, px), expected)


def test_a_huge_radius_costs_what_a_small_one_does():
    hole = np.zeros((3000, 4000), bool)
    hole[1500, 2000] = True
    times = []
    for px in (4, 2000, 10**9):
        start = time.perf_counter()
        grown = masks.dilate(hole, px)
        times.append(time.perf_counter() - start)
    assert grown.all() and max(times) < 3.0 and times[2] < 3 * times[0] + 0.5


# --- temporary files ----------------------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporary_files_are_swept_and_live_ones_kept(tmp_path):
    old = time.time() - 3600
    stale = tmp_path / f"{io.TEMP_PREFIX}{_dead_pid()}-abcd1234-photo.png"
    legacy = tmp_path / f"{io.TEMP_PREFIX}abcd1234-photo.png"  # before pids were in the name
    live = tmp_path / f"{io.TEMP_PREFIX}{os.getpid()}-abcd1234-other.png"
    for path in (stale, legacy, live):
        path.write_bytes(b"x" * 100)
        os.utime(path, (old, old))
    fresh = tmp_path / f"{io.TEMP_PREFIX}999999999-abcd1234-new.png"  # newer than this process
    fresh.write_bytes(b"x")
    keeper = tmp_path / "photo.png"
    keeper.write_bytes(b"mine")
    assert sorted(io.remove_stale_temps(tmp_path)) == sorted([stale, legacy])
    assert live.exists() and fresh.exists() and keeper.read_bytes() == b"mine"


def test_folder_inputs_skip_temporary_files(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / f"{io.TEMP_PREFIX}1-abcd1234-b.png").write_bytes(b"")
    assert [p.name for p in expand_inputs([tmp_path])] == ["a.png"]


# --- failing writes -----------------------------------------------------------------------------


def _full_disk(monkeypatch):
    def replace(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    monkeypatch.setattr(io.os, "replace", replace)


def test_a_write_that_fails_names_the_target_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"precious")
    _full_disk(monkeypatch)
    with pytest.raises(ImgfixError) as info:
        io.save_image(io.Picture(np.zeros((4, 4, 3), np.uint8)), target)
    assert str(info.value) == f"{target}: cannot write (No space left on device)"
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_import_and_export_are_all_or_nothing(tiny_zoo, tmp_path, monkeypatch):
    exported = zoo.export_model(TINY, tmp_path / "out", tiny_zoo)
    before = sorted(p.name for p in tiny_zoo.iterdir())

    real = zoo._write_card

    def full(path, card):
        raise ImgfixError(f"{path}: cannot write (No space left on device)")

    monkeypatch.setattr(zoo, "_write_card", full)
    with pytest.raises(ImgfixError, match=r"copy\.json: cannot write \(No space left"):
        zoo.import_model(exported, name="copy", zoo=tiny_zoo)
    assert sorted(p.name for p in tiny_zoo.iterdir()) == before  # nothing half-imported
    monkeypatch.setattr(zoo, "_write_card", real)
    assert zoo.import_model(exported, name="copy", zoo=tiny_zoo)["name"] == "copy"  # retry

    copies = iter([None, OSError(errno.ENOSPC, "No space left on device")])
    real_copy = shutil.copyfile

    def copyfile(src, dst, **kwargs):
        failure = next(copies, None)
        if failure is not None:
            raise failure
        return real_copy(src, dst, **kwargs)

    monkeypatch.setattr(zoo.shutil, "copyfile", copyfile)
    dest = tmp_path / "dest"
    with pytest.raises(ImgfixError, match=r"dest/tiny\.tflite: cannot write"):
        zoo.export_model(TINY, dest, tiny_zoo)
    assert list(dest.iterdir()) == []  # the .keras that was written is rolled back


# --- the command line: limits and names -------------------------------------------------------


@pytest.fixture
def photo(tmp_path) -> tuple[Path, Path]:
    image, mask = tmp_path / "photo.png", tmp_path / "mask.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 96, 3), np.uint8)).save(image)
    hole = np.zeros((64, 96), np.uint8)
    hole[20:40, 30:60] = 255
    Image.fromarray(hole).save(mask)
    return image, mask


def test_hostile_sizes_are_refused_at_once(photo, tmp_path):
    image, mask = photo
    cases = [
        (["generate", "-p", "cat", "-n", "1024", "--size", "2048", "--grid", "-o",
          tmp_path / "g.png"], "over the 200 MP limit"),
        (["inpaint", image, "-m", mask, "--dilate", "100000", "-o", tmp_path / "d.png"],
         "the hole covers the whole image after --dilate 100000"),
        (["inpaint", image, "-m", mask, "-o", tmp_path], "is a directory"),
        (["inpaint", image, "-m", image], "the mask is the input image itself"),
        (["inpaint", image, image, "-m", image], "the mask is the only input image"),
        (["inpaint", image, "-m", mask, "-o", tmp_path / "out.gif"], "unsupported output format"),
    ]  # fmt: skip
    for args, fragment in cases:
        start = time.perf_counter()
        done = _cli(*args)
        assert time.perf_counter() - start < 2.0, args
        _one_error_line(done, 2, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png", "photo.png"]


@pytest.mark.slow
def test_awkward_names_round_trip_in_single_and_batch_mode(photo, tmp_path):
    """Linux names are bytes: one that is not UTF-8, one with a newline, one like an option."""
    image, mask = photo
    folder = os.fsencode(tmp_path / "in")
    os.mkdir(folder)
    names = [b"caf\xe9.png", b"new\nline.png", b"-dash.png"]
    for name in names:
        shutil.copy(os.fsencode(image), os.path.join(folder, name))
    for name in names:
        done = _cli("inpaint", "-m", mask, "--", os.fsdecode(os.path.join(folder, name)))
        assert done.returncode == 0, done.stderr
    out = os.fsencode(tmp_path / "out")
    done = _cli("inpaint", os.fsdecode(folder), "-m", mask, "--out-dir", os.fsdecode(out))
    assert done.returncode == 0, done.stderr
    want = sorted(n.replace(b".png", b".inpainted.png") for n in names)
    assert sorted(n for n in os.listdir(folder) if b"inpainted" in n) == want
    assert sorted(os.listdir(out)) == want
    hole = io.load_mask(mask, (96, 64))
    for name in want:
        pixels = io.load_image(os.fsdecode(os.path.join(out, name))).pixels
        np.testing.assert_array_equal(pixels[~hole], io.load_image(image).pixels[~hole])


def test_input_errors_are_input_errors():
    with pytest.raises(InputError, match="is a directory"):
        io.check_output(EXAMPLES)


# --- a zoo entry changes as a unit --------------------------------------------------------------


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs, no handler catches it."""


def _variant(tiny_model, seed: int):
    import keras

    model = keras.models.clone_model(tiny_model[0])
    model.set_weights([w + seed for w in tiny_model[0].get_weights()])
    return model


def test_a_kill_in_the_middle_of_a_save_leaves_a_consistent_entry(
    tiny_zoo, tiny_model, monkeypatch
):
    old = zoo.read_card(TINY, tiny_zoo)
    real_replace = os.replace
    moves = []

    def replace(src, dst):
        # The journal is written (one rename), then the .keras moves in; die before the .tflite.
        if Path(src).name == f".{TINY}.next.tflite":  # the staged file, not its temporary
            raise _Killed
        moves.append(dst)
        return real_replace(src, dst)

    monkeypatch.setattr(zoo.os, "replace", replace)
    with pytest.raises(_Killed):
        zoo.save_model(_variant(tiny_model, 1), TINY, {"kind": "inpainter"}, tiny_zoo)
    monkeypatch.setattr(zoo.os, "replace", real_replace)
    assert any(str(m).endswith(f"{TINY}.keras") for m in moves)  # the .keras had moved in

    # The next reader finishes the commit: new files, new card, and they match.
    card = zoo.verify(TINY, tiny_zoo)
    assert card["sha256"] != old["sha256"] and card["runtime"]["sha256"] != old["runtime"]["sha256"]
    assert not any(p.name.startswith(f".{TINY}") for p in tiny_zoo.iterdir())
    zoo.load_model(TINY, tiny_zoo)


def test_a_kill_before_the_journal_keeps_the_old_entry(tiny_zoo, tiny_model, monkeypatch):
    old = zoo.read_card(TINY, tiny_zoo)

    def killed(*args, **kwargs):
        raise _Killed

    monkeypatch.setattr(zoo, "_commit", killed)
    with pytest.raises(_Killed):
        zoo.save_model(_variant(tiny_model, 2), TINY, {"kind": "inpainter"}, tiny_zoo)
    assert zoo.verify(TINY, tiny_zoo)["sha256"] == old["sha256"]
    monkeypatch.undo()
    zoo.save_model(_variant(tiny_model, 2), TINY, {"kind": "inpainter"}, tiny_zoo)
    assert zoo.verify(TINY, tiny_zoo)["sha256"] != old["sha256"]
    assert sorted(p.name for p in tiny_zoo.iterdir()) == [
        f"{TINY}.{x}" for x in ("json", "keras", "tflite")
    ]
