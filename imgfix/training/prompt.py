"""Train the prompt encoder: a text tower and an image tower, contrastively (CLIP-style), on a
text-image corpus; the text tower goes to the zoo as a ``text-encoder`` model.

Each batch holds ``batch_size`` distinct concepts, one image and one random caption of each, so
no row has a hidden second positive. About one caption in ten (never a concept's own name) is
held out to measure how the encoder handles wording it has not seen.
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import numpy as np

from imgfix.errors import ImgfixError, InputError
from imgfix.training.checkpoints import Checkpointer, load_checkpoint, prepare_run, previous_card
from imgfix.training.devices import mirrored, predict
from imgfix.training.loop import StopFlag, fit_with_checkpoints, run_summary

HOLDOUT_EVERY = 10


def split_texts(texts: dict[str, list[str]]) -> tuple[dict, dict]:
    """Per concept: the captions to train on and the held-out ones (stable across runs)."""
    train, held = {}, {}
    for concept, items in texts.items():
        keep = [t for t in items if t == concept or zlib.crc32(t.encode()) % HOLDOUT_EVERY]
        train[concept] = keep
        held[concept] = [t for t in items if t not in keep]
    return train, held


def _typo(text: str, rng: np.random.Generator) -> str:
    if len(text) < 4:
        return text
    i = int(rng.integers(1, len(text) - 1))
    return text[:i] + text[i + 1 :]


def retrieval(encoder, kind: str, queries: list[str], truth: np.ndarray, bank: np.ndarray) -> dict:
    """Top-1 / top-5 rate at which each query's nearest rows of ``bank`` include its truth
    (None when there are no queries, e.g. a class-folder corpus holds no caption out)."""
    from imgfix.models.text import tokenize

    if not queries:
        return {"top1": None, "top5": None}
    emb = predict(encoder, tokenize(queries, kind), 512)
    order = np.argsort(-(emb @ bank.T), axis=1)[:, :5]
    return {
        "top1": round(float(np.mean(order[:, 0] == truth)), 4),
        "top5": round(float(np.mean((order == truth[:, None]).any(axis=1))), 4),
    }


def concept_bank(encoder, kind: str, texts: dict[str, list[str]], names: list[str]) -> np.ndarray:
    """Unit mean embedding of each concept's captions, in ``names`` order."""
    from imgfix.data.concepts import centroids
    from imgfix.models.text import tokenize

    flat = [t for name in names for t in texts[name]]
    owner = np.repeat(np.arange(len(names)), [len(texts[name]) for name in names])
    emb = predict(encoder, tokenize(flat, kind), 1024)
    return centroids(emb, owner, len(names))


def build_prompt_trainer(
    kind: str = "ngram", dim: int = 128, image_size: int = 48, lr: float = 1e-3
):
    """The compiled CLIP-style model (text tower + image tower) a new ``train_text_encoder``
    run starts from. The benchmark times this."""
    import keras

    from imgfix.models.text import build_contrastive, build_image_encoder, build_text_encoder

    model = build_contrastive(build_text_encoder(kind, dim), build_image_encoder(image_size, dim))
    model.compile(
        optimizer=keras.optimizers.AdamW(lr, weight_decay=1e-4),
        loss=[
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ],
    )
    return model


