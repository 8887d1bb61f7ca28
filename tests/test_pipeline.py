"""The inpainting pipeline: crop geometry, exactness outside the hole, files and batches.

A constant-fill Keras model stands in for a trained one: these tests check where the pipeline
runs the model and what it pastes back, not how good the fill is.
"""

from __future__ import annotations

import functools
from pathlib import Path

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgfix import io, metrics
from imgfix.errors import InputError
from imgfix.pipelines import inpaint
from imgfix.pipelines.inpaint import (
    Inpainter,
    InpaintOptions,
    InpaintResult,
    default_output,
    expand_inputs,
    inpaint_batch,
    inpaint_file,
)
from imgfix.pipelines.texture import texture_options
from imgfix.runtime import KerasModel, Settings

CARD = {"name": "test", "kind": "inpainter", "multiple": 16, "image_size": 64}
FILL = 0.5


class ConstantFill(keras.layers.Layer):
    """Known pixels pass through; the hole becomes mid-grey."""

    def call(self, inputs):
        image, mask = inputs
        return image * (1.0 - mask) + FILL * mask


class PassThrough(keras.layers.Layer):
    """Returns the image it was given, to see what the pipeline feeds the model."""

    def call(self, inputs):
        return inputs[0]


def _model(layer: type[keras.layers.Layer]) -> KerasModel:
    image = keras.Input((None, None, 3), name="image")
    mask = keras.Input((None, None, 1), name="mask")
    return KerasModel(keras.Model([image, mask], layer()([image, mask])))


@functools.cache
def constant_model() -> KerasModel:
    return _model(ConstantFill)


class Recorder:
    """Wraps a model and records the input shapes of each call."""

    def __init__(self, model: KerasModel, multiple: int = 16) -> None:
        self.model = model
        self.multiple = multiple
        self.shapes: list[tuple[int, ...]] = []
        self.released = 0

    def __call__(self, image, mask):
        assert image.dtype == np.float32 and mask.dtype == np.float32
        assert image.shape[:3] == mask.shape[:3] and mask.shape[3] == 1
        assert image.shape[1] % self.multiple == 0 and image.shape[2] % self.multiple == 0
        self.shapes.append(tuple(image.shape))
        return self.model(image=image, mask=mask)

    def release(self) -> None:
        self.released += 1


def inpainter(**kwargs) -> tuple[Inpainter, Recorder]:
    recorder = Recorder(constant_model())
    return Inpainter(recorder, CARD, **kwargs), recorder


# --- Inpainter.fill ---------------------------------------------------------------------------


@st.composite
def image_and_hole(draw):
    h = draw(st.integers(1, 90))
    w = draw(st.integers(1, 90))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    rgb = rng.random((h, w, 3), dtype=np.float32)
    kind = draw(st.sampled_from(["pixels", "box", "all", "none"]))
    if kind == "pixels":
        hole = rng.random((h, w)) < draw(st.floats(0.001, 0.3))
    elif kind == "box":
        top, left = int(rng.integers(h)), int(rng.integers(w))
        hole = np.zeros((h, w), bool)
        hole[top : top + int(rng.integers(1, h + 1)), left : left + int(rng.integers(1, w + 1))] = 1
    else:
        hole = np.full((h, w), kind == "all")
    return rgb, hole


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=image_and_hole(),
    work_size=st.sampled_from([16, 48, 512]),
    margin=st.sampled_from([None, 0, 5, 40]),
)
def test_fill_changes_only_the_hole(data, work_size, margin):
    rgb, hole = data
    filler, recorder = inpainter(work_size=work_size, margin=margin)
    out = filler.fill(rgb, hole)
    assert out.shape == rgb.shape and out.dtype == rgb.dtype
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    assert np.all((out >= 0) & (out <= 1))
    if not hole.any():
        assert recorder.shapes == []
    for shape in recorder.shapes:
        # Downscaled crops have their long side at work_size (plus padding to the multiple).
        assert max(shape[1:3]) < max(work_size, 16) + 16
    if max(rgb.shape[:2]) <= work_size:
        # Native resolution: the model's fill lands unchanged.
        np.testing.assert_array_equal(out[hole], FILL)


