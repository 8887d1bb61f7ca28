"""Detail transfer: copy the known region's high-frequency texture onto a smooth fill.

A weightless second stage for an inpainter whose fill is right in colour and layout but smooth.
A PatchMatch search (Barnes et al. 2009), vectorised in NumPy, finds for every hole pixel a known
pixel whose low-frequency neighbourhood matches the fill's there; the known pixel's detail (the
image minus its Gaussian blur at ``sigma``) is then copied, voted over 3x3 neighbours so seams
blend, and added to the fill, scaled by ``strength``. A coherence term in the match makes
neighbouring pixels copy with the same offset, so whole pieces of texture are copied. This is
RETHINED's idea (attention that pastes the high-frequency part of known patches onto a coarse
fill) with a nearest-neighbour search in place of learned attention.
"""

from __future__ import annotations

import numpy as np

# What ``imgfix inpaint --texture S`` runs: coherent copying (neighbours copy one piece of the
# known texture), 3x3 voting, three PatchMatch iterations; S is the strength. The setting of
# docs/texture.md, design 4b: at strength 1.5 it met the gradient-ratio target in all three
# graded families of the hold-out, and gradient-W1 in two.
TEXTURE = {"vote": 1, "iterations": 3, "coherence": 2.0}


def texture_options(strength: float) -> dict | None:
    """``add_detail``'s options for ``--texture strength``; None (no detail stage) at 0."""
    return {**TEXTURE, "strength": float(strength)} if strength > 0 else None


def _blur1d(a: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    radius = max(1, int(3 * sigma + 0.5))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()
    pad = [(0, 0)] * a.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(a, pad, mode="reflect")
    n = a.shape[axis]
    out = np.zeros_like(a)
    for i, t in enumerate(taps):
        out += t * np.take(padded, np.arange(i, i + n), axis=axis)
    return out


def blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W, C) float32 array over its first two axes."""
    return _blur1d(_blur1d(a, sigma, 0), sigma, 1)


def known_blur(rgb: np.ndarray, known: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over the known pixels only (normalised convolution)."""
    weight = known[..., None].astype(np.float32)
    both = blur(np.concatenate([rgb * weight, weight], axis=-1), sigma)
    return both[..., :3] / np.maximum(both[..., 3:], 1e-6)


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Square dilation by ``r`` pixels (no wrap-around at the edges)."""
    h, w = mask.shape
    padded = np.pad(mask, r)
    out = np.zeros_like(mask)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= padded[dy : dy + h, dx : dx + w]
    return out


def _features(image: np.ndarray, spacing: int) -> np.ndarray:
    """(H, W, 27): the image at a 3x3 grid of offsets ``spacing`` apart, edges clamped."""
    h, w, _ = image.shape
    p = spacing
    padded = np.pad(image, ((p, p), (p, p), (0, 0)), mode="edge")
    parts = [padded[p + dy : p + dy + h, p + dx : p + dx + w]
             for dy in (-p, 0, p) for dx in (-p, 0, p)]  # fmt: skip
    return np.concatenate(parts, axis=-1)


def match(
    features: np.ndarray,
    hole: np.ndarray,
    sources: np.ndarray,
    *,
    iterations: int = 4,
    penalty: float = 0.0,
    coherence: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PatchMatch from the hole pixels to ``sources``: (ty, tx) of the hole pixels in raster
    order, their matched source coordinates (N, 2) and the feature distance of each match.
    ``penalty`` weighs the squared distance (in units of the image's long side) against the
    feature distance; from the second iteration on, ``coherence`` times the median distance
    is taken off the cost for each of the 4 neighbours that copies with the same offset, so
    that whole patches are copied rather than single pixels."""
    h, w, _ = features.shape
    rng = np.random.default_rng(seed)
    ty, tx = np.nonzero(hole)
    n = ty.size
    index = np.full((h, w), -1, np.int64)
    index[ty, tx] = np.arange(n)
    valid_y, valid_x = np.nonzero(sources)
    pick = rng.integers(0, valid_y.size, n)
    sy, sx = valid_y[pick].copy(), valid_x[pick].copy()
    flat = features.reshape(h * w, -1)  # np.take on rows: 2-4x faster than features[y, x]
    target = np.take(flat, ty * w + tx, axis=0)
    scale = penalty / float(max(h, w)) ** 2
    neighbours = []  # index of each hole pixel's 4 neighbours (-1: not in the hole)
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        qy, qx = ty + dy, tx + dx
        ok = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
        neighbours.append(np.where(ok, index[np.clip(qy, 0, h - 1), np.clip(qx, 0, w - 1)], -1))

    def distance(
        cy: np.ndarray, cx: np.ndarray, at: np.ndarray | slice = slice(None)
    ) -> np.ndarray:
        """Feature distances of the hole pixels ``at`` to the candidates (cy, cx)."""
        d = np.take(flat, cy * w + cx, axis=0) - target[at]
        return np.einsum("nc,nc->n", d, d)

    bonus = 0.0  # the coherence bonus per agreeing neighbour, set once matches are good

    def cost(cy: np.ndarray, cx: np.ndarray, at: np.ndarray | slice = slice(None)) -> np.ndarray:
        c = distance(cy, cx, at)
        y, x = ty[at], tx[at]
        if scale:
            c += scale * ((cy - y) ** 2 + (cx - x) ** 2)
        if bonus:
            code = (cy - y) * (2 * w + 1) + (cx - x)  # the offset as one integer
            current = (sy - ty) * (2 * w + 1) + (sx - tx)
            for q in neighbours:
                q = q[at]
                c -= bonus * ((q >= 0) & (current[np.maximum(q, 0)] == code))
        return c

    best = cost(sy, sx)

    def consider(cy: np.ndarray, cx: np.ndarray, ok: np.ndarray) -> None:
        inside = ok & (cy >= 0) & (cy < h) & (cx >= 0) & (cx < w)
        cy, cx = np.where(inside, cy, 0), np.where(inside, cx, 0)
        at = np.flatnonzero(inside & sources[cy, cx])  # only real candidates are costed
        cy, cx = cy[at], cx[at]
        c = cost(cy, cx, at)
        better = c < best[at]
        at, cy, cx, c = at[better], cy[better], cx[better], c[better]
        sy[at], sx[at], best[at] = cy, cx, c

    steps = []
    step = 1
    while step * 2 <= max(1, int(np.sqrt(n))):
        step *= 2
    while step >= 1:
        steps.append(step)
        step //= 2
    for iteration in range(iterations):
        if coherence and iteration:  # in units of how well pixels match by now
            bonus = coherence * float(np.median(distance(sy, sx)))
            best = cost(sy, sx)
        for step in steps:
            for dy, dx in ((step, 0), (-step, 0), (0, step), (0, -step)):
                qy, qx = ty + dy, tx + dx
                ok = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
                q = index[np.clip(qy, 0, h - 1), np.clip(qx, 0, w - 1)]
                ok &= q >= 0
                q = np.where(ok, q, 0)
                consider(sy[q] - dy, sx[q] - dx, ok)
        radius = max(h, w) // 2
        while radius >= 1:
            ry = rng.integers(-radius, radius + 1, n)
            rx = rng.integers(-radius, radius + 1, n)
            consider(sy + ry, sx + rx, np.ones(n, bool))
            radius //= 2
    return np.stack([ty, tx], 1), np.stack([sy, sx], 1), distance(sy, sx)


