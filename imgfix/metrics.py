"""Image quality metrics in plain NumPy, for images as float arrays in [0, 1].

PSNR is capped at ``MAX_PSNR`` dB so identical images give a finite number that averages
cleanly. SSIM follows Wang et al. (2004) with an 11-tap Gaussian window (sigma 1.5), K1 0.01,
K2 0.03 and population statistics, averaged over channels and over the pixels whose whole
window lies inside the image: the same definition as scikit-image's ``structural_similarity``
with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1``.

The texture measures look only inside the hole, eroded by 1 px so the seam between the known
pixels and the fill does not count, at the gradients of luma (Rec. 601 weights) from a 3x3
Sobel: ``gradient_ratio`` (about 0.03 for a smooth fill, 1 for real texture, above 1 for noise)
and ``gradient_w1`` (0 for the truth's own gradient distribution; it grows with blur and with
noise alike). PSNR rewards a blur; these two do not.
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


# --- texture inside the hole ------------------------------------------------------------------

LUMA = np.array([0.299, 0.587, 0.114])


def eroded(hole: np.ndarray, px: int = 1) -> np.ndarray:
    """The hole shrunk by ``px`` pixels (a square structuring element of side 2*px+1); pixels
    beyond the image count as known, so a hole that touches the border loses that edge too."""
    out = np.asarray(hole, bool)
    for _ in range(px):
        padded = np.pad(out, 1, constant_values=False)
        h, w = out.shape
        out = np.logical_and.reduce(
            [padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)]
        )
    return out


def sobel_magnitude(rgb: np.ndarray) -> np.ndarray:
    """Gradient magnitude of an image's luma (H x W x 3 or H x W), 3x3 Sobel scaled by 1/8 so
    that a ramp of slope s per pixel gives s. Edges are replicated."""
    x = np.asarray(rgb, np.float64)
    # Elementwise, not a matrix product: equal pixels must give exactly equal luma.
    luma = x[..., 0] * LUMA[0] + x[..., 1] * LUMA[1] + x[..., 2] * LUMA[2] if x.ndim == 3 else x
    p = np.pad(luma, 1, mode="edge")
    h, w = luma.shape

    def at(dy: int, dx: int) -> np.ndarray:
        return p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    # Differences first, so a flat region gives exactly 0.
    gx = (at(-1, 1) - at(-1, -1)) + 2 * (at(0, 1) - at(0, -1)) + (at(1, 1) - at(1, -1))
    gy = (at(1, -1) - at(-1, -1)) + 2 * (at(1, 0) - at(-1, 0)) + (at(1, 1) - at(-1, 1))
    return np.hypot(gx, gy) / 8.0


def _hole_gradients(
    truth: np.ndarray, fill: np.ndarray, hole: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitudes of truth and fill at the pixels of the hole eroded by 1 px: there,
    the 3x3 Sobel reads hole pixels only."""
    inner = eroded(hole)
    return sobel_magnitude(truth)[inner], sobel_magnitude(fill)[inner]


def _safe_ratio(num: float, den: float) -> float:
    """``num / den``, with 0/0 read as a match (1.0) and x/0 as infinitely far."""
    if den > 0:
        return num / den
    return 1.0 if num == 0 else float("inf")


def gradient_ratio(truth: np.ndarray, fill: np.ndarray, hole: np.ndarray) -> float:
    """Gradient-energy ratio in the eroded hole: mean |grad fill|^2 / mean |grad truth|^2.

    About 0 for a smooth fill, 1 for texture as strong as the truth's, above 1 for noise.
    NaN when the eroded hole is empty; 1.0 when truth and fill are both flat there."""
    return _ratio(*_hole_gradients(truth, fill, hole))


def _ratio(g_truth: np.ndarray, g_fill: np.ndarray) -> float:
    if g_truth.size == 0:
        return float("nan")
    return _safe_ratio(float(np.mean(g_fill**2)), float(np.mean(g_truth**2)))


def gradient_w1(truth: np.ndarray, fill: np.ndarray, hole: np.ndarray) -> float:
    """1-Wasserstein distance between the gradient-magnitude distributions of fill and truth
    in the eroded hole, over the truth's mean gradient magnitude. Lower is better.

    Both samples come from the same pixels, so W1 is the mean distance between the sorted
    samples. Unlike the per-pixel error it ignores *where* the gradients are: a fill with the
    right texture in other places scores well. NaN when the eroded hole is empty."""
    return _w1(*_hole_gradients(truth, fill, hole))


def _w1(g_truth: np.ndarray, g_fill: np.ndarray) -> float:
    if g_truth.size == 0:
        return float("nan")
    w1 = float(np.mean(np.abs(np.sort(g_fill) - np.sort(g_truth))))
    return 0.0 if w1 == 0 else _safe_ratio(w1, float(np.mean(g_truth)))


def texture(truth: np.ndarray, fill: np.ndarray, hole: np.ndarray) -> tuple[float, float]:
    """``(gradient_ratio, gradient_w1)`` at the cost of one: the gradients are taken once."""
    gradients = _hole_gradients(truth, fill, hole)
    return _ratio(*gradients), _w1(*gradients)


def hole_texture(truths: np.ndarray, fills: np.ndarray, holes: np.ndarray) -> dict[str, float]:
    """Texture figures of a batch (N x H x W x 3 images, N x H x W or N x H x W x 1 holes, which
    may be 0/1 floats): the median gradient ratio and the mean gradient-W1 over the images that
    have an eroded hole (NaN if none does)."""
    holes = np.asarray(holes)
    if holes.ndim == 4:
        holes = holes[..., 0]
    holes = holes > 0.5
    ratios, w1s = [], []
    for truth, fill, hole in zip(truths, fills, holes, strict=True):
        ratio, w1 = texture(truth, fill, hole)
        ratios.append(ratio)
        w1s.append(w1)
    r, w = np.asarray(ratios), np.asarray(w1s)
    r, w = r[~np.isnan(r)], w[~np.isnan(w)]
    return {
        "gradient_ratio": float(np.median(r)) if r.size else float("nan"),
        "gradient_w1": float(np.mean(w)) if w.size else float("nan"),
    }
