"""Faults and hostile inputs: writes that fail, files a killed run left behind, names that are
not UTF-8, and sizes that would cost minutes or gigabytes. Nothing is lost, and each refusal
is one line naming the thing, before any model loads."""

from __future__ import annotations

import errno
import json
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


# --- errors that name the thing -----------------------------------------------------------------


def _card_zoo(folder: Path, **cards: dict) -> Path:
    """A zoo of cards alone: every check below fails before any model file is read."""
    folder.mkdir(exist_ok=True)
    for name, card in cards.items():
        (folder / f"{name}.json").write_text(json.dumps(card))
        (folder / f"{name}.keras").write_bytes(b"never read")
    return folder


GENERATOR = {
    "kind": "generator",
    "z_dim": 16,
    "concepts": ["cat"],
    "text_encoder": {"name": "enc", "sha256": "ab" * 32, "tokenizer": "ngram"},
}


@pytest.mark.parametrize(
    ("change", "field", "why"),
    [
        ({"z_dim": None}, "z_dim", "is missing"),
        ({"z_dim": "abc"}, "z_dim", 'is "abc"; it must be a positive integer'),
        ({"z_dim": 0}, "z_dim", "is 0; it must be a positive integer"),
        ({"concepts": "cat"}, "concepts", "must be a non-empty list of strings"),
        ({"text_encoder": None}, "text_encoder", "is missing"),
        ({"text_encoder": {"name": "enc"}}, "text_encoder.sha256", "is missing"),
        ({"sampling": {"temperature": "hot"}}, "sampling.temperature", "must be a number"),
    ],
)
def test_a_card_field_missing_or_ill_typed_names_model_card_and_field(tmp_path, change, field, why):
    card = {k: v for k, v in {**GENERATOR, **change}.items() if v is not None}
    folder = _card_zoo(tmp_path / "zoo", gen=card)
    with pytest.raises(ImgfixError) as info:
        zoo.read_card("gen", folder, kind="generator")
    assert str(info.value).startswith(f"model 'gen': card {folder / 'gen.json'}: field '{field}' ")
    assert why in str(info.value)
    assert zoo.read_card("gen", folder).get("z_dim") == card.get("z_dim")  # zoo show reads it


def test_card_errors_are_one_line_from_the_command_line(tmp_path, photo):
    image, mask = photo
    folder = _card_zoo(
        tmp_path / "zoo",
        gen={k: v for k, v in GENERATOR.items() if k != "z_dim"},
        gen2={**GENERATOR, "text_encoder": {**GENERATOR["text_encoder"], "name": "enc"}},
        enc={"kind": "text-encoder", "tokenizer": 7},
        inp={"kind": "inpainter", "multiple": "abc"},
    )
    card = f"card {folder}/"
    cases = [
        (["generate", "-p", "cat", "--model", "gen", "-o", tmp_path / "g.png"],
         f"model 'gen': {card}gen.json: field 'z_dim' is missing"),
        (["generate", "-p", "cat", "--model", "gen2", "-o", tmp_path / "g.png"],
         f"model 'enc': {card}enc.json: field 'tokenizer' is 7; it must be 'ngram' or 'gru'"),
        (["inpaint", image, "-m", mask, "--model", "inp", "-o", tmp_path / "i.png"],
         f"model 'inp': {card}inp.json: field 'multiple' is \"abc\""),
    ]  # fmt: skip
    for args, fragment in cases:
        start = time.perf_counter()
        done = _cli("--zoo", folder, *args)
        assert time.perf_counter() - start < 5.0, args
        _one_error_line(done, 1, fragment)


def _checkpoint_archive(path: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:  # what a .keras file is
        archive.writestr("metadata.json", json.dumps({"keras_version": "3"}))
        archive.writestr("config.json", json.dumps({"class_name": "Functional"}) * 50)
        archive.writestr("model.weights.h5", os.urandom(4096))
    return path.read_bytes()


def test_a_truncated_checkpoint_on_resume_is_named_at_once(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    checkpoint = run / "checkpoint.keras"
    whole = _checkpoint_archive(checkpoint)
    photos = tmp_path / "photos"
    photos.mkdir()
    args = ["train", "inpainter", "--data", photos, "--name", "x", "--logdir", run, "--resume"]
    checkpoint.write_bytes(whole[: len(whole) // 2])  # a copy cut short, a disk that filled up
    start = time.perf_counter()
    done = _cli(*args)
    assert time.perf_counter() - start < 5.0  # before TensorFlow starts
    _one_error_line(done, 1, f"{checkpoint}: checkpoint is truncated or corrupt")
    assert "File not found" not in done.stderr.decode()

    damaged = bytearray(whole)
    damaged[whole.index(b"config.json", 40) + 40] ^= 0xFF  # a flipped byte inside a member
    checkpoint.write_bytes(bytes(damaged))
    _one_error_line(_cli(*args), 1, f"{checkpoint}: checkpoint is corrupt (config.json fails")


def test_a_truncated_real_checkpoint_fails_to_load_naming_it(tiny_model, tmp_path):
    from imgfix.training.checkpoints import load_checkpoint

    path = tmp_path / "checkpoint.keras"
    tiny_model[0].save(path)
    assert load_checkpoint(path).name == tiny_model[0].name
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ImgfixError, match=f"^{path}: checkpoint is truncated or corrupt"):
        load_checkpoint(path)


class _Trainer:
    """What ``Checkpointer`` needs of a training model: its step and ``save``."""

    step = 7

    def save(self, path):
        Path(path).write_bytes(b"checkpoint at step 7")


def test_a_checkpoint_that_cannot_be_written_names_it_and_keeps_the_last(tmp_path, monkeypatch):
    from imgfix.training.checkpoints import Checkpointer

    checkpoint = tmp_path / "checkpoint.keras"
    checkpoint.write_bytes(b"checkpoint at step 6")
    checkpointer = Checkpointer(_Trainer(), tmp_path, lambda: ({}, None), lambda *_: None)
    _full_disk(monkeypatch)
    with pytest.raises(ImgfixError) as info:
        checkpointer.save({})
    assert str(info.value) == f"{checkpoint}: cannot write (No space left on device)"
    assert checkpoint.read_bytes() == b"checkpoint at step 6"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.keras"]


# --- animations ---------------------------------------------------------------------------------


def _animation(path: Path, frames: int = 3) -> None:
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (64, 96, 3), np.uint8)) for _ in range(frames)]
    extra = {"lossless": True} if path.suffix == ".webp" else {}
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, **extra)


