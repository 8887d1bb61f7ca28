"""LiteRT against TensorFlow for every shipped model: how far apart their outputs are.

    python -m bench.runtime_parity [--json PATH] [--quick]

``imgfix inpaint`` and ``generate`` run a model's ``.tflite`` on LiteRT; TensorFlow runs its
``.keras`` (on a GPU, or with ``--runtime tensorflow``). The two must give the same pictures:
at most ``LIMIT`` (1/255) apart per pixel value.

- inpainters: ``Inpainter.fill`` on both runtimes, the evaluation images at 256 and 512 px with
  every mask family (the same fixed-seed masks as ``bench.inpaint_quality``);
- generators: the generator network on both runtimes with the same noise, at temperature 1 and
  at the card's, conditioned on each runtime's own prompt embedding, for the English name of
  every concept: the whole path from prompt to pixels;
- text encoders: the cosine similarity of the two embeddings of every concept name;
- evaluators: the largest difference of class probabilities, and whether the top class agrees,
  on the evaluation images' crops.

``tests/test_runtime_parity.py`` runs the same functions on a subset and asserts the limit.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench import eval_images
from imgfix import io, masks, zoo
from imgfix.runtime import KerasModel, LiteRTModel, Settings

LIMIT = 1 / 255
SIZES = (256, 512)
FAMILIES = ("thin", "medium", "thick", "box")
RUNTIMES = {rt: Settings(device="cpu", runtime=rt) for rt in ("litert", "tensorflow")}


def inpainter(name: str, images: tuple[str, ...], sizes: tuple[int, ...],
              families: tuple[str, ...], folder: Path | None = None) -> dict:  # fmt: skip
    """Largest and mean per-pixel difference of the two runtimes' fills, in the hole."""
    from imgfix.pipelines.inpaint import load_inpainter

    fillers = {rt: load_inpainter(name, folder, s) for rt, s in RUNTIMES.items()}
    worst, means, outside = 0.0, [], 0.0
    for image in images:
        for size in sizes:
            rgb = eval_images.at_size(eval_images.load(image), size)
            for family in families:
                hole = masks.random_mask(*rgb.shape[:2], family, np.random.default_rng(0))
                lite, tf = (fillers[rt].fill(rgb, hole) for rt in RUNTIMES)
                diff = np.abs(lite - tf)
                worst = max(worst, float(diff[hole].max()))
                means.append(float(diff[hole].mean()))
                outside = max(outside, float(diff[~hole].max()))
    return {"cases": len(means), "max_abs": worst, "mean_abs": float(np.mean(means)),
            "max_abs_outside_hole": outside}  # fmt: skip


def generator(name: str, prompts: list[str] | None = None, folder: Path | None = None) -> dict:
    """Largest and mean per-pixel difference with the same noise, prompt to pixels."""
    from imgfix.pipelines.generate import load_generator

    gens = {rt: load_generator(name, folder, s) for rt, s in RUNTIMES.items()}
    tf = gens["tensorflow"]
    prompts = prompts or tf.concepts
    rng = np.random.default_rng(0)
    rows = []
    for temperature in sorted({1.0, float(tf.card.get("sampling", {}).get("temperature", 1))}):
        z = (rng.standard_normal((len(prompts), tf.z_dim)) * temperature).astype(np.float32)
        out = {rt: np.clip(g.network(z, g.conditions(prompts)), 0, 1) for rt, g in gens.items()}
        diff = np.abs(out["litert"] - out["tensorflow"])
        rows.append({"temperature": temperature, "images": len(prompts),
                     "max_abs": float(diff.max()), "mean_abs": float(diff.mean())})  # fmt: skip
    return {"runs": rows, "max_abs": max(r["max_abs"] for r in rows)}


def text_encoder(name: str, texts: list[str], folder: Path | None = None) -> dict:
    """The smallest cosine similarity between the two runtimes' embeddings of ``texts``."""
    from imgfix.data.tokens import tokenize

    card = zoo.read_card(name, folder)
    ids = tokenize(texts, card.get("tokenizer", "ngram"))
    keras_model, _ = zoo.load_model(name, folder)
    lite = LiteRTModel(zoo.runtime_file(name, folder), 2)(ids=ids)
    tf = KerasModel(keras_model)(ids=ids)
    return {"texts": len(texts), "min_cosine": float(np.min(np.sum(lite * tf, axis=1))),
            "max_abs": float(np.abs(lite - tf).max())}  # fmt: skip