@pytest.mark.parametrize("work_size", [512, 48])
def test_texture_option_copies_the_context_texture_onto_the_fill(work_size):
    """``detail`` (``imgfix inpaint --texture``): the flat fill gets the surrounding grain, on
    native and on downscaled crops, and the known pixels stay exact."""
    rng = np.random.default_rng(0)
    rgb = (0.5 + rng.uniform(-0.2, 0.2, (96, 120, 1)) * np.ones(3)).astype(np.float32)
    hole = np.zeros((96, 120), bool)
    hole[30:66, 40:80] = True
    smooth = inpainter(work_size=work_size)[0].fill(rgb, hole)
    textured = inpainter(work_size=work_size, detail=texture_options(1.5))[0].fill(rgb, hole)
    np.testing.assert_array_equal(textured[~hole], rgb[~hole])
    assert metrics.gradient_ratio(rgb, smooth, hole) < 0.05
    assert metrics.gradient_ratio(rgb, textured, hole) > 0.3
    assert abs(float(textured[hole].mean()) - FILL) < 0.02  # grain, not a change of colour
    assert texture_options(0) is None


@settings(max_examples=40, deadline=None)
@given(data=image_and_hole(), margin=st.sampled_from([None, 0, 7, 64]))
def test_regions_cover_every_hole_pixel_once(data, margin):
    _, hole = data
    filler, _ = inpainter(margin=margin)
    boxes = filler.regions(hole)
    cover = np.zeros(hole.shape, int)
    for top, left, bottom, right in boxes:
        assert 0 <= top < bottom <= hole.shape[0] and 0 <= left < right <= hole.shape[1]
        cover[top:bottom, left:right] += 1
    assert cover.max(initial=0) <= 1
    assert np.all(cover[hole] == 1)


def test_fill_returns_a_copy_for_an_empty_hole():
    filler, recorder = inpainter()
    rgb = np.random.default_rng(0).random((20, 30, 3), dtype=np.float32)
    out = filler.fill(rgb, np.zeros((20, 30), bool))
    assert out is not rgb
    np.testing.assert_array_equal(out, rgb)
    assert recorder.shapes == []


def test_fill_rejects_mismatched_shapes():
    filler, _ = inpainter()
    with pytest.raises(ValueError):
        filler.fill(np.zeros((10, 10, 3), np.float32), np.zeros((10, 11), bool))


def test_large_photo_runs_the_model_on_small_crops_only():
    h, w = 2000, 3000
    rgb = np.random.default_rng(1).random((h, w, 3), dtype=np.float32)
    hole = np.zeros((h, w), bool)
    hole[100:120, 200:230] = True
    hole[1810:1830, 2710:2740] = True  # same crop shape as the first

    filler, recorder = inpainter(max_batch=1)
    out = filler.fill(rgb, hole)
    assert len(recorder.shapes) == 2
    for shape in recorder.shapes:
        assert shape[0] == 1 and shape[1] * shape[2] < 300 * 300
    np.testing.assert_array_equal(out[hole], FILL)
    np.testing.assert_array_equal(out[~hole], rgb[~hole])

    # Same-shaped crops go through the model together.
    batched, recorder = inpainter(max_batch=4)
    np.testing.assert_array_equal(batched.fill(rgb, hole), out)
    assert [s[0] for s in recorder.shapes] == [2]


def test_adaptive_margin_grows_with_the_region():
    hole = np.zeros((2000, 2000), bool)
    hole[960:1040, 960:1040] = True  # 80 px: the minimum margin applies
    hole[96:512, 96:304] = True  # 208 px short side: half of it
    hole[1600:1610, 96:1800] = True  # a long thin scratch: its width decides
    filler, _ = inpainter()
    m = inpaint.MIN_MARGIN
    assert sorted(filler.regions(hole)) == [
        (0, 0, 512 + 104, 304 + 104),
        (960 - m, 960 - m, 1040 + m, 1040 + m),
        (1600 - m, 96 - m, 1616 + m, 1808 + m),
    ]
    fixed = sorted(Inpainter(constant_model(), CARD, margin=128).regions(hole))
    assert fixed[:2] == [(0, 0, 512 + 128, 304 + 128), (832, 832, 1168, 1168)]
    assert all(isinstance(v, int) for box in fixed for v in box)


def test_region_larger_than_work_size_is_downscaled():
    h, w = 700, 900
    rng = np.random.default_rng(2)
    rgb = rng.random((h, w, 3), dtype=np.float32)
    hole = np.zeros((h, w), bool)
    hole[100:600, 100:800] = True
    filler, recorder = inpainter(work_size=512)
    out = filler.fill(rgb, hole)
    assert recorder.shapes == [(1, 400, 512, 3)]  # 700x900 -> 398x512, padded to 400x512
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    # Away from the hole's edge the fill is the model's, scaled back up.
    np.testing.assert_allclose(out[110:590, 110:790], FILL, atol=1e-4)


