"""Metrics give known values on synthetic cases and agree with scikit-image."""

import numpy as np
import pytest

from imgfix import metrics


def test_psnr_of_identical_images_is_capped():
    a = np.random.default_rng(0).random((16, 16, 3))
    assert metrics.psnr(a, a) == metrics.MAX_PSNR == 100.0


def test_psnr_of_a_known_error():
    a = np.zeros((32, 32, 3))
    assert metrics.psnr(a, a + 0.1) == pytest.approx(20.0)
    assert metrics.psnr(a, a + 0.01) == pytest.approx(40.0)
    noisy = a + np.random.default_rng(1).normal(0, 0.05, a.shape)
    assert metrics.psnr(a, noisy) == pytest.approx(26.02, abs=0.1)


def test_masked_metrics_only_look_inside_the_mask():
    a = np.zeros((10, 10, 3))
    b = a.copy()
    b[:5] = 1.0
    mask = np.zeros((10, 10), bool)
    mask[5:] = True
    assert metrics.psnr(a, b, mask) == metrics.MAX_PSNR
    assert metrics.l1(a, b, mask) == 0.0
    assert metrics.l1(a, b, ~mask) == 1.0
    assert metrics.psnr(a, b, np.zeros((10, 10), bool)) == metrics.MAX_PSNR


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(2)
    a = rng.random((40, 50, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    expected = structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=1.0, channel_axis=-1,
    )  # fmt: skip
    assert metrics.ssim(a, b) == pytest.approx(expected, abs=1e-9)
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.ssim(a[..., 0], b[..., 0]) < 1.0


def _textured(size=64, seed=3):
    """A truth with fine texture everywhere over a gentle ramp, and a centred square hole."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    base = 0.3 + 0.2 * (xx + yy)[..., None] * np.array([1.0, 0.8, 0.6])
    truth = np.clip(base + rng.normal(0, 0.08, (size, size, 3)), 0, 1)
    hole = np.zeros((size, size), bool)
    hole[16:48, 16:48] = True
    return truth, hole


def test_an_exact_fill_has_ratio_one_and_w1_zero():
    truth, hole = _textured()
    assert metrics.gradient_ratio(truth, truth, hole) == pytest.approx(1.0)
    assert metrics.gradient_w1(truth, truth, hole) == 0.0
    assert metrics.texture(truth, truth, hole) == pytest.approx((1.0, 0.0))


def test_a_smooth_fill_has_a_ratio_near_zero_and_a_large_w1():
    truth, hole = _textured()
    flat = truth.copy()
    flat[hole] = truth[hole].mean(axis=0)
    assert metrics.gradient_ratio(truth, flat, hole) == 0.0
    assert metrics.gradient_w1(truth, flat, hole) == pytest.approx(1.0)  # all of the mean
    # A blur keeps the low frequencies, not the texture.
    from skimage.filters import gaussian

    blurred = truth.copy()
    blurred[hole] = gaussian(truth, sigma=3, channel_axis=-1)[hole]
    assert metrics.gradient_ratio(truth, blurred, hole) < 0.1
    assert metrics.gradient_w1(truth, blurred, hole) > 0.5


def test_added_noise_raises_w1_and_the_ratio_above_one():
    truth, hole = _textured()
    rng = np.random.default_rng(4)
    w1s = []
    for sigma in (0.0, 0.05, 0.15):
        noisy = truth.copy()
        noisy[hole] += rng.normal(0, sigma, noisy[hole].shape)
        w1s.append(metrics.gradient_w1(truth, noisy, hole))
        if sigma:
            assert metrics.gradient_ratio(truth, noisy, hole) > 1.2
    assert w1s[0] == 0.0 < w1s[1] < w1s[2]


def test_the_seam_does_not_count():
    truth, hole = _textured()
    # A fill that is exact up to a step at the seam: the gradients inside are the truth's.
    stepped = truth.copy()
    stepped[hole] += 0.25
    assert metrics.gradient_ratio(truth, stepped, hole) == pytest.approx(1.0, abs=1e-12)
    assert metrics.gradient_w1(truth, stepped, hole) == pytest.approx(0.0, abs=1e-12)
    # Nor do the known pixels around the hole, however wrong.
    garbage = np.random.default_rng(5).random(truth.shape)
    garbage[hole] = truth[hole]
    assert metrics.gradient_ratio(truth, garbage, hole) == pytest.approx(1.0)
    assert metrics.gradient_w1(truth, garbage, hole) == 0.0
    # The 1-px border of the hole is left out; the pixel next to it is not.
    inner = metrics.eroded(hole)
    assert inner.sum() == 30 * 30 and inner[17, 17] and not inner[16, 16]


def test_texture_measures_of_degenerate_holes():
    truth, _ = _textured()
    thin = np.zeros(truth.shape[:2], bool)
    thin[10:12, :] = True  # 2 px wide: nothing left after erosion
    assert np.isnan(metrics.gradient_ratio(truth, truth, thin))
    assert np.isnan(metrics.gradient_w1(truth, truth, thin))
    flat = np.full_like(truth, 0.5)
    box = np.zeros(truth.shape[:2], bool)
    box[8:40, 8:40] = True
    assert metrics.gradient_ratio(flat, flat, box) == 1.0  # both flat: a match
    assert metrics.gradient_w1(flat, flat, box) == 0.0
    assert metrics.gradient_ratio(flat, truth, box) == float("inf")


def test_hole_texture_summarises_a_batch():
    truth, hole = _textured()
    flat = truth.copy()
    flat[hole] = truth[hole].mean(axis=0)
    truths = np.stack([truth, truth, truth])
    fills = np.stack([truth, flat, truth])
    holes = np.stack([hole, hole, hole])[..., None].astype(np.float32)
    figures = metrics.hole_texture(truths, fills, holes)
    assert figures["gradient_ratio"] == pytest.approx(1.0)  # the median
    assert figures["gradient_w1"] == pytest.approx(1 / 3)  # the mean
