"""Inpainting quality on the held-out evaluation images, every method on the same masks.

    python -m bench.inpaint_quality --model photo-inpainter --update-card

For each image, short side (256, 512) and mask family (thin, medium, thick: LaMa's evaluation
families drawn by ``imgfix.masks`` with a fixed seed; box: a centred box of 25% of the area),
every method fills the same hole. Metrics: PSNR and SSIM over the whole image, L1 and PSNR
over the hole. Each method's raw output is checked to be bit-exact outside the hole.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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
) -> list[dict]:
    """One row per (method, image, size, family) with its metrics and run time; ``images``
    maps names to RGB ``uint8`` arrays at their native size."""
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
                for method, run in runners.items():
                    start = time.perf_counter()
                    out = run(masked, hole)
                    seconds = time.perf_counter() - start
                    if not np.array_equal(out[~hole], truth[~hole]):
                        raise AssertionError(f"{method} changed pixels outside the hole on {name}")
                    test = out.astype(np.float64) / 255.0
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
                            "seconds": seconds,
                        }
                    )
    return rows


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of a 95% t-interval over images."""
    v = np.asarray(values, np.float64)
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
        out.append(entry)
    return out


def markdown(summary: list[dict]) -> str:
    lines = [
        "| family | size | method | hole area | PSNR | SSIM | hole PSNR | hole L1 | s/image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['family']} | {s['size']} | {s['method']} | {s['hole_area']:.1%} "
            f"| {s['psnr']:.2f} ± {s['psnr_ci95']:.2f} | {s['ssim']:.4f} ± {s['ssim_ci95']:.4f} "
            f"| {s['hole_psnr']:.2f} ± {s['hole_psnr_ci95']:.2f} | {s['hole_l1']:.4f} "
            f"| {s['seconds']:.3f} |"
        )
    return "\n".join(lines)


def card_metrics(rows: list[dict], model: str, reference: str, command: str, seed: int) -> dict:
    """The figures a model card carries: per family, the model next to the reference."""
    summary = summarise(rows, by=("family", "method"))
    families = {}
    # The model's own weightless first stage, when measured, shows what training added.
    shown = (model, reference, "coarse-fill")
    for s in summary:
        if s["method"] in shown:
            tag = "model" if s["method"] == model else s["method"]
            fam = families.setdefault(s["family"], {"hole_area": round(s["hole_area"], 4)})
            for metric in ("psnr", "ssim", "hole_psnr"):
                fam[f"{tag}_{metric}"] = round(s[metric], 4 if metric == "ssim" else 3)
    for fam in families.values():
        fam["psnr_gain_db"] = round(fam["model_psnr"] - fam[f"{reference}_psnr"], 3)
    return {
        "images": sorted({r["image"] for r in rows}),
        "sizes": sorted({r["size"] for r in rows}),
        "mask_seed": seed,
        "reference": f"OpenCV cv2.inpaint {reference}",
        "command": command,
        "families": families,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="zoo inpainter (repeatable)")
    parser.add_argument("--zoo", default=None)
    parser.add_argument("--images", default=",".join(eval_images.CARD_IMAGES))
    parser.add_argument(
        "--holdout",
        type=Path,
        help="evaluate on the validation hold-out of this training corpus instead "
        "(for decisions while developing; the card figures use the evaluation images)",
    )
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--families", default=",".join(MASK_KINDS))
    parser.add_argument("--methods", default="telea-r3,ns-r3", help="references (methods.py)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write all rows and the summary here")
    parser.add_argument("--update-card", action="store_true", help="store figures on the card")
    args = parser.parse_args(argv)

    runners = {m: methods.CLASSICAL[m] for m in args.methods.split(",") if m}
    for name in args.model:
        runners[name] = methods.zoo_model(name, args.zoo)
    if args.holdout:
        from imgfix.data.inpainting import list_images, load_photos, split_holdout

        holdout = split_holdout(list_images(args.holdout))[1]
        images = dict(zip((p.stem for p in holdout), load_photos(holdout, 0), strict=True))
    else:
        images = {name: eval_images.load(name) for name in args.images.split(",")}
    rows = evaluate(
        images,
        tuple(int(s) for s in args.sizes.split(",")),
        tuple(args.families.split(",")),
        runners,
        seed=args.seed,
    )
    summary = summarise(rows)
    print(markdown(summary))
    if args.json:
        from imgfix.io import atomic_write_text

        atomic_write_text(args.json, json.dumps({"rows": rows, "summary": summary}, indent=1))
    if args.update_card and not args.holdout:
        from imgfix import zoo

        given = sys.argv[1:] if argv is None else argv
        command = "python -m bench.inpaint_quality " + " ".join(given)
        for name in args.model:
            figures = card_metrics(rows, name, "telea-r3", command.strip(), args.seed)
            zoo.update_metrics(name, {"evaluation": figures}, args.zoo)
            print(json.dumps({name: figures["families"]}, indent=1))


if __name__ == "__main__":
    main()