def evaluator(name: str, images: tuple[str, ...], folder: Path | None = None) -> dict:
    """Class probabilities on crops of the evaluation images at the evaluator's size."""
    card = zoo.read_card(name, folder)
    size = int(card["image_size"])
    batch = np.stack([eval_images.at_size(eval_images.load(i), size)[:size, :size] for i in images])
    batch = batch.astype(np.float32) / 255.0
    keras_model, _ = zoo.load_model(name, folder)
    lite = LiteRTModel(zoo.runtime_file(name, folder), 2)(image=batch)
    tf = KerasModel(keras_model)(image=batch)
    return {"images": len(images), "max_abs": float(np.abs(lite - tf).max()),
            "top1_agreement": float(np.mean(lite.argmax(1) == tf.argmax(1)))}  # fmt: skip


def measure(quick: bool = False, folder: Path | None = None) -> dict:
    """Every model in the zoo, by kind."""
    from imgfix.runtime import setup

    setup("cpu", 0)
    images = eval_images.CARD_IMAGES[:2] if quick else eval_images.ALL_IMAGES
    sizes, families = (SIZES[:1], FAMILIES[:1]) if quick else (SIZES, FAMILIES)
    results: dict[str, Any] = {}
    for card in zoo.list_cards(folder):
        name, kind = card["name"], card.get("kind")
        if kind == "inpainter":
            results[name] = inpainter(name, images, sizes, families, folder)
        elif kind == "generator":
            prompts = card.get("concepts", [])[: 64 if quick else None]
            results[name] = generator(name, prompts, folder)
        elif kind == "text-encoder":
            generators = [c for c in zoo.list_cards(folder) if c.get("kind") == "generator"]
            texts = sorted({t for c in generators for t in c.get("concepts", [])}) or ["cat"]
            results[name] = text_encoder(name, texts[: 64 if quick else None], folder)
        elif kind == "evaluator":
            results[name] = evaluator(name, images, folder)
        if name in results:
            results[name] = {"kind": kind, "weights": card["runtime"]["weights"], **results[name]}
    return results


def markdown(results: dict) -> str:
    lines = [
        f"The largest difference between LiteRT and TensorFlow per pixel value, for each "
        f"shipped model; the limit is 1/255 ({LIMIT:.5f}).",
        "",
        "| model | kind | LiteRT weights | compared on | largest difference | in 1/255 | "
        "within the limit |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results.get("models", {}).items():
        if r["kind"] == "inpainter":
            what = f"{r['cases']} fills (images x sizes x mask families), hole pixels"
        elif r["kind"] == "generator":
            what = "; ".join(f"{x['images']} prompts at T {x['temperature']:g}" for x in r["runs"])
            what += ", same noise"
        elif r["kind"] == "text-encoder":
            what = f"{r['texts']} concept names (min cosine {r['min_cosine']:.6f})"
        else:
            what = f"{r['images']} images, class probabilities (top-1 agrees: "
            what += f"{r['top1_agreement']:.0%})"
        pixels = r["kind"] in ("inpainter", "generator")
        level = f"{r['max_abs'] * 255:.3f}" if pixels else "-"
        ok = ("yes" if r["max_abs"] <= LIMIT else "no") if pixels else "-"
        lines.append(f"| {name} | {r['kind']} | {r['weights']} | {what} | {r['max_abs']:.2e} | "
                     f"{level} | {ok} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def headline(results: dict) -> list[str]:
    pixels = {n: r for n, r in results.get("models", {}).items()
              if r["kind"] in ("inpainter", "generator")}  # fmt: skip
    if not pixels:
        return []
    worst = max(pixels.items(), key=lambda item: item[1]["max_abs"])
    return [
        f"- **LiteRT against TensorFlow:** every shipped inpainter and generator within "
        f"{worst[1]['max_abs'] * 255:.2f}/255 per pixel (largest: {worst[0]})"
        if all(r["max_abs"] <= LIMIT for r in pixels.values())
        else f"- **LiteRT against TensorFlow:** {worst[0]} differs by "
        f"{worst[1]['max_abs'] * 255:.2f}/255, over the 1/255 limit"
    ]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--zoo", type=Path, help="model zoo folder (default: imgfix's)")
    parser.add_argument("--quick", action="store_true", help="2 images, 64 prompts")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    results = {
        "settings": {
            "command": shlex.join(["python", "-m", "bench.runtime_parity", *argv]),
            "quick": args.quick,
            "limit": LIMIT,
        },  # fmt: skip
        "models": measure(args.quick, args.zoo),
    }
    text = json.dumps(results, indent=1, ensure_ascii=False)
    print(text)
    if args.json:
        io.atomic_write_text(args.json, text + "\n")
    return results


if __name__ == "__main__":
    main()
