"""Image quality metrics in plain NumPy, for images as float arrays in [0, 1].

PSNR is capped at ``MAX_PSNR`` dB so identical images give a finite number that averages
cleanly. SSIM follows Wang et al. (2004) with an 11-tap Gaussian window (sigma 1.5), K1 0.01,
K2 0.03 and population statistics, averaged over channels and over the pixels whose whole
window lies inside the image: the same definition as scikit-image's ``structural_similarity``
with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1``.
"""

from __future__ import annotations

import numpy as np

MAX_PSNR = 100.0


def psnr(truth: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio in dB (peak 1.0), over ``mask`` pixels if given."""
    err = np.square(np.asarray(truth, np.float64) - np.asarray(test, np.float64))
    if mask is not None:
        if not mask.any():
            return MAX_PSNR
        err = err[mask.astype(bool)]
    mse = float(err.mean())
    return MAX_PSNR if mse <= 10 ** (-MAX_PSNR / 10) else float(-10 * np.log10(mse))


def l1(truth: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error, over ``mask`` pixels if given."""
    err = np.abs(np.asarray(truth, np.float64) - np.asarray(test, np.float64))
    if mask is not None:
        err = err[mask.astype(bool)]
    return float(err.mean()) if err.size else 0.0


def _gaussian_window(sigma: float = 1.5, truncate: float = 3.5) -> np.ndarray:
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def _filter_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of the first two axes with the 1-D kernel ``w``."""
    k = len(w)
    rows = sum(w[i] * x[i : x.shape[0] - k + 1 + i] for i in range(k))
    return sum(w[i] * rows[:, i : rows.shape[1] - k + 1 + i] for i in range(k))


def ssim(truth: np.ndarray, test: np.ndarray) -> float:
    """Mean structural similarity of two images (H x W or H x W x C, values in [0, 1])."""
    a, b = np.asarray(truth, np.float64), np.asarray(test, np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    w = _gaussian_window()
    if min(a.shape[:2]) < len(w):
        raise ValueError(f"ssim needs images of at least {len(w)} px, got {a.shape[:2]}")
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _filter_valid(a, w), _filter_valid(b, w)
    var_a = _filter_valid(a * a, w) - mu_a**2
    var_b = _filter_valid(b * b, w) - mu_b**2
    cov = _filter_valid(a * b, w) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((num / den).mean())
