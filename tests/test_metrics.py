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
