"""Train the text- or label-conditioned generators: the conditional VAE and the conditional GAN.

Both read a corpus (``data.captions``), condition each image on one random caption of its
concept per step, and export their generator (``[z, condition] -> image``) to the zoo with a
card that names the text encoder (and its sha256) the conditions came from. With
``condition="label"`` the condition is a one-hot concept vector instead, for corpora whose
labels are names a text encoder cannot tell apart ("class_0", "class_1"). ``condition="concept"``
trains the same one-hot model, and its card carries the caption table and the text encoder's
concept bank (``data.concepts``), so any caption or paraphrase of a concept reaches it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgfix.errors import InputError
from imgfix.training.checkpoints import Checkpointer, load_checkpoint, prepare_run, previous_card
from imgfix.training.devices import predict
from imgfix.training.loop import StopFlag, fit_with_checkpoints, run_summary
from imgfix.zoo import CONDITIONS

FAMILIES = ("vae", "cgan")


@dataclass
class Conditioned:
    """A corpus ready for training: images and the condition vectors of their captions."""

    images: np.ndarray  # (N, S, S, 3) uint8
    vectors: np.ndarray  # (T, D) float32, one per caption (or per concept for labels)
    start: np.ndarray  # (N,) first vector of each image's concept
    count: np.ndarray  # (N,) how many vectors that concept has
    concepts: list[str]
    data: dict
    encoder_card: dict | None
    condition: str = "text"
    table: dict[str, int] | None = None
    """``concept``: normalised caption -> concept index (``data.concepts.caption_table``)."""
    bank: np.ndarray | None = None
    """``concept``: each concept's unit centroid of its captions' text vectors."""


def condition_corpus(
    data: Path, image_size: int, condition: str, text_encoder: str, zoo: Path | None
) -> Conditioned:
    """Load the corpus and embed every caption with the frozen text encoder (or one-hot the
    concepts). Captions held out from the encoder's training stay held out here too."""
    from imgfix import zoo as zoo_mod
    from imgfix.data.captions import load_images, read_corpus
    from imgfix.training.prompt import split_texts

    if condition not in CONDITIONS:
        raise InputError(f"--condition {condition}: choose one of {', '.join(CONDITIONS)}")
    corpus = read_corpus(data)
    names = corpus.concept_names
    concept_of = corpus.concept_ids()
    images = load_images(corpus, image_size)
    info = {"path": str(data), "images": len(corpus), "concepts": len(names)}
    one_hot = np.eye(len(names), dtype=np.float32)
    if condition == "label":
        return Conditioned(images, one_hot, concept_of, np.ones_like(concept_of), names, info, None)
    from imgfix.models.text import tokenize

    encoder, card = zoo_mod.load_model(text_encoder, zoo, kind="text-encoder")

    def embed(texts: list[str]) -> np.ndarray:
        out = predict(encoder, tokenize(texts, card["tokenizer"]), 1024)
        return out.astype(np.float32)

    if condition == "concept":
        from imgfix.data import concepts
        from imgfix.training.prompt import concept_bank

        bank = concept_bank(encoder, card["tokenizer"], corpus.texts, names)
        info["captions"] = sum(len(corpus.texts[name]) for name in names)
        return Conditioned(
            images, one_hot, concept_of, np.ones_like(concept_of), names, info, card,
            condition, concepts.caption_table(names, corpus.texts), bank,
        )  # fmt: skip
    texts, _ = split_texts(corpus.texts)
    flat = [t for name in names for t in texts[name]]
    counts = np.array([len(texts[name]) for name in names])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    info["captions"] = len(flat)
    return Conditioned(
        images, embed(flat), starts[concept_of], counts[concept_of], names, info, card, condition
    )