def test_hole_over_the_whole_photo_is_filled_at_work_size():
    rgb = np.zeros((1200, 1600, 3), np.float32)
    filler, recorder = inpainter(work_size=256)
    out = filler.fill(rgb, np.ones((1200, 1600), bool))
    assert recorder.shapes == [(1, 192, 256, 3)]
    np.testing.assert_allclose(out, FILL, atol=1e-4)


@pytest.mark.parametrize("work_size", [512, 64])
def test_model_never_sees_what_is_under_the_hole(work_size):
    rgb = np.full((300, 200, 3), 0.25, np.float32)
    hole = np.zeros((300, 200), bool)
    hole[100:180, 50:150] = True
    rgb[hole] = 1.0  # what the user wants removed
    filler = Inpainter(_model(PassThrough), CARD, work_size=work_size)
    out = filler.fill(rgb, hole)
    assert out[hole].max() <= 0.25 + 1e-4


def test_real_generator_runs_through_the_pipeline():
    from imgfix.models.context_encoder import build_context_encoder

    model = KerasModel(build_context_encoder(filters=8))
    rgb = np.random.default_rng(3).random((150, 100, 3), dtype=np.float32)
    hole = np.zeros((150, 100), bool)
    hole[40:70, 20:60] = True
    out = Inpainter(model, CARD, work_size=64).fill(rgb, hole)
    np.testing.assert_array_equal(out[~hole], rgb[~hole])
    assert np.isfinite(out).all()


def test_load_inpainter_uses_the_zoo(monkeypatch):
    calls = []

    def load(name, zoo, kind, settings=None):
        calls.append((name, zoo, kind, settings))
        return constant_model(), {**CARD, "work_size": 256}

    monkeypatch.setattr(inpaint.runtime, "load", load)
    filler = inpaint.load_inpainter(zoo="/tmp/zoo")
    assert calls == [("photo-inpainter", "/tmp/zoo", "inpainter", None)]
    assert filler.work_size == 256 and filler.multiple == 16
    assert filler.max_batch == inpaint.DEFAULT_MAX_BATCH  # a TensorFlow model batches its crops
    settings = Settings(runtime="tensorflow")
    inpaint.load_inpainter("other", settings=settings)
    assert calls[-1] == ("other", None, "inpainter", settings)


# --- files ------------------------------------------------------------------------------------


def _photo(path: Path, size=(96, 64), mode="RGB", seed=0) -> Path:
    w, h = size
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(path)
    return path


def _mask(path: Path, size=(96, 64), box=(10, 20, 30, 50)) -> Path:
    top, left, bottom, right = box
    level = np.zeros((size[1], size[0]), np.uint8)
    level[top:bottom, left:right] = 255
    Image.fromarray(level).save(path)
    return path


def _hole(size=(96, 64), box=(10, 20, 30, 50)) -> np.ndarray:
    hole = np.zeros((size[1], size[0]), bool)
    hole[box[0] : box[2], box[1] : box[3]] = True
    return hole


@pytest.mark.parametrize(
    ("mode", "suffix", "out_suffix"),
    [("RGB", ".png", ".png"), ("RGBA", ".png", ".png"), ("L", ".png", ".png"),
     ("RGB", ".jpg", ".png")],
)  # fmt: skip
def test_inpaint_file_is_exact_outside_the_hole(tmp_path, mode, suffix, out_suffix):
    image = _photo(tmp_path / f"photo{suffix}", mode=mode)
    mask = _mask(tmp_path / "mask.png")
    output = tmp_path / f"out{out_suffix}"
    filler, _ = inpainter()
    result = inpaint_file(filler, image, mask, output, InpaintOptions())
    assert result.ok and result.output == output and result.warning is None
    assert result.hole_fraction == pytest.approx(_hole().mean())
    assert result.seconds > 0

    source = io.load_image(image).pixels
    written = np.asarray(Image.open(output))
    written = written[..., None] if written.ndim == 2 else written
    source = source[..., None] if source.ndim == 2 else source
    assert written.shape == source.shape
    hole = _hole()
    np.testing.assert_array_equal(written[~hole], source[~hole])
    colour = 1 if mode == "L" else 3
    # The model's 0.5, quantised (grey goes through luminance weights, so allow rounding).
    assert np.abs(written[hole][:, :colour].astype(int) - 128).max() <= 1
    if mode == "RGBA":
        np.testing.assert_array_equal(written[..., 3], source[..., 3])


