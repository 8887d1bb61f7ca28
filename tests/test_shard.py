"""``--shard K/N``: N shard runs into one folder write exactly the files of one unsharded run,
each file by one shard, and say which shard they were; bad values fail before TensorFlow.

Commands run in this process (``test_generate.cli``) on the session's tiny inpainter and on an
untrained label generator, both on LiteRT, so each run costs only its own few images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_cli import assert_error
from test_generate import cli, light_batch

from imgfix.errors import InputError
from imgfix.pipelines.inpaint import Inpainter, InpaintOptions, inpaint_batch
from imgfix.pipelines.shard import Shard, parse_shard

TINY = "tiny"  # the inpainter in the tiny_zoo fixture
N = 3
COLOURS = ["red", "green", "blue", "black", "white"]


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def run_json(*args) -> dict:
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# --- the helper -------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 5, 7])
@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_shards_are_disjoint_balanced_and_cover_every_item(count, n):
    items = list(range(count))
    shards = [Shard(k, n).select(items) for k in range(1, n + 1)]
    assert sorted(i for shard in shards for i in shard) == items
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    for k, shard in enumerate(shards, 1):
        assert all(Shard(k, n).owns(i) for i in shard)
        assert shard == [i for i in items if i % n == k - 1]  # round-robin, 1-based K


def test_parse_shard():
    assert parse_shard(None) is None
    assert parse_shard("2/4") == Shard(2, 4) and str(parse_shard(" 1 / 1 ")) == "1/1"
    bad_values = {"0/4": "counts from 1", "5/4": "past N", "x": "expected K/N",
                  "3/0": "at least 1", "-1/4": "expected K/N", "1/2/3": "expected K/N"}  # fmt: skip
    for bad, why in bad_values.items():
        with pytest.raises(InputError, match=why) as info:
            parse_shard(bad)
        assert str(info.value).startswith(f"--shard {bad}: ")


# --- inpaint ----------------------------------------------------------------------------------


def test_inpaint_shards_write_what_one_run_writes(tmp_path, tiny_zoo):
    src, mask_dir = tmp_path / "src", tmp_path / "masks"
    src.mkdir()
    mask_dir.mkdir()
    rng = np.random.default_rng(0)
    names = ["e.png", "a.png", "c.jpg", "b.png", "d.png"]  # written out of order on purpose
    for i, name in enumerate(names):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), np.uint8)).save(src / name)
        hole = np.zeros((32, 40), np.uint8)
        hole[4 + i : 14 + i, 6 + 2 * i : 20 + 2 * i] = 255
        Image.fromarray(hole).save(mask_dir / f"{Path(name).stem}.png")
    common = ["--zoo", tiny_zoo, "--json", "inpaint", src, "-m", mask_dir, "--model", TINY]

    whole = run_json(*common, "--out-dir", tmp_path / "whole")
    assert "shard" not in whole and whole["failed"] == 0
    order = [Path(r["input"]).name for r in whole["results"]]
    assert order == sorted(names)

    seen = []
    for k in range(1, N + 1):
        report = run_json(*common, "--out-dir", tmp_path / "shards", "--shard", f"{k}/{N}")
        assert report["shard"] == f"{k}/{N}" and report["failed"] == 0
        inputs = [Path(r["input"]).name for r in report["results"]]
        assert inputs == order[k - 1 :: N]
        seen += inputs
    assert sorted(seen) == sorted(names)  # each image in exactly one shard
    produced = files(tmp_path / "shards")
    assert len(produced) == len(names) and produced == files(tmp_path / "whole")


class _Grey:
    """A model without any runtime: the hole becomes mid-grey."""

    runtime = "numpy"

    def __call__(self, image, mask):
        return image * (1.0 - mask) + 0.5 * mask

    def release(self) -> None:
        pass


def test_an_output_name_two_shards_share_is_written_once(tmp_path):
    """one/photo.png and two/photo.png both want out/photo.inpainted.png: the first image keeps
    it, whichever shard runs first, as in one run; the other shard refuses, never overwrites."""
    images = []
    for seed, folder in enumerate(("one", "two")):
        (tmp_path / folder).mkdir()
        images.append(tmp_path / folder / "photo.png")
        pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), np.uint8)
        Image.fromarray(pixels).save(images[-1])
    mask = tmp_path / "mask.png"
    level = np.zeros((32, 32), np.uint8)
    level[8:20, 8:20] = 255
    Image.fromarray(level).save(mask)
    inpainter = Inpainter(_Grey(), {"multiple": 16})
    options = InpaintOptions(overwrite=True)

    whole = inpaint_batch(inpainter, images, mask, tmp_path / "whole", options)
    assert [r.ok for r in whole] == [True, False]
    second = inpaint_batch(inpainter, images, mask, tmp_path / "out", options, shard=Shard(2, 2))
    assert [r.input for r in second] == [images[1]] and not second[0].ok
    assert "in another shard" in second[0].message
    assert list((tmp_path / "out").iterdir()) == []
    first = inpaint_batch(inpainter, images, mask, tmp_path / "out", options, shard=Shard(1, 2))
    assert [(r.input, r.ok) for r in first] == [(images[0], True)]
    assert files(tmp_path / "out") == files(tmp_path / "whole")


# --- generate ---------------------------------------------------------------------------------


@pytest.fixture
def label_zoo(tiny_zoo) -> Path:
    """``tiny_zoo`` plus ``colours``, an untrained 24 px generator of the labels COLOURS."""
    import keras

    from imgfix import zoo
    from imgfix.models.cgan import build_generator

    keras.utils.set_random_seed(0)
    card = {"kind": "generator", "condition": "label", "concepts": COLOURS, "z_dim": 4,
            "image_size": 24}  # fmt: skip
    zoo.save_model(build_generator(24, 4, len(COLOURS), 8), "colours", card, tiny_zoo)
    return tiny_zoo


def test_generate_shards_write_what_one_run_writes(tmp_path, label_zoo):
    prompts = tmp_path / "prompts.txt"
    # Lines 1 and 5 are the same prompt: the second's name (red-5) comes from its place in the
    # whole file, though shard 2 of 3 never sees the first.
    prompts.write_text("# colours\nred\ngreen\n\nblue\nblack\nred\n", encoding="utf-8")
    common = ["--zoo", label_zoo, "generate", "--model", "colours", "--prompts-file", prompts]
    common += ["--size", 24, "--seed", 7, "--json"]

    modes = {
        "dir": lambda folder: ["-n", 2, "--out-dir", folder],  # names from the prompts
        "file": lambda folder: ["-o", folder / "img.png"],  # numbered img-1.png...
    }
    for how, target in modes.items():
        whole, shards = tmp_path / how / "whole", tmp_path / how / "shards"
        report = run_json(*common, *target(whole))
        assert "shard" not in report
        by_prompt = [[Path(p).name for p in r["paths"]] for r in report["prompts"]]
        if how == "dir":
            assert by_prompt[0] == ["red-1.png", "red-2.png"]
            assert by_prompt[4] == ["red-1-5.png", "red-2-5.png"]
        else:
            assert by_prompt == [[f"img-{i}.png"] for i in range(1, 6)]

        seen = []
        for k in range(1, N + 1):
            part = run_json(*common, *target(shards), "--shard", f"{k}/{N}")
            assert part["shard"] == f"{k}/{N}"
            names = [[Path(p).name for p in r["paths"]] for r in part["prompts"]]
            assert names == by_prompt[k - 1 :: N]
            assert [r["prompt"] for r in part["prompts"]] == [
                r["prompt"] for r in report["prompts"][k - 1 :: N]
            ]
            seen += [name for row in names for name in row]
        assert sorted(seen) == sorted(p.name for p in whole.iterdir())  # disjoint, complete
        assert files(shards) == files(whole)


# --- bad values -------------------------------------------------------------------------------


def test_bad_shard_values_fail_in_one_line_before_tensorflow(tmp_path):
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    inpaint = ["inpaint", tmp_path, "-m", image, "--out-dir", tmp_path / "out", "--shard"]
    generate = ["generate", "-p", "cat", "--out-dir", tmp_path / "out", "--shard"]
    cases = {
        "0/4": "K counts from 1; choose K between 1 and 4",
        "5/4": "K is past N; choose K between 1 and 4",
        "x": "expected K/N",
        "3/0": "N, the number of shards, must be at least 1",
    }
    commands = [[*command, value] for value in cases for command in (inpaint, generate)]
    commands += [
        ["inpaint", image, "-m", image, "-o", tmp_path / "b.png", "--shard", "1/2"],
        ["generate", "-p", "cat", "--grid", "--shard", "1/2", "--out-dir", tmp_path],
    ]
    done = light_batch(*commands)
    for i, value in enumerate(cases):
        for result in done[2 * i : 2 * i + 2]:
            assert_error(result, 2, f"--shard {value}: {cases[value]}")
    assert_error(done[-2], 2, "--shard 1/2: not with -o/--output")
    assert_error(done[-1], 2, "--shard 1/2: not with --grid")
    assert not (tmp_path / "out").exists()
