"""The weightless detail transfer (imgfix.pipelines.texture) on synthetic cases: it keeps the
known pixels, copies texture from where the context matches, and leaves trivial cases alone."""

import numpy as np

from imgfix import metrics
from imgfix.pipelines import texture


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left half: fine noise texture about 0.6; right half: flat 0.2. A box hole in the left
    half, filled by the smooth truth (its local mean): the smear an inpainter gives."""
    rng = np.random.default_rng(seed)
    truth = np.full((96, 128, 3), 0.2, np.float32)
    truth[:, :64] = 0.6 + rng.uniform(-0.2, 0.2, (96, 64, 1)).astype(np.float32)
    hole = np.zeros((96, 128), bool)
    hole[32:64, 16:48] = True
    smooth = truth.copy()
    smooth[:, :64] = 0.6
    fill = np.where(hole[..., None], smooth, truth)
    return truth, hole, fill


def test_known_pixels_are_returned_exactly():
    truth, hole, fill = _scene()
    out = texture.add_detail(fill, hole, vote=0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[~hole], fill[~hole])
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_it_copies_texture_from_the_matching_context():
    truth, hole, fill = _scene()
    before = metrics.gradient_ratio(truth, fill, hole)
    out = texture.add_detail(fill, hole, vote=0, iterations=2)
    after = metrics.gradient_ratio(truth, out, hole)
    assert before < 0.05
    assert 0.5 < after < 1.5  # texture of the textured half, not the flat half (ratio 0)
    assert metrics.gradient_w1(truth, out, hole) < 0.5 * metrics.gradient_w1(truth, fill, hole)
    # The colour stays the fill's: detail has no mean of its own.
    assert abs(out[hole].mean() - fill[hole].mean()) < 0.03


def test_strength_scales_the_detail():
    truth, hole, fill = _scene()
    full = texture.add_detail(fill, hole, vote=0, strength=1.0)
    half = texture.add_detail(fill, hole, vote=0, strength=0.5)
    np.testing.assert_allclose(half[hole] - fill[hole], 0.5 * (full[hole] - fill[hole]),
                               atol=1e-5)  # fmt: skip


def test_trivial_holes_are_left_alone():
    truth, hole, fill = _scene()
    none = np.zeros_like(hole)
    np.testing.assert_array_equal(texture.add_detail(fill, none), fill)
    everything = np.ones_like(hole)
    np.testing.assert_array_equal(texture.add_detail(fill, everything), fill)


def test_blur_over_known_pixels_ignores_the_hole():
    truth, hole, fill = _scene()
    poisoned = np.where(hole[..., None], 1.0, fill).astype(np.float32)
    a = texture.known_blur(fill, ~hole, 2.0)
    b = texture.known_blur(poisoned, ~hole, 2.0)
    np.testing.assert_allclose(a, b, atol=1e-6)
