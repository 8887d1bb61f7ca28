"""Properties that hold for any input hypothesis draws (issue 10): the known pixels come back
bit-exact on LiteRT as on TensorFlow, reading a mask back from its own saved hole gives the
same hole, and any Unicode prompt gives a finite embedding or a one-line refusal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from imgfix import io, masks, runtime, zoo
from imgfix.errors import InputError

FEW = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
MANY = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


# --- LiteRT and TensorFlow keep the same known pixels -------------------------------------------


@pytest.fixture(scope="module")
def inpainters():
    """The shipped inpainter on each runtime, as ``imgfix inpaint --runtime ...`` loads it."""
    from imgfix.pipelines.inpaint import load_inpainter

    return {
        name: load_inpainter(zoo.DEFAULT_INPAINTER, zoo.REPO_ZOO, runtime.Settings("cpu", name))
        for name in ("litert", "tensorflow")
    }


@st.composite
def pictures(draw) -> tuple[io.Picture, np.ndarray, int]:
    """A small photo (grey, RGB or RGBA; 8 or 16 bits for grey), a hole of a few boxes and
    strokes, and a dilation."""
    h, w = draw(st.integers(8, 72)), draw(st.integers(8, 72))
    channels = draw(st.sampled_from([1, 3, 4]))
    dtype = draw(st.sampled_from([np.uint8, np.uint16])) if channels == 1 else np.uint8
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    top = np.iinfo(dtype).max
    pixels = rng.integers(0, top + 1, (h, w, channels) if channels > 1 else (h, w), dtype)
    hole = np.zeros((h, w), bool)
    for _ in range(draw(st.integers(0, 4))):
        y, x = rng.integers(0, h), rng.integers(0, w)
        hole[y : y + rng.integers(1, h // 2 + 2), x : x + rng.integers(1, w // 2 + 2)] = True
    if draw(st.booleans()):
        y = rng.integers(0, h)
        hole[y, :] = True  # a one-pixel scratch across the photo
    return io.Picture(pixels), hole, draw(st.integers(0, 12))


@FEW
@given(pictures())
def test_known_pixels_are_bit_exact_on_litert_as_on_tensorflow(inpainters, drawn):
    picture, hole, dilation = drawn
    hole = masks.dilate(hole, dilation)
    assume(not hole.all())  # refused: nothing is left to fill it from
    outputs = {
        name: picture.with_patches(inpainter.patches(picture.colour(), hole), hole).pixels
        for name, inpainter in inpainters.items()
    }
    for pixels in outputs.values():
        assert pixels.dtype == picture.pixels.dtype and pixels.shape == picture.pixels.shape
        assert np.array_equal(pixels[~hole], picture.pixels[~hole])
        if picture.has_alpha:
            assert np.array_equal(pixels[..., -1], picture.pixels[..., -1])  # alpha, everywhere
    assert np.array_equal(outputs["litert"][~hole], outputs["tensorflow"][~hole])
    difference = np.abs(outputs["litert"].astype(np.int64) - outputs["tensorflow"])
    assert difference.max(initial=0) <= 2 * (picture.max_value // 255)  # the fill: <= 2 levels


# --- mask parsing is idempotent ------------------------------------------------------------------


@st.composite
def mask_files(draw) -> tuple[Image.Image, tuple[int, int], bool, bool]:
    """A mask as people paint them (grey, 1-bit, RGB, palette, 16-bit, or alpha-painted), the
    image size it is read at, and the options."""
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    level = rng.integers(0, 256, (h, w), np.uint8)
    kind = draw(st.sampled_from(["L", "1", "RGB", "P", "I;16", "LA-painted", "RGBA"]))
    if kind == "LA-painted":
        image = Image.fromarray(np.stack([np.full_like(level, 255), level], -1), "LA")
    elif kind == "RGBA":
        image = Image.fromarray(rng.integers(0, 256, (h, w, 4), np.uint8), "RGBA")
    elif kind == "I;16":
        image = Image.fromarray(level.astype(np.uint16) * 257)
    else:
        image = Image.fromarray(level).convert(kind)
    resize = draw(st.booleans())
    size = (draw(st.integers(1, 48)), draw(st.integers(1, 48))) if resize else (w, h)
    return image, size, resize, draw(st.booleans())


@MANY
@given(mask_files(), st.sampled_from([".png", ".bmp", ".tif", ".webp"]))
def test_a_mask_read_back_from_its_saved_hole_is_the_same_hole(tmp_path_factory, drawn, suffix):
    image, size, resize, invert = drawn
    folder = tmp_path_factory.mktemp("mask")
    painted = folder / "painted.png"
    image.save(painted)
    hole = io.load_mask(painted, size, invert=invert, resize=resize)
    assert hole.shape == (size[1], size[0]) and hole.dtype == bool
    saved = io.save_image(io.Picture(hole.astype(np.uint8) * 255), folder / f"hole{suffix}")
    again = io.load_mask(saved, size)
    assert np.array_equal(again, hole)
    assert np.array_equal(io.load_mask(saved, size, invert=True), ~hole)


# --- any Unicode prompt ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prompt_encoder():
    """The shipped prompt encoder on LiteRT, as ``imgfix generate`` runs it on the CPU."""
    model, card = runtime.load(
        "prompt-encoder", zoo.REPO_ZOO, "text-encoder", runtime.Settings("cpu", "litert")
    )
    return model, card["tokenizer"]


any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=600)  # surrogates too


@MANY
@given(st.one_of(any_text, st.text(max_size=40)))
def test_any_unicode_prompt_gives_a_finite_embedding_or_a_one_line_error(prompt_encoder, text):
    from imgfix.data.tokens import tokenize
    from imgfix.pipelines.generate import check_prompts

    model, tokenizer = prompt_encoder
    try:
        [prompt] = check_prompts([text])
    except InputError as refused:
        message = str(refused)
        assert len(message.splitlines()) == 1  # what the command line prints
        return
    ids = tokenize([prompt], tokenizer)
    vector = np.asarray(model(ids))[0]
    assert vector.shape == (128,) and np.isfinite(vector).all()
    norm = float(np.linalg.norm(vector))
    assert abs(norm - 1.0) < 1e-3 or (not ids.any() and norm == 0.0)
