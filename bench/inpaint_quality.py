"""Inpainting quality on the held-out evaluation images, every method on the same masks.

    python -m bench.inpaint_quality --update-card

For each image, short side (256, 512) and mask family (thin, medium, thick: LaMa's evaluation
families drawn by ``imgfix.masks`` with a fixed seed; box: a centred box of 25% of the area),
every method fills the same hole: every inpainter in the zoo, OpenCV Telea and Navier-Stokes at
radius 3 and 9, scikit-image's biharmonic, OpenCV contrib's FSR (fast) and shift-map, the
inpainter's weightless first stage, the weightless texture reference (that stage plus shift-map's
high frequencies) and the mean-colour floor. Metrics: PSNR and SSIM over the whole image, L1 and
PSNR over the hole, and the texture of the hole (``imgfix.metrics.gradient_ratio`` and
``gradient_w1``), since PSNR alone rewards a blur. Each method's raw output is checked to be
bit-exact outside the hole.

Shift-map takes seconds per image (far more on thin masks at 512 px), so the methods in
``methods.SLOW`` are measured only up to ``--slow-max-size`` on ``--slow-families``; elsewhere
they run only for the side-by-side figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench import eval_images, methods
from imgfix import metrics
from imgfix.masks import MASK_KINDS, random_mask


def mask_for(image_index: int, kind: str, height: int, width: int, seed: int) -> np.ndarray:
    """The fixed mask for one (image, family, size): the same in every run and for every method."""
    rng = np.random.default_rng([seed, image_index, MASK_KINDS.index(kind), height, width])
    return random_mask(height, width, kind, rng)


def evaluate(
    images: dict[str, np.ndarray],
    sizes: tuple[int, ...],
    kinds: tuple[str, ...],
    runners: dict[str, methods.Method],
    seed: int = 0,
    keep: dict[tuple[str, int, str], dict] | None = None,
    scope: dict[str, Callable[[int, str], bool]] | None = None,
) -> list[dict]:
    """One row per (method, image, size, family) with its metrics and run time; ``images``
    maps names to RGB ``uint8`` arrays at their native size. For each ``(image, size, family)``
    key of ``keep``, the masked input, the truth and every method's output are stored in it.
    A method in ``scope`` is measured only where ``scope[method](size, family)`` holds; on other
    kept cases it runs for the figure alone and gives no row."""
    scope = scope or {}
    rows = []
    for index, (name, original) in enumerate(images.items()):
        for size in sizes:
            truth = eval_images.at_size(original, size)
            h, w = truth.shape[:2]
            ref = truth.astype(np.float64) / 255.0
            for kind in kinds:
                hole = mask_for(index, kind, h, w, seed)
                masked = truth.copy()
                masked[hole] = 0  # no method may see what is under the hole
                kept = keep.get((name, size, kind)) if keep is not None else None
                if kept is not None:
                    kept.update(truth=truth, masked=masked.copy(), hole=hole)
                for method, run in runners.items():
                    measured = method not in scope or scope[method](size, kind)
                    if not measured and kept is None:
                        continue
                    start = time.perf_counter()
                    out = run(masked, hole)
                    # Work this method reused from another on the same case still counts.
                    seconds = time.perf_counter() - start + getattr(run, "borrowed_seconds", 0.0)
                    if not np.array_equal(out[~hole], truth[~hole]):
                        raise AssertionError(f"{method} changed pixels outside the hole on {name}")
                    if kept is not None:
                        kept[method] = out
                    if not measured:
                        continue
                    test = out.astype(np.float64) / 255.0
                    grad_ratio, grad_w1 = metrics.texture(ref, test, hole)
                    rows.append(
                        {
                            "method": method,
                            "image": name,
                            "size": size,
                            "family": kind,
                            "hole_area": float(hole.mean()),
                            "psnr": metrics.psnr(ref, test),
                            "ssim": metrics.ssim(ref, test),
                            "hole_psnr": metrics.psnr(ref, test, hole),
                            "hole_l1": metrics.l1(ref, test, hole),
                            "grad_ratio": grad_ratio,
                            "grad_w1": grad_w1,
                            "seconds": seconds,
                        }
                    )
    return rows


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of a 95% t-interval over images."""
    v = np.asarray(values, np.float64)
    if len(v) == 0:  # e.g. a slow method against another on a family it was not measured on
        return float("nan"), 0.0
    if len(v) < 2:
        return float(v.mean()), 0.0
    from scipy.stats import t

    return float(v.mean()), float(t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def summarise(rows: list[dict], by: tuple[str, ...] = ("family", "size", "method")) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, group in groups.items():
        entry = dict(zip(by, key, strict=True))
        entry["n"] = len(group)
        entry["hole_area"] = float(np.mean([r["hole_area"] for r in group]))
        for metric in ("psnr", "ssim", "hole_psnr", "hole_l1", "seconds"):
            entry[metric], entry[f"{metric}_ci95"] = interval([r[metric] for r in group])
        entry.update(texture_summary(group))
        out.append(entry)
    return out


def texture_summary(rows: list[dict]) -> dict:
    """The median gradient ratio (as the texture issue defines it: one ratio is skewed by a
    noisy fill) with its quartiles, and the mean gradient-W1 with its 95% half-width, over the
    rows that have them (an eroded hole can be empty). Empty if no row has them."""
    ratios = [r["grad_ratio"] for r in rows if np.isfinite(r.get("grad_ratio", np.nan))]
    w1s = [r["grad_w1"] for r in rows if np.isfinite(r.get("grad_w1", np.nan))]
    out = {}
    if ratios:
        q25, q50, q75 = np.percentile(ratios, [25, 50, 75])
        out.update(grad_ratio=float(q50), grad_ratio_q25=float(q25), grad_ratio_q75=float(q75))
    if w1s:
        out["grad_w1"], out["grad_w1_ci95"] = interval(w1s)
    return out


def _texture_cells(s: dict) -> str:
    ratio = f"{s['grad_ratio']:.3f}" if "grad_ratio" in s else ""
    w1 = f"{s['grad_w1']:.3f} ± {s['grad_w1_ci95']:.3f}" if "grad_w1" in s else ""
    return f"| {ratio} | {w1} "


def markdown(summary: list[dict]) -> str:
    lines = [
        "| family | size | method | n | hole area | PSNR | SSIM | hole PSNR | hole L1 "
        "| grad ratio (median) | grad W1 | s/image |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['family']} | {s['size']} | {s['method']} | {s['n']} | {s['hole_area']:.1%} "
            f"| {s['psnr']:.2f} ± {s['psnr_ci95']:.2f} | {s['ssim']:.4f} ± {s['ssim_ci95']:.4f} "
            f"| {s['hole_psnr']:.2f} ± {s['hole_psnr_ci95']:.2f} | {s['hole_l1']:.4f} "
            + _texture_cells(s)
            + f"| {s['seconds']:.3f} |"
        )
    return "\n".join(lines)


def best_classical(summary: list[dict], family: str, size: int | None = None) -> str | None:
    """The classical reference with the highest mean PSNR on a family (and size, if given)."""
    candidates = [
        s for s in summary
        if s["family"] == family and s["method"] in methods.REFERENCES
        and (size is None or s.get("size") == size)
    ]  # fmt: skip
    return max(candidates, key=lambda s: s["psnr"])["method"] if candidates else None


def paired_gain(rows: list[dict], method: str, reference: str, metric: str = "psnr") -> tuple:
    """Mean and 95% half-width of ``method`` minus ``reference`` over the same (image, mask)."""
    by_case = {}
    for r in rows:
        by_case.setdefault((r["image"], r["size"], r["family"]), {})[r["method"]] = r[metric]
    diffs = [c[method] - c[reference] for c in by_case.values() if method in c and reference in c]
    return interval(diffs)


def headline(rows: list[dict], model: str) -> list[dict]:
    """Per family and size: the model against the best classical method, paired per image."""
    summary = summarise(rows)
    out = []
    for family, size in sorted({(r["family"], r["size"]) for r in rows}, key=_family_order):
        best = best_classical(summary, family, size)
        if best is None:
            continue
        entry = {"family": family, "size": size, "model": model, "best_classical": best}
        cases = [r for r in rows if r["size"] == size and r["family"] == family]
        for metric in ("psnr", "ssim", "hole_l1"):
            entry[f"{metric}_gain"], entry[f"{metric}_gain_ci95"] = paired_gain(
                cases, model, best, metric
            )
        if any(r["method"] == "coarse-fill" for r in cases):  # what training added
            entry["psnr_gain_over_coarse"], entry["psnr_gain_over_coarse_ci95"] = paired_gain(
                cases, model, "coarse-fill"
            )
        # PSNR rewards a blur: the texture of the same fills sits beside it.
        for tag, method in (("model", model), ("best", best)):
            texture = texture_summary([r for r in cases if r["method"] == method])
            for metric in ("grad_ratio", "grad_w1"):
                if metric in texture:
                    entry[f"{tag}_{metric}"] = texture[metric]
        out.append(entry)
    return out


def _family_order(key: tuple) -> tuple:
    return (MASK_KINDS.index(key[0]) if key[0] in MASK_KINDS else len(MASK_KINDS), *key[1:])


def area_distribution(rows: list[dict]) -> list[dict]:
    """Hole area per family and size over the images: mean, quartiles and extremes."""
    cases = {(r["family"], r["size"], r["image"]): r["hole_area"] for r in rows}
    out = []
    for family, size in sorted({k[:2] for k in cases}, key=_family_order):
        areas = [a for k, a in cases.items() if k[:2] == (family, size)]
        q = np.percentile(areas, [0, 25, 50, 75, 100])
        out.append(
            {"family": family, "size": size, "n": len(areas), "mean": float(np.mean(areas)),
             **dict(zip(("min", "q25", "median", "q75", "max"), map(float, q), strict=True))}
        )  # fmt: skip
    return out


def card_metrics(rows: list[dict], model: str, reference: str, command: str, seed: int) -> dict:
    """The figures a model card carries: per family, the model next to ``reference`` and to the
    best classical method of that family."""
    summary = summarise(rows, by=("family", "method"))
    families = {}
    for s in summary:
        family = s["family"]
        best = best_classical(summary, family)
        # The model's own weightless first stage, when measured, shows what training added.
        if s["method"] not in (model, reference, best, "coarse-fill"):
            continue
        tag = "model" if s["method"] == model else s["method"]
        fam = families.setdefault(
            family, {"hole_area": round(s["hole_area"], 4), "best_classical": best}
        )
        for metric in ("psnr", "ssim", "hole_psnr"):
            fam[f"{tag}_{metric}"] = round(s[metric], 4 if metric == "ssim" else 3)
        for metric in ("grad_ratio", "grad_w1"):
            if metric in s:
                fam[f"{tag}_{metric}"] = round(s[metric], 3)
    for fam in families.values():
        fam["psnr_gain_db"] = round(fam["model_psnr"] - fam[f"{reference}_psnr"], 3)
        fam["psnr_gain_vs_best_db"] = round(
            fam["model_psnr"] - fam[f"{fam['best_classical']}_psnr"], 3
        )
    return {
        "images": sorted({r["image"] for r in rows}),
        "sizes": sorted({r["size"] for r in rows}),
        "mask_seed": seed,
        "reference": f"OpenCV cv2.inpaint {reference}",
        "command": command,
        "families": families,
    }


# --- the page: tables, a plot and the side-by-side figure ---------------------------------------

METRICS = (("psnr", "PSNR dB", 2), ("ssim", "SSIM", 4), ("hole_psnr", "hole PSNR dB", 2),
           ("hole_l1", "hole L1", 4), ("grad_ratio", "grad ratio (median)", 3),
           ("grad_w1", "grad W1", 3))  # fmt: skip


def family_tables(summary: list[dict]) -> str:
    """One table per mask family: a row per method, each metric at every size, mean ± 95%."""
    sizes = sorted({s["size"] for s in summary})
    cells = {(s["family"], s["method"], s["size"]): s for s in summary}
    parts = []
    for family in sorted({s["family"] for s in summary}, key=lambda f: _family_order((f,))):
        methods_here = list(dict.fromkeys(s["method"] for s in summary if s["family"] == family))
        methods_here.sort(key=lambda m: -np.mean([cells[(family, m, z)]["psnr"] for z in sizes
                                                  if (family, m, z) in cells]))  # fmt: skip
        head = [f"{label} @{z}" for _, label, _ in METRICS for z in sizes]
        lines = [
            f"**{family}**",
            "",
            "| method | " + " | ".join(head) + f" | s/image @{sizes[-1]} |",
            "|---" * (len(head) + 2) + "|",
        ]
        for m in methods_here:
            row = []
            for metric, _, digits in METRICS:
                for z in sizes:
                    c = cells.get((family, m, z))
                    if c is None or metric not in c:
                        row.append("")
                    elif metric + "_ci95" not in c:  # a median
                        row.append(f"{c[metric]:.{digits}f}")
                    else:
                        row.append(f"{c[metric]:.{digits}f} ± {c[metric + '_ci95']:.{digits}f}")
            last = cells.get((family, m, sizes[-1]))
            row.append(f"{last['seconds']:.3f}" if last else "")
            lines.append(f"| {m} | " + " | ".join(row) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def plot(rows: list[dict], path: Path, reference: str = "telea-r3") -> None:
    """Grouped bars: each method's PSNR minus ``reference``'s on the same image and mask, per
    family, one panel per size, with paired 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imgfix.io import atomic_path

    sizes = sorted({r["size"] for r in rows})
    families = sorted({r["family"] for r in rows}, key=lambda f: _family_order((f,)))
    names = [m for m in dict.fromkeys(r["method"] for r in rows) if m != reference]
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 3.6), squeeze=False)
    width = 0.8 / max(len(names), 1)
    for ax, size in zip(axes[0], sizes, strict=True):
        for i, name in enumerate(names):
            gains = [
                paired_gain([r for r in rows if r["size"] == size and r["family"] == f],
                            name, reference)
                for f in families
            ]  # fmt: skip
            ax.bar(
                [j + i * width for j in range(len(families))],
                [g[0] for g in gains],
                width,
                yerr=[g[1] for g in gains],
                label=name,
                capsize=2,
            )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(families))], families)
        ax.set_title(f"PSNR minus {reference} (dB), short side {size} px", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def perception_distortion(summary: list[dict], path: Path) -> None:
    """The perception-distortion picture: mean hole PSNR against the median gradient-energy
    ratio, one point per method (colour) and mask family (marker), one panel per size. A blur
    sits high on the left, patch copying low near 1; the goal is the top right, near 1. A flat
    fill's ratio of 0 is drawn at 0.001 (the axis is logarithmic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imgfix.io import atomic_path

    points = [s for s in summary if "grad_ratio" in s]
    sizes = sorted({s["size"] for s in points})
    families = sorted({s["family"] for s in points}, key=lambda f: _family_order((f,)))
    names = list(dict.fromkeys(s["method"] for s in points))
    colours = plt.get_cmap("tab20").colors
    markers = dict(zip(families, "osD^vP*X", strict=False))
    # each panel 6 in wide, plus room for the legend of long method names on the right
    legend = 0.065 * max(map(len, names), default=0) + 0.8
    fig, axes = plt.subplots(1, max(len(sizes), 1), figsize=(6 * max(len(sizes), 1) + legend,
                             4.4), squeeze=False)  # fmt: skip
    for ax, size in zip(axes[0], sizes, strict=False):
        for s in (s for s in points if s["size"] == size):
            colour = colours[names.index(s["method"]) % len(colours)]
            ax.scatter(max(s["grad_ratio"], 1e-3), s["hole_psnr"], color=colour,
                       marker=markers.get(s["family"], "o"), s=30, edgecolor="black",
                       linewidth=0.4)  # fmt: skip
        ax.axvline(1.0, color="gray", linestyle="--", linewidth=0.8)  # the truth's own energy
        ax.set_xscale("log")
        ax.set_xlabel("gradient-energy ratio in the hole (median; 1 = the truth's texture)")
        ax.set_ylabel("hole PSNR dB (mean)")
        ax.set_title(f"Perception against distortion, short side {size} px", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    handles = [plt.Line2D([], [], color=colours[i % len(colours)], marker="o", linestyle="",
                          label=m) for i, m in enumerate(names)]  # fmt: skip
    handles += [plt.Line2D([], [], color="gray", marker=markers[f], linestyle="", label=f)
                for f in families]  # fmt: skip
    axes[0][-1].legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def figure(kept: dict[tuple[str, int, str], dict], names: list[str], path: Path,
           crop: int = 192) -> None:  # fmt: skip
    """Side by side, one row per kept case: masked input, each method, the truth; each cut to a
    ``crop`` px window centred on the hole, at native resolution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imgfix.io import atomic_path

    columns = ["masked", *names, "truth"]
    fig, axes = plt.subplots(
        len(kept), len(columns), figsize=(1.6 * len(columns), 1.75 * len(kept)), squeeze=False
    )
    for r, ((image, size, family), case) in enumerate(kept.items()):
        row = axes[r]
        hole = case["hole"]
        ys, xs = np.nonzero(hole)
        h, w = hole.shape
        top = int(np.clip(np.median(ys) - crop // 2, 0, max(h - crop, 0)))
        left = int(np.clip(np.median(xs) - crop // 2, 0, max(w - crop, 0)))
        window = (slice(top, top + crop), slice(left, left + crop))
        for ax, column in zip(row, columns, strict=True):
            shown = case[column][window].copy()
            if column == "masked":  # show the hole in magenta rather than black
                shown[hole[window]] = (255, 0, 255)
            ax.imshow(shown, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if ax is row[0]:
                ax.set_ylabel(f"{image}\n{family} @{size}", fontsize=7)
            if r == 0:  # long names (a model with detail options) wrapped at their commas
                ax.set_title("\n".join(textwrap.wrap(column.replace(",", ", "), 22)), fontsize=7)
    fig.tight_layout(pad=0.3)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _pair(entry: dict, metric: str) -> str:
    if f"model_{metric}" not in entry or f"best_{metric}" not in entry:
        return "| "
    return f"| {entry[f'model_{metric}']:.3f} / {entry[f'best_{metric}']:.3f} "


def section(payload: dict, assets: Path, prefix: str = "") -> str:
    """The inpainting part of docs/benchmarks.md, with its plot written into ``assets``."""
    summary = payload["summary"]
    plot(payload["rows"], assets / "inpaint-psnr-vs-telea.png")
    textured = any("grad_ratio" in s for s in summary)
    if textured:
        perception_distortion(summary, assets / "inpaint-perception-distortion.png")
    lines = [
        "Hole area per family (fraction of the image, over the evaluation images):",
        "",
        "| family | size | images | mean | min | 25% | median | 75% | max |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {a['family']} | {a['size']} | {a['n']} | {a['mean']:.1%} | {a['min']:.1%} "
            f"| {a['q25']:.1%} | {a['median']:.1%} | {a['q75']:.1%} | {a['max']:.1%} |"
            for a in payload["areas"]
        ),
        "",
    ]
    for model, entries in payload["headline"].items():
        lines += [
            f"**{model} against the best classical method** of each family and size (by mean "
            "PSNR), paired over the same images and masks: mean difference ± 95% interval. "
            "Outside the hole every method is exact, so the hole-PSNR gain equals the PSNR gain.",
            "",
            "| family | size | best classical | PSNR gain dB | SSIM gain | hole L1 change "
            "| PSNR gain over its own untrained coarse fill | grad ratio, model / best "
            "| grad W1, model / best |",
            "|---|---|---|---|---|---|---|---|---|",
            *(
                f"| {e['family']} | {e['size']} | {e['best_classical']} "
                f"| {e['psnr_gain']:+.2f} ± {e['psnr_gain_ci95']:.2f} "
                f"| {e['ssim_gain']:+.4f} ± {e['ssim_gain_ci95']:.4f} "
                f"| {e['hole_l1_gain']:+.4f} ± {e['hole_l1_gain_ci95']:.4f} "
                + (
                    f"| {e['psnr_gain_over_coarse']:+.2f} ± {e['psnr_gain_over_coarse_ci95']:.2f} "
                    if "psnr_gain_over_coarse" in e
                    else "| "
                )  # fmt: skip
                + _pair(e, "grad_ratio")
                + _pair(e, "grad_w1")
                + "|"
                for e in entries
            ),
            "",
        ]
    lines += [
        f"![PSNR of each method minus Telea r3, per family]({prefix}inpaint-psnr-vs-telea.png)",
        "",
    ]
    if textured:
        lines += [
            "PSNR rewards a blur, so the texture of each fill is measured beside it, inside the "
            "hole eroded by 1 px: the gradient-energy ratio (median over images; a smooth fill "
            "scores about 0.03, the truth's own texture 1, noise above 1) and the gradient-W1 "
            "(lower is better; it catches blur and noise alike), both on a 3x3 Sobel of luma.",
            "",
            "![hole PSNR against gradient-energy ratio]"
            f"({prefix}inpaint-perception-distortion.png)",
            "",
        ]
    slow = payload.get("settings", {}).get("slow_scope")
    if slow and slow.get("methods"):
        lines += [
            f"{', '.join(slow['methods'])} take seconds per image, so they are measured only up "
            f"to {slow['max_size']} px on {', '.join(slow['families'])} masks (they still "
            "appear in the figure).",
            "",
        ]
    lines += [
        "All methods, per family (mean ± 95% interval over the images; the gradient ratio is a "
        "median; sorted by PSNR):",
        "",
        family_tables(summary),
    ]
    if payload.get("figure"):
        lines += ["", f"![side by side]({prefix}{payload['figure']})"]
    return "\n".join(lines)


DEFAULT_METHODS = (
    "telea-r3,telea-r9,ns-r3,ns-r9,biharmonic,fsr-fast,shiftmap,coarse-fill,coarse+shiftmap-hf,"
    "mean-colour"
)
# The last two are texture-heavy crops: regular (brick) and stochastic (grass).
FIGURE_CASES = (("astronaut", 512, "medium"), ("chelsea", 512, "thick"), ("brick", 512, "medium"),
                ("grass", 512, "thick"))  # fmt: skip
# Where the slow methods (shift-map) are measured: the families the texture targets name, at the
# sizes affordable on 2 cores (a 512 px thin mask alone costs shift-map over a minute).
SLOW_MAX_SIZE = 256
SLOW_FAMILIES = "medium,thick,box"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", default=None,
        help="zoo inpainter (repeatable; default: every inpainter in the zoo)",
    )  # fmt: skip
    parser.add_argument("--zoo", default=None)
    parser.add_argument("--images", default=",".join(eval_images.ALL_IMAGES))
    parser.add_argument(
        "--holdout",
        type=Path,
        help="evaluate on the validation hold-out of this training corpus instead "
        "(for decisions while developing; the card figures use the evaluation images)",
    )
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--families", default=",".join(MASK_KINDS))
    parser.add_argument("--methods", default=DEFAULT_METHODS, help="references (methods.py)")
    parser.add_argument(
        "--slow-max-size", type=int, default=SLOW_MAX_SIZE,
        help="measure the slow methods (shift-map and the reference built on it) only up to "
        "this short side; larger cases run them for the figure alone",
    )  # fmt: skip
    parser.add_argument(
        "--slow-families", default=SLOW_FAMILIES, help="... and only on these mask families"
    )
    parser.add_argument(
        "--detail", action="append", default=[],
        help="also run each model with texture.add_detail, options as k=v,k=v (repeatable)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write all rows and the summary here")
    parser.add_argument("--figure", type=Path, help="write the side-by-side figure here (PNG)")
    parser.add_argument("--update-card", action="store_true", help="store figures on the card")
    args = parser.parse_args(argv)

    from imgfix import zoo

    if args.model is None:
        args.model = [c["name"] for c in zoo.list_cards(args.zoo) if c.get("kind") == "inpainter"]
    runners = {m: methods.CLASSICAL[m] for m in args.methods.split(",") if m}
    slow_families = tuple(f for f in args.slow_families.split(",") if f)
    scope = {
        m: (lambda size, family: size <= args.slow_max_size and family in slow_families)
        for m in runners
        if m in methods.SLOW
    }  # fmt: skip
    if scope:
        print(f"{', '.join(scope)}: measured up to {args.slow_max_size} px on "
              f"{', '.join(slow_families)} masks only (slow)", file=sys.stderr)  # fmt: skip
    for name in args.model:
        runners[name] = methods.zoo_model(name, args.zoo)
        for spec in args.detail:
            options = methods.detail_options(spec)
            runners[f"{name}+detail({spec})"] = methods.zoo_model(name, args.zoo, options)
    if args.holdout:
        from imgfix.data.inpainting import list_images, load_photos, split_holdout

        holdout = split_holdout(list_images(args.holdout))[1]
        images = dict(zip((p.stem for p in holdout), load_photos(holdout, 0), strict=True))
    else:
        images = {name: eval_images.load(name) for name in args.images.split(",")}
    sizes = tuple(int(s) for s in args.sizes.split(","))
    families = tuple(args.families.split(","))
    wanted = [c for c in FIGURE_CASES if c[0] in images and c[1] in sizes and c[2] in families]
    if args.figure and not wanted:  # a small run: the first image at its largest size
        wanted = [(next(iter(images)), sizes[-1], families[0])]
    keep = {case: {} for case in wanted} if args.figure else None
    rows = evaluate(images, sizes, families, runners, seed=args.seed, keep=keep, scope=scope)
    summary = summarise(rows)
    print(markdown(summary))
    given = sys.argv[1:] if argv is None else argv
    command = ("python -m bench.inpaint_quality " + " ".join(given)).strip()
    payload = {
        "settings": {"images": list(images), "sizes": list(sizes), "families": list(families),
                     "methods": list(runners), "models": args.model, "mask_seed": args.seed,
                     "command": command,
                     "slow_scope": {"methods": list(scope), "max_size": args.slow_max_size,
                                    "families": list(slow_families)}},
        "rows": rows,
        "summary": summary,
        "areas": area_distribution(rows),
        "headline": {name: headline(rows, name) for name in args.model},
    }  # fmt: skip
    if args.figure:
        figure(keep, [*args.model, *(m for m in runners if m not in args.model)], args.figure)
        payload["figure"] = args.figure.name
    if args.json:
        from imgfix.io import atomic_write_text

        atomic_write_text(args.json, json.dumps(payload, indent=1))
    if args.update_card and not args.holdout:
        for name in args.model:
            figures = card_metrics(rows, name, "telea-r3", command, args.seed)
            zoo.update_metrics(name, {"evaluation": figures}, args.zoo)
            print(json.dumps({name: figures["families"]}, indent=1))
    return payload


if __name__ == "__main__":
    main()
