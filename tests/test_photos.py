"""imgfix.data.photos: filtering, de-duplication, output files and manifest."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgfix.data.photos import collect_photos, is_held_out
from imgfix.errors import InputError


def _picture(seed: int, width: int, height: int) -> Image.Image:
    """A smooth random picture: distinct per seed, stable under resizing."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    return coarse.resize((width, height), Image.BICUBIC)


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "a" / "deep").mkdir(parents=True)
    (src / "b").mkdir()
    _picture(1, 400, 300).save(src / "a" / "one.png")
    _picture(1, 360, 270).save(src / "b" / "one-small-copy.jpg", quality=90)  # near duplicate
    _picture(2, 300, 400).save(src / "a" / "deep" / "two.jpg", quality=95)
    (src / "b" / "two-again.jpg").write_bytes((src / "a" / "deep" / "two.jpg").read_bytes())
    _picture(3, 1500, 800).save(src / "b" / "wide photo (1).webp", quality=90)
    _picture(4, 100, 80).save(src / "a" / "tiny.png")
    icon = np.asarray(_picture(5, 300, 300).convert("RGBA")).copy()
    icon[:, :150, 3] = 0
    Image.fromarray(icon).save(src / "a" / "icon.png")
    mostly_opaque = np.asarray(_picture(6, 300, 300).convert("RGBA")).copy()
    mostly_opaque[:10, :10, 3] = 0  # about 0.1 % transparent
    Image.fromarray(mostly_opaque).save(src / "b" / "opaque.png")
    (src / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (src / "b" / "notes.txt").write_text("ignored")
    os.symlink(src / "a" / "one.png", src / "b" / "link-to-one.png")
    return src


def test_collect_photos_filters_and_writes_manifest(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "photos"
    progress: list[tuple[int, int]] = []
    manifest = collect_photos(out, [corpus], on_progress=lambda d, t: progress.append((d, t)))

    assert manifest["dropped"] == {"small": 1, "transparent": 1, "duplicate": 3, "unreadable": 1}
    sources = [Path(item["source"]).name for item in manifest["images"]]
    assert sources == ["two.jpg", "one.png", "opaque.png", "wide photo (1).webp"]  # a/deep < a/one
    files = [item["file"] for item in manifest["images"]]
    assert files == ["0001-two.jpg", "0002-one.jpg", "0003-opaque.jpg", "0004-wide-photo-1.jpg"]
    assert progress[-1] == (9, 9) and len(progress) == 9  # the symlink is not decoded twice

    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    assert sorted(p.name for p in out.iterdir()) == sorted(files + ["manifest.json"])
    for item in manifest["images"]:
        path = out / item["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == item["sha256"]
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert im.size == (item["width"], item["height"])
            assert max(im.size) <= 1024
    wide = manifest["images"][3]
    assert (wide["width"], wide["height"]) == (1024, 546)
    with Image.open(out / "0003-opaque.jpg") as im:
        assert min(im.getpixel((2, 2))) > 245  # transparent corner composited on white
    duplicates = {Path(d["source"]).name: d["kept"] for d in manifest["duplicates"]}
    assert duplicates == {
        "one-small-copy.jpg": "0002-one.jpg",
        "two-again.jpg": "0001-two.jpg",
        "link-to-one.png": "0002-one.jpg",
    }
    for key in ("created", "min_side", "max_side", "sources"):
        assert key in manifest


def test_collect_photos_keeps_the_largest_copy(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _picture(7, 640, 400).save(src / "a-small.png")
    _picture(7, 1280, 800).save(src / "b-large.png")
    manifest = collect_photos(tmp_path / "out", [src], min_side=64, max_side=512)
    kept = [Path(item["source"]).name for item in manifest["images"]]
    assert "b-large.png" in kept and "a-small.png" not in kept


def test_rerun_replaces_previous_output(tmp_path: Path, corpus: Path) -> None:
    out = tmp_path / "photos"
    collect_photos(out, [corpus])
    (out / "keep-me.txt").write_text("not ours")
    manifest = collect_photos(out, [corpus / "a"], min_side=50)
    files = sorted(item["file"] for item in manifest["images"])
    assert sorted(p.name for p in out.iterdir()) == sorted(files + ["keep-me.txt", "manifest.json"])
    assert [Path(item["source"]).name for item in manifest["images"]] == [
        "two.jpg",
        "one.png",
        "tiny.png",
    ]


def test_output_inside_source_is_not_read_back(tmp_path: Path, corpus: Path) -> None:
    first = collect_photos(corpus / "photos", [corpus])
    second = collect_photos(corpus / "photos", [corpus])
    assert len(second["images"]) == len(first["images"])
    assert second["dropped"] == first["dropped"]


def test_held_out_sample_data_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _picture(8, 300, 300).save(tmp_path / "fine.png")
    for number, part in enumerate(
        (
            "skimage/data",
            "sklearn/datasets/images",
            "matplotlib/mpl-data/sample_data",
            "cv2/samples",
        )
    ):
        folder = site / part
        folder.mkdir(parents=True)
        _picture(10 + number, 300, 300).save(folder / "astronaut.png")
        with pytest.raises(InputError, match="held-out evaluation images"):
            collect_photos(tmp_path / "out", [folder])
    os.symlink(site / "skimage" / "data" / "astronaut.png", tmp_path / "sneaky.png")
    manifest = collect_photos(tmp_path / "out", [tmp_path])  # walks into site-packages too
    assert [Path(item["source"]).name for item in manifest["images"]] == ["fine.png"]
    assert is_held_out("/usr/share/doc/opencv-doc/examples/fruits.jpg")
    assert is_held_out(site / "cv2" / "samples" / "astronaut.png")
    assert not is_held_out("/work/data/raw/usr/share/backgrounds")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        collect_photos(tmp_path / "out", [tmp_path / "missing"])
    with pytest.raises(InputError):
        collect_photos(tmp_path / "out", [])