def test_an_animation_warns_once_that_only_its_first_frame_is_inpainted(photo, tmp_path, tiny_zoo):
    image, mask = photo
    animations = [tmp_path / f"anim{suffix}" for suffix in (".gif", ".png", ".webp")]
    for path in animations:
        _animation(path)
        assert io.load_image(path).frames == 3
    assert io.load_image(image).frames == 1

    done = _cli("--zoo", tiny_zoo, "inpaint", animations[0], "-m", mask, "--model", TINY)
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode().strip().splitlines()
    assert err[0] == (
        f"imgfix: warning: {animations[0]}: an animation of 3 frames; only the first is inpainted"
    )
    assert len(err) == 2 and "->" in err[1]  # and the usual one-line report
    assert Image.open(tmp_path / "anim.inpainted.png").size == (96, 64)

    out = tmp_path / "out"
    done = _cli("--quiet", "--zoo", tiny_zoo, "inpaint", *animations[1:], image, "-m", mask,
                "--model", TINY, "--out-dir", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    warned = done.stderr.decode().strip().splitlines()
    assert warned == [
        f"imgfix: warning: {path}: an animation of 3 frames; only the first is inpainted"
        for path in animations[1:]
    ]  # one line each, none for the still photo


def test_an_animation_copied_unchanged_keeps_its_frames_without_a_warning(tmp_path, tiny_zoo):
    animation, empty = tmp_path / "anim.webp", tmp_path / "empty.png"
    _animation(animation)
    Image.new("L", (96, 64), 0).save(empty)
    done = _cli("--zoo", tiny_zoo, "inpaint", animation, "-m", empty, "--model", TINY)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().splitlines()[0] == (
        f"imgfix: warning: {empty}: mask is empty; image written unchanged"
    )
    assert "an animation of" not in done.stderr.decode()
    assert Image.open(tmp_path / "anim.inpainted.webp").n_frames == 3  # the bytes were copied


# --- names: masks found by name, and --json ------------------------------------------------------


@pytest.mark.slow
def test_awkward_names_find_their_masks_and_come_back_byte_for_byte_in_json(photo, tmp_path):
    image, _ = photo
    names = [b"caf\xe9.png", b"new\nline.png", b"-dash.png"]
    inputs, mask_dir = os.fsencode(tmp_path / "in"), os.fsencode(tmp_path / "masks")
    os.mkdir(inputs)
    os.mkdir(mask_dir)
    holes = {}
    for k, name in enumerate(names):
        shutil.copy(os.fsencode(image), os.path.join(inputs, name))
        hole = np.zeros((64, 96), bool)
        hole[10 + 10 * k : 20 + 10 * k, 20:40] = True  # each image its own hole
        Image.fromarray(hole.astype(np.uint8) * 255).save(os.fsdecode(os.path.join(mask_dir, name)))
        holes[name] = hole
    out = os.fsencode(tmp_path / "out")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}  # as under a UTF-8 locale
    command = [sys.executable, "-m", "imgfix", "--json", "inpaint", inputs, "-m", mask_dir,
               "--out-dir", out]  # fmt: skip
    done = subprocess.run(command, capture_output=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["failed"] == 0
    original = io.load_image(image).pixels
    for entry in report["results"]:
        name = os.path.basename(os.fsencode(entry["input"]))
        assert os.path.basename(os.fsencode(entry["mask"])) == name
        written = os.fsencode(entry["output"])
        assert written == os.path.join(out, name.replace(b".png", b".inpainted.png"))
        pixels = io.load_image(os.fsdecode(written)).pixels
        hole = holes[name]
        np.testing.assert_array_equal(pixels[~hole], original[~hole])
        assert not np.array_equal(pixels[hole], original[hole])  # its own mask was used
    assert sorted(os.fsencode(e["input"]) for e in report["results"]) == sorted(
        os.path.join(inputs, n) for n in names
    )


def test_a_corrupt_card_on_resume_is_named(tmp_path):
    from imgfix.training.checkpoints import previous_card

    (tmp_path / "m.json").write_text('{"name": "m", ')
    with pytest.raises(InputError, match=r"m\.json: card is not valid JSON"):
        previous_card("m", tmp_path, resume=True)
    assert previous_card("m", tmp_path, resume=False) == {}