def test_jpeg_input_gives_jpeg_output_by_default(tmp_path):
    image = _photo(tmp_path / "photo.jpg")
    mask = _mask(tmp_path / "mask.png")
    output = default_output(image)
    assert output == tmp_path / "photo.inpainted.jpg"
    inpaint_file(inpainter()[0], image, mask, output, InpaintOptions(quality=90))
    with Image.open(output) as im:
        assert im.format == "JPEG" and im.size == (96, 64)


def test_dilate_and_invert_options(tmp_path):
    image = _photo(tmp_path / "photo.png")
    mask = _mask(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    result = inpaint_file(inpainter()[0], image, mask, out, InpaintOptions(dilate=2))
    assert result.hole_fraction == pytest.approx((24 * 34) / (96 * 64))
    out.unlink()
    result = inpaint_file(inpainter()[0], image, mask, out, InpaintOptions(invert_mask=True))
    assert result.hole_fraction == pytest.approx(1 - _hole().mean())


def test_refuses_to_overwrite(tmp_path):
    image = _photo(tmp_path / "photo.png")
    mask = _mask(tmp_path / "mask.png")
    output = tmp_path / "photo.inpainted.png"
    output.write_bytes(b"keep me")
    filler, recorder = inpainter()
    with pytest.raises(InputError, match="exists"):
        inpaint_file(filler, image, mask, output, InpaintOptions())
    assert output.read_bytes() == b"keep me"
    original = image.read_bytes()
    with pytest.raises(InputError, match="input image"):
        inpaint_file(filler, image, mask, image, InpaintOptions())
    assert image.read_bytes() == original
    with pytest.raises(InputError, match="mask"):
        inpaint_file(filler, image, mask, mask, InpaintOptions(overwrite=True))
    assert recorder.shapes == []

    result = inpaint_file(filler, image, mask, output, InpaintOptions(overwrite=True))
    assert result.ok and Image.open(output).size == (96, 64)


def test_empty_mask_writes_the_image_unchanged(tmp_path):
    image = _photo(tmp_path / "photo.jpg")
    mask = _mask(tmp_path / "mask.png", box=(0, 0, 0, 0))
    output = tmp_path / "photo.inpainted.jpg"
    filler, recorder = inpainter()
    result = inpaint_file(filler, image, mask, output, InpaintOptions())
    assert result.ok and result.hole_fraction == 0
    assert result.warning == f"{mask}: mask is empty; image written unchanged"
    assert output.read_bytes() == image.read_bytes()
    assert recorder.shapes == []
    # Converting to another format still writes the same pixels.
    png = tmp_path / "photo.png"
    inpaint_file(filler, image, mask, png, InpaintOptions())
    np.testing.assert_array_equal(np.asarray(Image.open(png)), io.load_image(image).pixels)


def test_mask_size_mismatch_is_an_input_error(tmp_path):
    image = _photo(tmp_path / "photo.png")
    mask = _mask(tmp_path / "mask.png", size=(48, 32), box=(5, 5, 10, 10))
    with pytest.raises(InputError, match="mask.png"):
        inpaint_file(inpainter()[0], image, mask, tmp_path / "out.png", InpaintOptions())
    result = inpaint_file(
        inpainter()[0], image, mask, tmp_path / "out.png", InpaintOptions(resize_mask=True)
    )
    assert result.hole_fraction == pytest.approx(10 * 10 / (96 * 64))


def test_result_to_dict_is_json_ready():
    result = InpaintResult(Path("a.png"), None, Path("a.inpainted.png"), True, hole_fraction=0.25)
    data = result.to_dict()
    assert data["input"] == "a.png" and data["mask"] is None
    assert data["output"] == "a.inpainted.png" and data["hole_fraction"] == 0.25


# --- inputs and batches -----------------------------------------------------------------------


def test_default_output(tmp_path):
    assert default_output(Path("dir/photo.jpg")) == Path("dir/photo.inpainted.jpg")
    assert default_output("dir/photo.PNG", tmp_path) == tmp_path / "photo.inpainted.PNG"
    assert default_output(Path("a.b.webp")) == Path("a.b.inpainted.webp")


def test_expand_inputs(tmp_path):
    folder = tmp_path / "dir"
    folder.mkdir()
    for name in ("b.png", "a.JPG", "c.inpainted.png", "notes.txt", "d.webp"):
        (folder / name).write_bytes(b"x")
    (folder / "sub").mkdir()
    single = tmp_path / "z.png"
    single.write_bytes(b"x")
    found = expand_inputs([single, folder, folder / "b.png"])
    assert found == [single, folder / "a.JPG", folder / "b.png", folder / "d.webp"]
    with pytest.raises(InputError, match="missing.png"):
        expand_inputs([single, tmp_path / "missing.png"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images"):
        expand_inputs([empty])


def test_batch_with_one_mask_and_a_broken_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    good = [_photo(src / "a.png", seed=1), _photo(src / "c.jpg", seed=3)]
    broken = src / "b.png"
    broken.write_bytes(b"not an image")
    mask = _mask(tmp_path / "mask.png")
    out_dir = tmp_path / "out" / "nested"
    seen: list[InpaintResult] = []

    results = inpaint_batch(
        inpainter()[0], [good[0], broken, good[1]], mask, out_dir, InpaintOptions(), seen.append
    )
    assert seen == results
    assert [r.ok for r in results] == [True, False, True]
    assert "b.png" in results[1].message and results[1].output is None
    assert sorted(p.name for p in out_dir.iterdir()) == ["a.inpainted.png", "c.inpainted.jpg"]
    written = np.asarray(Image.open(out_dir / "a.inpainted.png"))
    hole = _hole()
    np.testing.assert_array_equal(written[~hole], io.load_image(good[0]).pixels[~hole])

    # A second run refuses per file, and keeps going.
    again = inpaint_batch(inpainter()[0], good, mask, out_dir, InpaintOptions())
    assert [r.ok for r in again] == [False, False]
    assert all("exists" in r.message for r in again)


def test_a_write_that_fails_in_the_background_fails_its_own_image(tmp_path):
    """Batch writes run in a writer thread, one image behind the fills: a failed write is
    reported for the image it belongs to, in order, and the others are written."""
    src = tmp_path / "src"
    src.mkdir()
    images = [_photo(src / f"{n}.png", seed=i) for i, n in enumerate("abc")]
    out_dir = tmp_path / "out"
    (out_dir / "b.inpainted.png").mkdir(parents=True)  # cannot be replaced by a file
    seen: list[InpaintResult] = []
    results = inpaint_batch(
        inpainter()[0], images, _mask(tmp_path / "mask.png"), out_dir,
        InpaintOptions(overwrite=True), seen.append,
    )  # fmt: skip
    assert seen == results and [r.input for r in results] == images
    assert [r.ok for r in results] == [True, False, True]
    assert "b.inpainted.png: is a directory" in results[1].message
    assert all(r.pending is None for r in results)
    for name in ("a", "c"):
        assert io.load_image(out_dir / f"{name}.inpainted.png").pixels.shape == (64, 96, 3)


def test_batch_with_a_mask_folder_matched_by_stem(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    images = [_photo(src / f"{n}.png", seed=i) for i, n in enumerate("abc")]
    images.append(_photo(src / "d.jpg", size=(40, 30)))
    masks = tmp_path / "masks"
    masks.mkdir()
    _mask(masks / "a.png")
    _mask(masks / "b.png", box=(0, 8, 64, 96))  # all but a strip at the left
    _mask(masks / "d.jpg.png", size=(40, 30))  # wrong stem for d.jpg: no match
    results = inpaint_batch(inpainter()[0], images, masks, None, InpaintOptions())
    assert [r.ok for r in results] == [True, True, False, False]
    assert results[0].mask == masks / "a.png" and results[1].hole_fraction == 88 / 96
    assert "no mask named c.*" in results[2].message
    assert (src / "a.inpainted.png").exists() and (src / "b.inpainted.png").exists()
    assert not (src / "c.inpainted.png").exists()


def test_batch_outputs_with_the_same_name_do_not_clobber(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    images = [_photo(one / "photo.png", seed=1), _photo(two / "photo.png", seed=2)]
    mask = _mask(tmp_path / "mask.png")
    out_dir = tmp_path / "out"
    results = inpaint_batch(inpainter()[0], images, mask, out_dir, InpaintOptions(overwrite=True))
    assert [r.ok for r in results] == [True, False]
    assert "already written" in results[1].message
    written = np.asarray(Image.open(out_dir / "photo.inpainted.png"))
    hole = _hole()
    np.testing.assert_array_equal(written[~hole], io.load_image(images[0]).pixels[~hole])


def test_batch_with_a_missing_mask_is_an_input_error(tmp_path):
    image = _photo(tmp_path / "a.png")
    with pytest.raises(InputError, match="nomask.png"):
        inpaint_batch(inpainter()[0], [image], tmp_path / "nomask.png", None, InpaintOptions())
