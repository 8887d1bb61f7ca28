"""imgfix.io: formats, modes, metadata, masks, bit-exact fills, errors and atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageCms

from imgfix import io as imgio
from imgfix.errors import ImgfixError, InputError
from imgfix.io import (
    IMAGE_SUFFIXES,
    Picture,
    atomic_path,
    atomic_write_text,
    load_image,
    load_mask,
    save_image,
)

RNG = np.random.default_rng(1234)
NOISE = RNG.integers(0, 256, size=(24, 36, 4), dtype=np.uint8)
LOSSLESS = (".png", ".webp", ".bmp", ".tif", ".tiff")


def _smooth_rgb(height: int = 48, width: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) * 127 // (width + height)], -1)


@pytest.mark.parametrize("suffix", IMAGE_SUFFIXES)
def test_rgb_round_trip_every_format(tmp_path: Path, suffix: str) -> None:
    rgb = _smooth_rgb().astype(np.uint8)
    out = save_image(Picture(rgb), tmp_path / f"x{suffix}")
    picture = load_image(out)
    assert picture.pixels.shape == (48, 64, 3)
    assert picture.pixels.dtype == np.uint8
    assert picture.format == {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF"}.get(
        suffix, suffix[1:].upper()
    )
    if suffix in LOSSLESS:
        np.testing.assert_array_equal(picture.pixels, rgb)
    else:
        assert np.abs(picture.pixels.astype(int) - rgb).mean() < 2.0


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_rgba_alpha_preserved(tmp_path: Path, suffix: str) -> None:
    out = save_image(Picture(NOISE), tmp_path / f"a{suffix}")
    picture = load_image(out)
    assert picture.has_alpha
    np.testing.assert_array_equal(picture.pixels, NOISE)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_grey_and_grey_alpha_round_trip(tmp_path: Path, suffix: str) -> None:
    for channels in (1, 2):
        pixels = NOISE[:, :, :channels]
        picture = load_image(save_image(Picture(pixels), tmp_path / f"g{channels}{suffix}"))
        np.testing.assert_array_equal(picture.pixels, pixels)
        assert picture.has_alpha == (channels == 2)


@pytest.mark.parametrize("suffix", [".jpg", ".bmp"])
def test_alpha_without_format_support_is_composited_on_white(tmp_path: Path, suffix: str) -> None:
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :8] = (0, 0, 0, 255)
    out = save_image(Picture(rgba), tmp_path / f"a{suffix}")
    pixels = load_image(out).pixels
    assert pixels.shape == (16, 16, 3)
    assert pixels[:, :6].max() < 10
    assert pixels[:, 10:].min() > 245


def test_palette_becomes_rgb_or_rgba(tmp_path: Path) -> None:
    rgb = Image.fromarray(_smooth_rgb().astype(np.uint8))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.save(tmp_path / "p.png")
    palette.save(tmp_path / "pt.png", transparency=0)
    plain = load_image(tmp_path / "p.png")
    assert plain.pixels.shape == (48, 64, 3)
    np.testing.assert_array_equal(plain.pixels, np.asarray(palette.convert("RGB")))
    transparent = load_image(tmp_path / "pt.png")
    assert transparent.pixels.shape == (48, 64, 4)
    assert (transparent.pixels[:, :, 3] == 0).any()


def test_one_bit_and_cmyk(tmp_path: Path) -> None:
    Image.fromarray(NOISE[:, :, 0]).convert("1").save(tmp_path / "b.png")
    bits = load_image(tmp_path / "b.png")
    assert bits.pixels.shape == (24, 36, 1)
    assert set(np.unique(bits.pixels)) <= {0, 255}
    Image.fromarray(NOISE[:, :, :3]).convert("CMYK").save(tmp_path / "c.jpg")
    cmyk = load_image(tmp_path / "c.jpg")
    assert cmyk.pixels.shape == (24, 36, 3)
    assert "icc_profile" not in cmyk.info


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_grey_is_bit_exact(tmp_path: Path, suffix: str) -> None:
    grey = RNG.integers(0, 65536, size=(20, 30), dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / f"src{suffix}")
    picture = load_image(tmp_path / f"src{suffix}")
    assert picture.pixels.dtype == np.uint16
    np.testing.assert_array_equal(picture.pixels[:, :, 0], grey)
    again = load_image(save_image(picture, tmp_path / f"out{suffix}"))
    assert again.pixels.dtype == np.uint16
    np.testing.assert_array_equal(again.pixels, picture.pixels)
    eight = load_image(save_image(picture, tmp_path / "out.jpg"))
    assert eight.pixels.dtype == np.uint8


def test_rgb_floats() -> None:
    grey16 = Picture(np.array([[[0], [65535]]], np.uint16))
    np.testing.assert_allclose(grey16.rgb(), [[[0, 0, 0], [1, 1, 1]]])
    rgba = Picture(NOISE)
    assert rgba.rgb().shape == (24, 36, 3)
    assert rgba.rgb().dtype == np.float32
    np.testing.assert_allclose(rgba.rgb() * 255, NOISE[:, :, :3], atol=1e-3)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    return exif


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_exif_orientation_applied_and_metadata_kept(tmp_path: Path, suffix: str) -> None:
    base = np.zeros((10, 20, 3), np.uint8)
    base[:, :5] = 255  # white strip on the left
    Image.fromarray(base).save(tmp_path / f"o{suffix}", exif=_exif(6), quality=95)
    picture = load_image(tmp_path / f"o{suffix}")
    assert picture.pixels.shape == (20, 10, 3)  # rotated 90 degrees clockwise
    assert picture.pixels[:4, :, 0].mean() > 200  # the strip is now on top
    assert picture.pixels[8:, :, 0].mean() < 50
    out = save_image(picture, tmp_path / f"out{suffix}")
    with Image.open(out) as saved:
        exif = saved.getexif()
        assert exif.get(0x0112) == 1
        assert exif.get(0x010F) == "TestCam"
        assert saved.size == (10, 20)


def test_icc_profile_kept(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(NOISE[:, :, :3]).save(tmp_path / "c.png", icc_profile=srgb, dpi=(300, 300))
    picture = load_image(tmp_path / "c.png")
    for suffix in (".jpg", ".png", ".webp", ".tif"):
        with Image.open(save_image(picture, tmp_path / f"o{suffix}")) as saved:
            assert saved.info.get("icc_profile") == srgb
    with Image.open(tmp_path / "o.jpg") as saved:
        assert tuple(round(v) for v in saved.info["dpi"]) == (300, 300)


def _mask_file(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def test_mask_threshold_and_invert(tmp_path: Path) -> None:
    path = _mask_file(tmp_path / "m.png", np.array([[0, 127, 128, 255]], np.uint8))
    np.testing.assert_array_equal(load_mask(path, (4, 1)), [[False, False, True, True]])
    np.testing.assert_array_equal(
        load_mask(path, (4, 1), invert=True), [[True, True, False, False]]
    )
    rgb = _mask_file(tmp_path / "m.jpg", np.repeat(np.array([[0, 40, 220, 255]], np.uint8), 8, 0))
    assert load_mask(rgb, (4, 8))[:, 2:].all()
    assert not load_mask(rgb, (4, 8))[:, :2].any()


def test_mask_alpha_channel(tmp_path: Path) -> None:
    alpha = np.array([[0, 127, 128, 255]], np.uint8)
    for colour in (0, 255):
        rgba = np.zeros((1, 4, 4), np.uint8)
        rgba[..., :3] = colour
        rgba[..., 3] = alpha
        path = _mask_file(tmp_path / f"a{colour}.png", rgba)
        np.testing.assert_array_equal(load_mask(path, (4, 1)), [[False, False, True, True]])
    la = _mask_file(tmp_path / "la.png", np.stack([np.zeros_like(alpha), alpha], -1))
    np.testing.assert_array_equal(load_mask(la, (4, 1), invert=True), [[True, True, False, False]])
    opaque = np.full((1, 4, 4), 255, np.uint8)
    opaque[..., :3] = alpha[..., None]  # opaque colour mask: the grey level decides
    path = _mask_file(tmp_path / "opaque.png", opaque)
    np.testing.assert_array_equal(load_mask(path, (4, 1)), [[False, False, True, True]])


def test_mask_sixteen_bit_and_exif(tmp_path: Path) -> None:
    grey16 = np.array([[0, 127 * 257, 128 * 257, 65535]], np.uint16)
    path = _mask_file(tmp_path / "m16.png", grey16)
    np.testing.assert_array_equal(load_mask(path, (4, 1)), [[False, False, True, True]])
    tall = np.zeros((4, 2), np.uint8)
    tall[0] = 255
    Image.fromarray(tall).save(tmp_path / "rot.png", exif=_exif(6))
    hole = load_mask(tmp_path / "rot.png", (4, 2))  # rotated: 4 wide, 2 high, hole on the right
    np.testing.assert_array_equal(hole, [[False, False, False, True], [False, False, False, True]])


def test_mask_size_mismatch(tmp_path: Path) -> None:
    path = _mask_file(tmp_path / "small.png", np.array([[0, 255]], np.uint8))
    with pytest.raises(InputError) as error:
        load_mask(path, (4, 2))
    message = str(error.value)
    assert "small.png" in message and "2x1" in message and "4x2" in message
    assert "\n" not in message
    hole = load_mask(path, (4, 2), resize=True)
    np.testing.assert_array_equal(hole, [[False, False, True, True]] * 2)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    height=st.integers(1, 9),
    width=st.integers(1, 9),
    channels=st.sampled_from([1, 2, 3, 4]),
    dtype=st.sampled_from([np.uint8, np.uint16]),
)
def test_with_fill_is_bit_exact_outside_the_hole(data, height, width, channels, dtype) -> None:
    pixels = data.draw(hnp.arrays(dtype, (height, width, channels)))
    hole = data.draw(hnp.arrays(np.bool_, (height, width)))
    rgb = data.draw(hnp.arrays(np.float32, (height, width, 3), elements=st.floats(0, 1, width=32)))
    picture = Picture(pixels, "PNG", {"dpi": (72.0, 72.0)}, None)
    filled = picture.with_fill(rgb, hole)
    assert filled.pixels.dtype == pixels.dtype
    assert filled.pixels.shape == pixels.shape
    np.testing.assert_array_equal(filled.pixels[~hole], pixels[~hole])
    if channels in (2, 4):
        np.testing.assert_array_equal(filled.pixels[..., -1], pixels[..., -1])
    top = np.iinfo(dtype).max
    colour = rgb if channels >= 3 else (rgb.astype(np.float64) @ [0.299, 0.587, 0.114])[..., None]
    expected = np.clip(np.rint(colour.astype(np.float64) * top), 0, top)
    colour_channels = 3 if channels >= 3 else 1
    np.testing.assert_array_equal(filled.pixels[hole][:, :colour_channels], expected[hole])
    np.testing.assert_array_equal(picture.pixels, pixels)  # the original is not modified


def test_with_fill_survives_a_png_round_trip(tmp_path: Path) -> None:
    hole = np.zeros((24, 36), bool)
    hole[5:15, 10:20] = True
    filled = Picture(NOISE).with_fill(np.full((24, 36, 3), 0.5, np.float32), hole)
    again = load_image(save_image(filled, tmp_path / "f.png"))
    np.testing.assert_array_equal(again.pixels[~hole], NOISE[~hole])
    assert (again.pixels[hole][:, :3] == 128).all()


def test_errors_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(RNG.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(good)
    (tmp_path / "trunc.png").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    Image.fromarray(RNG.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(tmp_path / "g.jpg")
    jpeg = (tmp_path / "g.jpg").read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    (tmp_path / "empty.webp").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    cases = {
        "missing.png": "no such file",
        "folder.png": "directory",
        "trunc.png": "cannot read image",
        "trunc.jpg": "cannot read image",
        "junk.png": "cannot read image",
        "empty.webp": "empty file",
    }
    for name, reason in cases.items():
        with pytest.raises(InputError) as error:
            load_image(tmp_path / name)
        message = str(error.value)
        assert name in message and reason in message and "\n" not in message
        with pytest.raises(InputError):
            load_mask(tmp_path / name, (128, 128))


def test_pixel_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (200, 100)).save(path)
    monkeypatch.setattr(imgio, "MAX_PIXELS", 10_000)
    with pytest.raises(InputError, match=r"big\.png: image too large \(200x100"):
        load_image(path)


def test_unsupported_output_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"x\.gif: unsupported output format"):
        save_image(Picture(NOISE), tmp_path / "x.gif")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_original_when_the_writer_fails(tmp_path: Path) -> None:
    target = tmp_path / "model.keras"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith("model.keras")
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_atomic_path_replaces_and_creates_folders(tmp_path: Path) -> None:
    target = tmp_path / "new" / "dir" / "card.json"
    atomic_write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    atomic_write_text(target, "[]\n")
    assert target.read_text() == "[]\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["card.json"]
    with pytest.raises(ImgfixError, match="nothing was written"), atomic_path(target):
        pass
    assert target.read_text() == "[]\n"


def test_save_image_failure_leaves_target_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")

    def broken_save(self, fp, *args, **params):
        Path(fp).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImgfixError, match=r"out\.png: cannot write \(disk full\)"):
        save_image(Picture(NOISE), target)
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.png"]
