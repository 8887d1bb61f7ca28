"""How well the prompt encoder's condition vectors separate the emoji concepts (issue 12, part 2).

    python -m bench.conditions [--zoo DIR] [--data data/emoji] [--encoder prompt-encoder]

A text-conditioned generator sees a concept only through the unit vector that the prompt encoder
makes of its name; with about two images per concept, it can tell concepts apart no better than
those vectors do. Measured on the LiteRT text tower, with no generator involved:

- **name separation:** for each English concept name, the cosine similarity of its vector to the
  nearest *other* concept's name (1 = the two concepts get the same condition);
- **prompt to concept:** every caption of the corpus (the names in 14 languages, trained on or
  held out) mapped to the nearest English name; top-1 and top-5 rates, the held-out ones apart;
- **caption to concept** (``--condition concept``, ``data.concepts``): the same captions through
  the caption table and the concept bank, both built from the captions *not* held out, so a
  held-out caption reaches its concept only through an exact twin or the text encoder;
- **probes:** the nearest concepts of a few multilingual and paraphrased prompts.
"""

from __future__ import annotations

import argparse
import json
import zlib
from pathlib import Path

import numpy as np

from imgfix import runtime
from imgfix.data import concepts
from imgfix.data.captions import read_corpus
from imgfix.data.tokens import tokenize

PROBES = ("cat", "猫", "Katze", "a dog", "voiture", "pizza", "Herz", "rocket", "árbol")
HOLDOUT_EVERY = 10  # imgfix.training.prompt.split_texts holds out the same captions


def _embed(encoder, texts: list[str], kind: str) -> np.ndarray:
    out = runtime.batched(encoder, 1024, tokenize(texts, kind))
    return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-6)


def measure(encoder, card: dict, data: Path) -> dict:
    corpus = read_corpus(data)
    names = corpus.concept_names
    kind = card.get("tokenizer", "ngram")
    bank = _embed(encoder, names, kind)
    sims = bank @ bank.T
    np.fill_diagonal(sims, -1.0)
    nearest_other = sims.max(axis=1)
    captions = [(t, i) for i, n in enumerate(names) for t in corpus.texts[n] if t != n]
    held = np.array([zlib.crc32(t.encode()) % HOLDOUT_EVERY == 0 for t, _ in captions])
    emb = _embed(encoder, [t for t, _ in captions], kind)
    truth = np.array([i for _, i in captions])
    top5 = np.argsort(-(emb @ bank.T), axis=1)[:, :5]
    hit1, hit5 = top5[:, 0] == truth, (top5 == truth[:, None]).any(axis=1)
    # The concept route, its table and bank from the captions that are not held out.
    every = [(t, i) for i, n in enumerate(names) for t in corpus.texts[n]]
    kept = [(t, i) for t, i in every if t == names[i] or zlib.crc32(t.encode()) % HOLDOUT_EVERY]
    table = concepts.caption_table(
        names, {n: [t for t, i in kept if i == k] for k, n in enumerate(names)}
    )
    kept_emb = _embed(encoder, [t for t, _ in kept], kind)
    bank_c = concepts.centroids(kept_emb, np.array([i for _, i in kept]), len(names))
    vectors = dict(zip([t for t, _ in captions], emb, strict=True))
    routed = concepts.resolve(
        table, bank_c, [t for t, _ in captions], lambda ts: np.stack([vectors[t] for t in ts]), 5
    )
    c1 = np.array([r[0][0] == i for r, (_, i) in zip(routed, captions, strict=True)])
    c5 = np.array([i in [j for j, _ in r] for r, (_, i) in zip(routed, captions, strict=True)])
    exact = np.array([r[0][1] == 1.0 for r in routed])
    probes = {}
    for prompt in PROBES:
        s = bank @ _embed(encoder, [prompt], kind)[0]
        probes[prompt] = [(names[j], round(float(s[j]), 3)) for j in np.argsort(-s)[:3]]
    full = concepts.caption_table(names, corpus.texts)
    full_bank = concepts.centroids(_embed(encoder, [t for t, _ in every], kind),
                                   np.array([i for _, i in every]), len(names))  # fmt: skip
    routed = concepts.resolve(full, full_bank, list(PROBES), lambda ts: _embed(encoder, ts, kind))
    probes_concept = {p: [(names[j], c) for j, c in r] for p, r in zip(PROBES, routed, strict=True)}
    return {
        "concepts": len(names),
        "name_nearest_other_cosine": {
            "median": round(float(np.median(nearest_other)), 4),
            "p10": round(float(np.percentile(nearest_other, 10)), 4),
            "p90": round(float(np.percentile(nearest_other, 90)), 4),
            "share_above_0.9": round(float(np.mean(nearest_other > 0.9)), 4),
            "share_above_0.95": round(float(np.mean(nearest_other > 0.95)), 4),
        },
        "caption_to_name": {
            "captions": len(captions),
            "trained_top1": round(float(hit1[~held].mean()), 4),
            "trained_top5": round(float(hit5[~held].mean()), 4),
            "heldout": int(held.sum()),
            "heldout_top1": round(float(hit1[held].mean()), 4),
            "heldout_top5": round(float(hit5[held].mean()), 4),
        },
        "caption_to_concept": {
            "trained_top1": round(float(c1[~held].mean()), 4),
            "heldout_top1": round(float(c1[held].mean()), 4),
            "heldout_top5": round(float(c5[held].mean()), 4),
            "heldout_table_hits": round(float(exact[held].mean()), 4),
        },
        "probes": probes,
        "probes_concept_route": probes_concept,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default=None)
    parser.add_argument("--data", type=Path, default=Path("data/emoji"))
    parser.add_argument("--encoder", default="prompt-encoder")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    encoder, card = runtime.load(args.encoder, args.zoo, "text-encoder")
    result = measure(encoder, card, args.data)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