def conditioned_dataset(cond: Conditioned, batch_size: int, seed: int):
    """``(image in [0, 1], condition)`` batches forever, a random caption per image per step."""
    import tensorflow as tf

    images = tf.constant(cond.images)
    vectors = tf.constant(cond.vectors)
    start, count = tf.constant(cond.start, tf.int64), tf.constant(cond.count, tf.int64)

    def pick(i):
        j = start[i] + tf.random.uniform((), 0, count[i], dtype=tf.int64)
        return tf.cast(images[i], tf.float32) / 255.0, vectors[j]

    tf.random.set_seed(seed)
    return (
        tf.data.Dataset.range(len(cond.images))
        .repeat()
        .shuffle(len(cond.images), seed=seed)
        .map(pick, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def sample_prompts(cond: Conditioned) -> list[str]:
    from imgfix.pipelines.generate import SHOWCASE_PROMPTS

    if cond.encoder_card is not None:
        return list(SHOWCASE_PROMPTS)
    step = max(len(cond.concepts) // 12, 1)
    return cond.concepts[::step][:12]


def _condition_vectors(cond: Conditioned, prompts: list[str], zoo: Path | None) -> np.ndarray:
    if cond.encoder_card is None:
        return cond.vectors[[cond.concepts.index(p) for p in prompts]]
    from imgfix import zoo as zoo_mod
    from imgfix.models.text import tokenize

    encoder, card = zoo_mod.load_model(cond.encoder_card["name"], zoo, kind="text-encoder")

    def embed(texts: list[str]) -> np.ndarray:
        return predict(encoder, tokenize(texts, card["tokenizer"]), 32)

    if cond.condition == "concept":
        from imgfix.data import concepts

        found = concepts.resolve(cond.table, cond.bank, prompts, embed)
        return cond.vectors[[hits[0][0] for hits in found]]
    return embed(prompts)


def sample_validation(generator_of, cond: Conditioned, zoo: Path | None, z_dim: int, seed: int):
    """A grid of the sample prompts (rows) x 6 fixed noise draws (columns) at each checkpoint."""
    prompts = sample_prompts(cond)
    vectors = _condition_vectors(cond, prompts, zoo)
    z = np.random.default_rng(seed).standard_normal((6, z_dim)).astype(np.float32)
    reps = np.repeat(vectors, 6, axis=0)
    noise = np.tile(z, (len(prompts), 1))

    def validate() -> tuple[dict, np.ndarray]:
        out = predict(generator_of(), [noise, reps], 128)
        side = out.shape[1]
        grid = out.reshape(len(prompts), 6, side, side, 3).transpose(0, 2, 1, 3, 4)
        grid = grid.reshape(len(prompts) * side, 6 * side, 3)
        return {}, (np.clip(grid, 0, 1) * 255 + 0.5).astype(np.uint8)

    return validate


def _pooling(discriminator) -> str:
    return "sum" if any(layer.name == "sum_pool" for layer in discriminator.layers) else "average"


D_CONDITIONS = ("learned", "text")
"""How the critic embeds a concept: a free vector per concept, or the concept's text centroid
through one shared map (``build_discriminator(condition_table=)``)."""


def _d_condition(discriminator) -> str:
    tables = any(layer.name == "cond_table" for layer in discriminator.layers)
    return "text" if tables else "learned"


def _rate(optimizer) -> float:
    from keras import ops

    return float(ops.convert_to_numpy(optimizer.learning_rate))


def _warmup(optimizer) -> int:
    """The steps a ``DelayedStart`` learning rate holds at 0 (0 for a constant rate)."""
    rate = optimizer.get_config()["learning_rate"]
    held = isinstance(rate, dict) and rate.get("class_name") == "DelayedStart"
    return int(rate["config"]["delay"]) if held else 0


def _set_rate(optimizer, lr: float) -> None:
    """A new learning rate for a resumed run, keeping a ``DelayedStart``'s delay."""
    from imgfix.models.cgan import DelayedStart

    delay = _warmup(optimizer)
    if delay:
        optimizer.learning_rate = DelayedStart(lr, delay)
    else:
        optimizer.learning_rate.assign(lr)


def build_trainer(
    family: str,
    image_size: int = 48,
    cond_dim: int = 128,
    *,
    z_dim: int = 64,
    filters: int = 32,
    lr: float | None = None,
    d_lr: float | None = None,
    kl_weight: float | None = None,
    warmup_steps: int = 2000,
    rec_weight: float = 10.0,
    init=None,
    seed: int = 0,
    d_pooling: str = "sum",
    r1_gamma: float = 0.01,
    augment: str = "translation",
    mismatch_weight: float = 0.5,
    d_warmup: int = 0,
    d_steps: int = 1,
    condition_table: np.ndarray | None = None,
):
    """The compiled training model a new ``train_generator`` run starts from: a
    ``ConditionalVAE``, or a ``ConditionalGAN`` (a VAE-GAN when ``init`` is a trained
    ``ConditionalVAE`` whose encoder and decoder it takes over). The benchmark times this."""
    import keras

    from imgfix.models.cgan import (
        ConditionalGAN,
        DelayedStart,
        build_discriminator,
        build_generator,
    )
    from imgfix.models.vae import ConditionalVAE, build_encoder

    if family == "vae":
        trainer = ConditionalVAE(
            build_encoder(image_size, z_dim, cond_dim, filters),
            build_generator(image_size, z_dim, cond_dim, filters),
            kl_weight=1.0 if kl_weight is None else kl_weight,
            warmup_steps=warmup_steps,
            seed=seed,
        )
        trainer.compile(optimizer=keras.optimizers.Adam(lr or 1e-3))
        return trainer
    if init is not None:
        generator, encoder = init.decoder, init.encoder
    else:
        generator, encoder = build_generator(image_size, z_dim, cond_dim, filters), None
    trainer = ConditionalGAN(
        generator,
        build_discriminator(
            image_size, cond_dim, filters, pooling=d_pooling, condition_table=condition_table
        ),
        encoder,
        # Two time-scale update rule: a spectrally normalised critic learns too slowly at the
        # generator's rate (at equal rates of 2e-4 it still rated generated images above real
        # ones after 900 steps).
        # --d-warmup: the generator holds still while a fresh critic learns alone.
        g_optimizer=keras.optimizers.Adam(
            DelayedStart(lr or 1e-4, d_warmup) if d_warmup else lr or 1e-4,
            beta_1=0.0,
            beta_2=0.99,
        ),
        d_optimizer=keras.optimizers.Adam(d_lr or 4e-4, beta_1=0.0, beta_2=0.99),
        rec_weight=rec_weight,
        kl_weight=0.01 if kl_weight is None else kl_weight,
        seed=seed,
        r1_gamma=r1_gamma,
        augment=augment,
        mismatch_weight=mismatch_weight,
        d_steps=d_steps,
    )
    trainer.compile()
    return trainer


def train_generator(
    family: str,
    data: Path,
    name: str,
    *,
    condition: str = "text",
    text_encoder: str = "prompt-encoder",
    image_size: int = 48,
    steps: int = 4000,
    batch_size: int = 64,
    lr: float | None = None,
    d_lr: float | None = None,
    z_dim: int = 64,
    filters: int = 32,
    kl_weight: float | None = None,
    warmup_steps: int = 2000,
    rec_weight: float = 10.0,
    init: str | None = None,
    resume: bool = False,
    logdir: Path | None = None,
    zoo: Path | None = None,
    seed: int = 0,
    command: str = "",
    quiet: bool = False,
    checkpoint_minutes: float = 5.0,
    checkpoints: int = 10,
    d_pooling: str = "sum",
    r1_gamma: float = 0.01,
    augment: str = "translation",
    mismatch_weight: float = 0.5,
    d_warmup: int = 0,
    d_steps: int | None = None,
    d_condition: str = "learned",
) -> dict:
    """Train (or resume) a conditional ``vae`` or ``cgan`` and export its generator as ``name``.
    ``d_pooling``, ``r1_gamma``, ``augment``, ``mismatch_weight``, ``d_warmup``, ``d_steps`` and
    ``d_condition`` set up the GAN's critic (``build_discriminator``, ``ConditionalGAN``,
    ``DelayedStart``, ``D_CONDITIONS``).
    The first three default to what kept it learning, the rest to the shipped recipe
    (docs/generation.md). ``lr``, ``d_lr`` and ``d_steps`` may change when a run resumes.
    ``checkpoints`` are spread evenly over ``steps``, besides one every ``checkpoint_minutes``.

    ``init`` is a VAE training checkpoint (``runs/<vae>/checkpoint.keras``) whose encoder and
    decoder start the GAN (VAE-GAN); without it the GAN is a plain matching-aware conditional
    GAN.
    """
    import keras

    from imgfix import zoo as zoo_mod
    from imgfix.models.vae import ConditionalVAE

    zoo_mod.check_name(name)
    if family not in FAMILIES:
        raise InputError(f"unknown generator family {family!r}")
    if image_size not in (24, 48, 96):
        raise InputError(f"--image-size {image_size}: choose 24, 48 or 96")
    if min(steps, batch_size) < 1:
        raise InputError("--steps and --batch-size must be at least 1")
    if d_condition not in D_CONDITIONS:
        raise InputError(f"--d-condition {d_condition}: choose one of {', '.join(D_CONDITIONS)}")
    if d_condition == "text" and condition != "concept":
        raise InputError("--d-condition text: needs --condition concept (the concepts' text)")
    if init and (family != "cgan" or not Path(init).is_file()):
        raise InputError(f"--init {init}: must be a VAE checkpoint file, for a GAN")
    logdir, checkpoint = prepare_run(name, logdir, resume)
    with StopFlag() as stop:
        cond = condition_corpus(Path(data), image_size, condition, text_encoder, zoo)
        cond_dim = cond.vectors.shape[1]
        if resume and checkpoint.exists():
            trainer = load_checkpoint(checkpoint)
            if family == "cgan":
                trainer.compile()  # its optimizers are in its config; fit still wants compile()
            # A resumed run may take new learning rates (to calm a run that grew unstable).
            if lr is not None:
                _set_rate(trainer.optimizer if family == "vae" else trainer.g_optimizer, lr)
            if d_lr is not None and family == "cgan":
                trainer.d_optimizer.learning_rate.assign(d_lr)
            if d_steps is not None and family == "cgan":
                trainer.d_steps = d_steps
        else:
            keras.utils.set_random_seed(seed)
            vae = None
            if init:
                vae = load_checkpoint(init)
                if not isinstance(vae, ConditionalVAE):
                    raise InputError(f"--init {init}: not a VAE checkpoint")
            trainer = build_trainer(
                family, image_size, cond_dim, z_dim=z_dim, filters=filters, lr=lr, d_lr=d_lr,
                kl_weight=kl_weight, warmup_steps=warmup_steps, rec_weight=rec_weight,
                init=vae, seed=seed, d_pooling=d_pooling, r1_gamma=r1_gamma, augment=augment,
                mismatch_weight=mismatch_weight, d_warmup=d_warmup, d_steps=d_steps or 1,
                condition_table=cond.bank if d_condition == "text" else None,
            )  # fmt: skip
        exported = trainer.decoder if family == "vae" else trainer.ema_generator
        z_dim = exported.input_shape[0][-1]
        dataset = conditioned_dataset(cond, batch_size, seed + trainer.step)
        if family == "vae":
            # The VAE's inputs are both tensors and it has no targets: x = (image, condition).
            dataset = dataset.map(lambda image, vector: ((image, vector),))
        old_card = previous_card(name, zoo, resume)
        previous_seconds = old_card.get("training", {}).get("seconds", 0.0)
        started, start_step = time.time(), trainer.step

        def export(step: int, figures: dict) -> None:
            card = {
                "name": name,
                "kind": "generator",
                "family": family,
                "description": (
                    "Conditional VAE decoder (FiLM-conditioned), sampled from the prior"
                    if family == "vae"
                    else "Conditional GAN generator (FiLM, projection + matching-aware "
                    "discriminator, hinge, DiffAugment, EMA"
                    + (", VAE-GAN reconstruction path)" if trainer.encoder else ")")
                ),
                "condition": condition,
                "image_size": image_size,
                "z_dim": z_dim,
                "data": cond.data,
                "concepts": cond.concepts,
                "training_command": command,
                "steps": step,
                "training": {
                    "batch_size": batch_size,
                    "seconds": round(previous_seconds + time.time() - started, 1),
                    **(
                        {
                            "kl_weight": trainer.kl_weight,
                            "kl_warmup_steps": trainer.warmup_steps,
                            "lr": _rate(trainer.optimizer),
                        }
                        if family == "vae"
                        else {
                            "rec_weight": trainer.rec_weight if trainer.encoder else 0.0,
                            "kl_weight": trainer.kl_weight,
                            "lr": _rate(trainer.g_optimizer),
                            "d_lr": _rate(trainer.d_optimizer),
                            "init": str(init) if init else old_card.get("training", {}).get("init"),
                            "d_pooling": _pooling(trainer.discriminator),
                            "r1_gamma": trainer.r1_gamma,
                            "mismatch_weight": trainer.mismatch_weight,
                            "d_warmup": _warmup(trainer.g_optimizer),
                            "d_steps": trainer.d_steps,
                            "d_condition": _d_condition(trainer.discriminator),
                            "augment": trainer.augment,
                        }
                    ),
                },
                "metrics": {**old_card.get("metrics", {})},
                # A default temperature chosen by measurement stays until changed by hand.
                "sampling": old_card.get("sampling", {"temperature": 1.0}),
            }
            if cond.condition == "concept":
                from imgfix.data import concepts

                card["concept_lookup"] = concepts.pack(cond.table, cond.bank)
            if cond.encoder_card is not None:
                card["text_encoder"] = {
                    "name": cond.encoder_card["name"],
                    "sha256": cond.encoder_card["sha256"],
                    "tokenizer": cond.encoder_card["tokenizer"],
                }
            zoo_mod.save_model(exported, name, card, zoo)

        validate = sample_validation(lambda: exported, cond, zoo, z_dim, seed)
        entry = fit_with_checkpoints(
            trainer,
            dataset,
            steps,
            Checkpointer(trainer, logdir, validate, export),
            every_steps=max(steps // checkpoints, 1),
            minutes=checkpoint_minutes,
            stop=stop,
            quiet=quiet,
        )
    summary = run_summary(name, trainer, start_step, started, stop, checkpoint, entry)
    return {"family": family, **summary}