def _vote(
    detail: np.ndarray,
    hole: np.ndarray,
    targets: np.ndarray,
    src: np.ndarray,
    factor: int,
    vote: int = 1,
    weight: np.ndarray | None = None,
) -> np.ndarray:
    """Hole detail at full resolution from a match found at 1/``factor``: each full-resolution
    pixel averages what its own and its 8 neighbours' matches say it should copy."""
    h, w, _ = detail.shape
    offset = np.zeros((h // factor + 2, w // factor + 2, 2), np.int64)
    has = np.zeros(offset.shape[:2], bool)
    offset[targets[:, 0] + 1, targets[:, 1] + 1] = (src - targets) * factor
    has[targets[:, 0] + 1, targets[:, 1] + 1] = True
    gain = np.ones(offset.shape[:2], np.float32)
    if weight is not None:
        gain[targets[:, 0] + 1, targets[:, 1] + 1] = weight
    py, px = np.nonzero(hole)
    total = np.zeros((py.size, 3), np.float32)
    count = np.zeros(py.size, np.float32)
    cy, cx = py // factor + 1, px // factor + 1
    for dy in range(-vote, vote + 1):
        for dx in range(-vote, vote + 1):
            ny, nx = (
                np.clip(cy + dy, 0, offset.shape[0] - 1),
                np.clip(cx + dx, 0, offset.shape[1] - 1),
            )
            ok = has[ny, nx]
            oy, ox = offset[ny, nx, 0], offset[ny, nx, 1]
            yy, xx = py + oy, px + ox
            ok &= (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            yy, xx = np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)
            ok &= ~hole[yy, xx]
            g = np.where(ok, gain[ny, nx], 0)
            total += g[:, None] * detail[yy, xx]
            count += ok
    out = np.zeros_like(detail)
    out[py, px] = total / np.maximum(count, 1)[:, None]
    return out


def add_detail(
    fill: np.ndarray,
    hole: np.ndarray,
    *,
    strength: float = 1.0,
    sigma: float = 2.0,
    spacing: int = 3,
    margin: int = 3,
    iterations: int = 4,
    penalty: float = 0.0,
    match_size: int = 256,
    context_sigma: float = 4.0,
    vote: int = 1,
    coherence: float = 0.0,
    confidence: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """``fill`` (H, W, 3 float32 in [0, 1]: known pixels, the model's fill in ``hole``) with
    the known region's detail copied into the hole. Known pixels are returned unchanged.

    ``coherence`` makes neighbours copy with one offset (``match``); ``confidence`` (if not 0)
    scales a match's detail by ``confidence`` times the median match distance over its own,
    at most 1."""
    fill = np.asarray(fill, np.float32)
    hole = np.asarray(hole, bool)
    known = ~hole
    if not hole.any() or not known.any():
        return fill
    detail = np.where(hole[..., None], 0.0, fill - known_blur(fill, known, sigma))
    factor = max(1, int(np.ceil(max(hole.shape) / match_size)))
    h, w = (hole.shape[0] // factor) * factor, (hole.shape[1] // factor) * factor
    small = fill[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).mean((1, 3))
    small_hole = hole[:h, :w].reshape(h // factor, factor, w // factor, factor).any((1, 3))
    features = _features(blur(small, context_sigma / factor), max(1, spacing // factor))
    sources = ~_dilate(small_hole, max(1, margin // factor) + 1)
    if not sources.any() or not small_hole.any():
        return fill
    targets, src, dist = match(features, small_hole, sources, iterations=iterations,
                               penalty=penalty, coherence=coherence, seed=seed)  # fmt: skip
    weight = None
    if confidence:  # a poor match pastes less: full detail at the median distance and under
        weight = np.minimum(1.0, confidence * np.median(dist) / np.maximum(dist, 1e-12))
    pasted = _vote(detail, hole, targets, src, factor, vote, weight)
    out = np.where(hole[..., None], np.clip(fill + strength * pasted, 0.0, 1.0), fill)
    return out.astype(np.float32)
