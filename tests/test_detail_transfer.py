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


def _agreeing_neighbours(targets: np.ndarray, src: np.ndarray, shape: tuple[int, int]) -> float:
    """The share of horizontal neighbour pairs in the hole that copy with the same offset."""
    offset = np.full((*shape, 2), -(10**6), np.int64)
    offset[targets[:, 0], targets[:, 1]] = src - targets
    has = np.zeros(shape, bool)
    has[targets[:, 0], targets[:, 1]] = True
    pairs = has[:, 1:] & has[:, :-1]
    same = (offset[:, 1:] == offset[:, :-1]).all(-1) & pairs
    return same.sum() / pairs.sum()


def test_coherence_copies_whole_patches_as_well_matched():
    truth, hole, fill = _scene()
    features = texture._features(texture.blur(fill, 4.0), 3)
    sources = ~texture._dilate(hole, 4)
    plain = texture.match(features, hole, sources, iterations=3)
    coherent = texture.match(features, hole, sources, iterations=3, coherence=2.0)
    # Every source is a known pixel away from the hole, and the distances are the features'.
    for targets, src, dist in (plain, coherent):
        assert sources[src[:, 0], src[:, 1]].all()
        d = features[src[:, 0], src[:, 1]] - features[targets[:, 0], targets[:, 1]]
        np.testing.assert_allclose(dist, (d * d).sum(-1), rtol=1e-5)
    assert _agreeing_neighbours(*coherent[:2], hole.shape) > 2 * _agreeing_neighbours(
        *plain[:2], hole.shape
    )
    # ... from the textured half still: the flat half's context is far.
    assert (coherent[1][:, 1] < 64).all()


def test_confidence_pastes_less_where_the_match_is_poor():
    truth, hole, fill = _scene()
    full = texture.add_detail(fill, hole, vote=0)
    low = texture.add_detail(fill, hole, vote=0, confidence=0.3)
    added_full, added_low = np.abs(full - fill)[hole], np.abs(low - fill)[hole]
    assert added_low.mean() < 0.8 * added_full.mean()
    assert (added_low <= added_full + 1e-6).all()  # a gain of at most 1