def train_text_encoder(
    data: Path,
    name: str,
    *,
    kind: str = "ngram",
    dim: int = 128,
    image_size: int = 48,
    steps: int = 3000,
    batch_size: int = 256,
    lr: float = 1e-3,
    resume: bool = False,
    logdir: Path | None = None,
    zoo: Path | None = None,
    seed: int = 0,
    command: str = "",
    quiet: bool = False,
    checkpoint_minutes: float = 5.0,
) -> dict:
    """Train (or resume) the prompt encoder and export its text tower to the zoo as ``name``."""
    import keras
    import tensorflow as tf

    from imgfix import zoo as zoo_mod
    from imgfix.data.captions import load_images, read_corpus
    from imgfix.models.text import (
        TEXT_KINDS,
        compact,
        tokenize,
    )

    zoo_mod.check_name(name)
    if kind not in TEXT_KINDS:
        raise InputError(f"--kind {kind}: choose one of {', '.join(TEXT_KINDS)}")
    if mirrored() > 1:  # each replica would see only its own part of the batch as negatives
        raise ImgfixError(
            "--devices: the prompt encoder's contrastive loss needs the whole batch in one "
            "place; on TensorFlow it trains on one device (--backend jax splits it)"
        )
    logdir, checkpoint = prepare_run(name, logdir, resume)
    with StopFlag() as stop:
        corpus = read_corpus(data)
        names = corpus.concept_names
        if batch_size > len(names):
            raise InputError(
                f"--batch-size {batch_size}: the corpus has only {len(names)} concepts"
            )
        images = load_images(corpus, image_size)
        concept_of = corpus.concept_ids()
        files_of = [np.flatnonzero(concept_of == c) for c in range(len(names))]
        # Keywords ("pet", "face") train the encoder too, as looser captions of a concept.
        everything = {n: corpus.texts[n] + corpus.keywords.get(n, []) for n in names}
        train_texts, held_texts = split_texts(everything)
        text_ids = [tokenize(train_texts[n], kind) for n in names]

        if resume and checkpoint.exists():
            model = load_checkpoint(checkpoint)
        else:
            keras.utils.set_random_seed(seed)
            model = build_prompt_trainer(kind, dim, image_size, lr)
        text_encoder = model.get_layer(f"text_encoder_{kind}")
        image_encoder = model.get_layer("image_encoder")
        rng = np.random.default_rng(seed + int(model.optimizer.iterations))
        targets = np.arange(batch_size, dtype=np.int32)

        def batches():
            while True:
                chosen = rng.choice(len(names), batch_size, replace=False)
                rows = [files_of[c][rng.integers(len(files_of[c]))] for c in chosen]
                ids = np.stack([text_ids[c][rng.integers(len(text_ids[c]))] for c in chosen])
                yield (ids, images[rows].astype(np.float32) / 255.0), (targets, targets)

        width = text_ids[0].shape[1]
        spec = (
            (
                tf.TensorSpec((batch_size, width), tf.int32),
                tf.TensorSpec((batch_size, image_size, image_size, 3), tf.float32),
            ),
            (tf.TensorSpec((batch_size,), tf.int32), tf.TensorSpec((batch_size,), tf.int32)),
        )
        dataset = tf.data.Dataset.from_generator(batches, output_signature=spec).prefetch(2)

        held = [(t, i) for i, n in enumerate(names) for t in held_texts[n]]
        typo_rng = np.random.default_rng(1234)
        typos = [_typo(n, typo_rng) for n in names]

        def validate() -> tuple[dict, None]:
            text_bank = concept_bank(text_encoder, kind, train_texts, names)
            image_emb = predict(image_encoder, images.astype(np.float32) / 255.0, 256)
            image_bank = np.zeros_like(text_bank)
            np.add.at(image_bank, concept_of, image_emb)
            image_bank /= np.linalg.norm(image_bank, axis=1, keepdims=True).clip(1e-6)
            queries, truth = [t for t, _ in held], np.array([i for _, i in held])
            figures = {
                "heldout_text_to_concept": retrieval(text_encoder, kind, queries, truth, text_bank),
                "heldout_text_to_image": retrieval(text_encoder, kind, queries, truth, image_bank),
                "typo_name_to_concept": retrieval(
                    text_encoder, kind, typos, np.arange(len(names)), text_bank
                ),
                "heldout_captions": len(held),
            }
            return figures, None

        old_card = previous_card(name, zoo, resume)
        previous_seconds = old_card.get("training", {}).get("seconds", 0.0)
        started, start_step = time.time(), int(model.optimizer.iterations)

        def export(step: int, figures: dict) -> None:
            card = {
                "name": name,
                "kind": "text-encoder",
                "concepts": names,
                "description": f"Prompt encoder: {kind} text tower of a CLIP-style text-image "
                "model; prompts map to unit vectors the generators condition on",
                "tokenizer": kind,
                "dim": dim,
                "image_size": image_size,
                "data": {
                    "path": str(data),
                    "images": len(corpus),
                    "concepts": len(names),
                    "captions": sum(len(v) for v in everything.values()),
                    "layout": corpus.layout,
                },
                "training_command": command,
                "steps": step,
                "training": {
                    "batch_size": batch_size,
                    "lr": lr,
                    "seconds": round(previous_seconds + time.time() - started, 1),
                },
                "metrics": {**old_card.get("metrics", {}), "validation": figures},
            }
            zoo_mod.save_model(compact(text_encoder), name, card, zoo)

        entry = fit_with_checkpoints(
            model,
            dataset,
            steps,
            Checkpointer(model, logdir, validate, export),
            every_steps=max(steps // 4, 1),
            minutes=checkpoint_minutes,
            stop=stop,
            quiet=quiet,
        )
    return run_summary(name, model, start_step, started, stop, checkpoint, entry)
