"""Text-to-image quality: does a generator draw what the prompt names, and do its images look
like the corpus? Measured with an evaluator network trained on real corpus images only.

    python -m bench.generation_quality --models emoji-vae,emoji-cgan --update-card

The evaluator (``emoji-evaluator``, trained here on first use or with ``--train-evaluator``) is
a small CNN classifying 48 px images into every concept of the corpus, both fonts, under
augmentation (shift, zoom, rotation, colour jitter, blur, noise). It never sees a generated
image. For each generator:

* prompt accuracy: k images (fixed noise) per concept, prompted with the concept's name; the
  top-1 and top-5 rate at which the evaluator names that concept. Scoring the same images
  against shuffled concepts gives the floor (chance, 1/concepts), showing the metric can fail.
* FD: the Fréchet distance between Gaussians fitted to the evaluator's pooled features of a
  fixed random sample of real images and of generated images of the same concepts (same count
  on both sides; FD is biased upwards at small counts, so only figures with the same count
  compare).

The ceiling rows measure real images the same way: the evaluator's accuracy on each font (its
own training images, so an upper bound rather than a generalisation figure), the FD between
real OpenMoji and real Noto drawings of the same concepts (two styles a human reads as the
same emoji), and the FD between the real sample and a disjoint real sample (what a generator
indistinguishable from the corpus would score: the sampling noise of FD at this count).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

EVALUATOR = "emoji-evaluator"
DEFAULT_DATA = Path(__file__).resolve().parent.parent / "data" / "emoji"
IMAGE_SIZE = 48
FEATURES = "features"
"""Name of the evaluator's pooled-feature layer: the space FD is measured in."""


# ---------------------------------------------------------------------------- the evaluator


def _shown(path: Path) -> str:
    """A path for cards: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(DEFAULT_DATA.parent.parent))
    except ValueError:
        return str(path)


def build_evaluator(num_classes: int, image_size: int = IMAGE_SIZE, width: int = 32):
    """A small classifier: images in [0, 1] ``(B, S, S, 3)`` -> ``num_classes`` logits.

    A strided stem (``width`` filters) and five depthwise-separable blocks (2x, 3x, 6x, 8x, 8x
    ``width`` filters; the first and third with stride 2, so most work happens at 12 and 6 px,
    which is what keeps it fast on a CPU), global average pooling to ``8 * width`` features
    (layer ``"features"``: the space FD is measured in), dropout and a linear classifier. At
    48 px, ``width=32`` and 1652 classes: 256 features, 7.2 M multiply-adds per image, 0.58 M
    weights (a 2.4 MB file).
    """
    import keras
    from keras import layers

    def unit(x, filters, stride, name):
        x = layers.DepthwiseConv2D(3, stride, "same", use_bias=False, name=f"{name}_dw")(x)
        x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
        x = layers.ReLU(name=f"{name}_dw_relu")(x)
        x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
        x = layers.BatchNormalization(name=f"{name}_pw_bn")(x)
        return layers.ReLU(name=f"{name}_pw_relu")(x)

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Conv2D(width, 3, 2, "same", use_bias=False, name="stem")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    plan = ((2, 2), (3, 1), (6, 2), (8, 1), (8, 1))
    for i, (mult, stride) in enumerate(plan):
        x = unit(x, width * mult, stride, f"block{i + 1}")
    features = layers.GlobalAveragePooling2D(name=FEATURES)(x)
    x = layers.Dropout(0.1, name="dropout")(features)
    logits = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, logits, name="evaluator")


def count_macs(model) -> int:
    """Multiply-adds of one forward pass of one image (convolutions and dense layers)."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.Dense)):
            out = layer.output.shape
            spatial = int(np.prod(out[1:-1])) if len(out) > 2 else 1
            kernel = layer.kernel.shape  # (kh, kw, cin, cout|mult) or (in, out)
            total += spatial * int(np.prod(kernel))
    return total


def augment(images):
    """Random geometry and colour for a float batch ``(B, S, S, 3)`` in [0, 1] (TensorFlow):
    zoom 0.88-1.12, shift up to 8%, rotation up to 7 degrees (white fill), brightness,
    contrast, saturation and per-channel gain jitter, a random amount of Gaussian blur on 40%
    of the images, and a little pixel noise."""
    import tensorflow as tf

    b = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    rnd = tf.random.uniform

    # Geometry: output pixel p reads input c + R(-a) (p - c) / s - t.
    scale = rnd([b], 0.88, 1.12)
    angle = rnd([b], -0.12, 0.12)
    shift = rnd([b, 2], -0.08, 0.08) * size
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    c = (size - 1.0) / 2.0
    tx = c - cos * c + sin * c - shift[:, 0]
    ty = c - sin * c - cos * c - shift[:, 1]
    zeros = tf.zeros([b])
    transforms = tf.stack([cos, -sin, tx, sin, cos, ty, zeros, zeros], axis=1)
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=1.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )

    # Blur: a random mix of the image and its sigma-1 Gaussian blur, on 40% of the batch.
    g = np.exp(-0.5 * np.arange(-2, 3) ** 2)
    g = np.outer(g, g) / np.outer(g, g).sum()
    kernel = tf.constant(np.tile(g[:, :, None, None], (1, 1, 3, 1)), tf.float32)
    padded = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="SYMMETRIC")
    blurred = tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")
    mix = rnd([b, 1, 1, 1]) * tf.cast(rnd([b, 1, 1, 1]) < 0.4, tf.float32)
    x = x + mix * (blurred - x)

    # Colour.
    gray = tf.reduce_mean(x, axis=-1, keepdims=True)
    x = gray + rnd([b, 1, 1, 1], 0.7, 1.3) * (x - gray)  # saturation
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = mean + rnd([b, 1, 1, 1], 0.8, 1.2) * (x - mean)  # contrast
    x = x * rnd([b, 1, 1, 3], 0.95, 1.05) + rnd([b, 1, 1, 1], -0.08, 0.08)  # gain, brightness
    x = x + tf.random.normal(tf.shape(x)) * rnd([b, 1, 1, 1], 0.0, 0.03)
    return tf.clip_by_value(x, 0.0, 1.0)


def train_evaluator(
    data: Path = DEFAULT_DATA,
    name: str = EVALUATOR,
    *,
    zoo: str | Path | None = None,
    steps: int = 1300,
    batch_size: int = 128,
    lr: float = 4e-3,
    width: int = 32,
    seed: int = 0,
    command: str = "",
    quiet: bool = False,
) -> dict:
    """Train the evaluator on every real image of the corpus (both fonts) and save it to the
    zoo as ``name`` (kind ``"evaluator"``); returns its card."""
    import keras
    import tensorflow as tf

    from imgfix import zoo as zoo_mod
    from imgfix.data.captions import load_images, read_corpus

    zoo_mod.check_name(name)
    started = time.time()
    corpus = read_corpus(data)
    names = corpus.concept_names
    labels = corpus.concept_ids()
    images = load_images(corpus, IMAGE_SIZE)
    load_seconds = time.time() - started

    keras.utils.set_random_seed(seed)
    model = build_evaluator(len(names), IMAGE_SIZE, width)
    schedule = keras.optimizers.schedules.CosineDecay(lr, steps, warmup_target=None, alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    num_classes = len(names)
    dataset = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .repeat()
        .shuffle(len(images), seed=seed)
        .batch(batch_size, drop_remainder=True)
        .map(
            lambda x, y: (
                augment(tf.cast(x, tf.float32) / 255.0),
                tf.one_hot(y, num_classes),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        .prefetch(tf.data.AUTOTUNE)
    )
    epochs = max(1, min(steps // 250, 20))
    fit_started = time.time()
    history = model.fit(
        dataset,
        epochs=epochs,
        steps_per_epoch=steps // epochs,
        shuffle=False,  # the dataset shuffles
        verbose=0 if quiet else 2,
    )
    fit_seconds = time.time() - fit_started
    done_steps = (steps // epochs) * epochs

    logits = model.predict(images.astype(np.float32) / 255.0, batch_size=512, verbose=0)
    fonts = np.array([f.parent.name for f in corpus.files])
    clean = {
        font: {
            "images": int((fonts == font).sum()),
            "top1": round(topk_accuracy(logits[fonts == font], labels[fonts == font], 1), 4),
            "top5": round(topk_accuracy(logits[fonts == font], labels[fonts == font], 5), 4),
        }
        for font in sorted(set(fonts))
    }
    # Save an uncompiled copy: no optimizer state in the file.
    inference = build_evaluator(len(names), IMAGE_SIZE, width)
    inference.set_weights(model.get_weights())
    card = {
        "kind": "evaluator",
        "description": (
            "Concept classifier on real emoji (both fonts, augmented) for scoring generators: "
            "prompt accuracy from its logits, Fréchet distance in its pooled features"
        ),
        "image_size": IMAGE_SIZE,
        "input": "RGB in [0, 1], (B, 48, 48, 3)",
        "feature_layer": FEATURES,
        "feature_dim": int(inference.get_layer(FEATURES).output.shape[-1]),
        "width": width,
        "macs_per_image": count_macs(inference),
        "data": {"path": _shown(data), "images": len(corpus), "concepts": num_classes},
        "concepts": names,
        "training_command": command,
        "steps": done_steps,
        "training": {
            "batch_size": batch_size,
            "lr": lr,
            "schedule": "cosine",
            "label_smoothing": 0.1,
            "augmentation": "zoom 0.88-1.12, shift 8%, rotate 7 deg, saturation/contrast/"
            "gain/brightness jitter, blur mix on 40%, noise <= 0.03",
            "seed": seed,
            "seconds": round(time.time() - started, 1),
            "fit_seconds": round(fit_seconds, 1),
            "load_seconds": round(load_seconds, 1),
        },
        "metrics": {
            "train_accuracy_augmented": round(float(history.history["accuracy"][-1]), 4),
            "train_loss": round(float(history.history["loss"][-1]), 4),
            "train_accuracy_clean": clean,
        },
    }
    zoo_mod.save_model(inference, name, card, zoo)
    return zoo_mod.read_card(name, zoo)


class Evaluator:
    """A loaded evaluator: logits and pooled features of ``uint8`` images."""

    def __init__(self, model, card: dict):
        import keras

        self.card = card
        self.concepts: list[str] = list(card["concepts"])
        self.image_size = int(card.get("image_size", IMAGE_SIZE))
        self.model = keras.Model(model.inputs, [model.get_layer(FEATURES).output, model.outputs[0]])

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(features (N, D), logits (N, C))`` of ``(N, S, S, 3) uint8`` images."""
        images = resize(images, self.image_size).astype(np.float32) / 255.0
        features, logits = self.model.predict(images, batch_size=512, verbose=0)
        return features.astype(np.float64), logits


def load_evaluator(name: str = EVALUATOR, zoo: str | Path | None = None) -> Evaluator:
    from imgfix import zoo as zoo_mod

    model, card = zoo_mod.load_model(name, zoo, kind="evaluator")
    return Evaluator(model, card)


# ---------------------------------------------------------------------------- metrics


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of rows whose label is among the ``k`` highest scores. A tie counts against
    the label, so constant scores get 0 rather than 1."""
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    target = logits[np.arange(len(labels)), labels]
    others = (logits >= target[:, None]).sum(axis=1) - 1  # classes at or above the label
    return float(np.mean(others < k))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1) of ``(N, D)`` features, in float64."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need an (N >= 2, D) feature array, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` between two Gaussians.

    ``tr((S1 S2)^(1/2))`` is computed as the sum of the square roots of the eigenvalues of the
    symmetric PSD matrix ``S1^(1/2) S2 S1^(1/2)`` (same eigenvalues as ``S1 S2``): exact for
    singular covariances, no complex parts to drop, and the same value as the usual
    ``scipy.linalg.sqrtm`` formula where that converges.
    """
    root1 = _psd_sqrt(np.asarray(sigma1, np.float64))
    inner = root1 @ np.asarray(sigma2, np.float64) @ root1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    trace_sqrt = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)
    return max(value, 0.0)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two ``(N, D)`` feature sets."""
    return frechet_from_stats(*gaussian_stats(a), *gaussian_stats(b))


def nearest_psnr(images: np.ndarray, bank: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """PSNR (dB) of each ``uint8`` image to its nearest image of ``bank`` (same size): how close
    a generated image is to a copy of a real one. With ``exclude_self``, ``images`` is ``bank``
    and an image's match with itself is skipped (the reference: how close real images are to
    each other, mostly the other font's drawing of the same concept)."""
    a = images.reshape(len(images), -1).astype(np.float32) / 255.0
    b = bank.reshape(len(bank), -1).astype(np.float32) / 255.0
    b_norms = (b * b).sum(axis=1)
    mse = []
    for start in range(0, len(a), 256):
        x = a[start : start + 256]
        d = (x * x).sum(axis=1)[:, None] + b_norms[None, :] - 2.0 * (x @ b.T)
        if exclude_self:
            d[np.arange(len(x)), np.arange(start, start + len(x))] = np.inf
        # The expansion finds the nearest image; its float32 cancellation (up to 1e-7 of the
        # norms) would turn an exact copy's 0 into ~70 dB, so the chosen one's MSE is direct.
        nearest = b[d.argmin(axis=1)]
        mse.append(np.maximum(np.square(x - nearest).mean(axis=1), 1e-10))
    return 10.0 * np.log10(1.0 / np.concatenate(mse))


def copy_figures(psnr: np.ndarray) -> dict:
    """The median PSNR to the nearest real image, and the share above 30 dB (a near copy)."""
    return {
        "nearest_real_psnr_median": round(float(np.median(psnr)), 2),
        "near_copies_above_30db": round(float(np.mean(psnr > 30.0)), 4),
    }


# ---------------------------------------------------------------------------- images


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """``(N, S, S, 3) uint8`` at ``size`` px (Lanczos, as the corpus is loaded); a no-op at
    that size."""
    if images.shape[1] == size:
        return images
    from PIL import Image

    return np.stack(
        [
            np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.LANCZOS))
            for im in images
        ]
    )


def generate_images(generator, prompts: list[str], seed, temperature: float = 1.0) -> np.ndarray:
    """One image per prompt, ``(len(prompts), S, S, 3) uint8`` at the generator's size, in one
    batched call. The noise comes from ``default_rng(seed)``, so the same seed and prompt list
    give the same pixels; each distinct prompt is embedded once."""
    unique = list(dict.fromkeys(prompts))
    index = {p: i for i, p in enumerate(unique)}
    cond = generator.conditions(unique)[[index[p] for p in prompts]]
    z = np.random.default_rng(seed).standard_normal((len(prompts), generator.z_dim))
    z = (z * temperature).astype(np.float32)
    out = generator.network(z, cond.astype(np.float32))
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------- evaluation


class Reference:
    """The real corpus seen by the evaluator: labels, fonts, features and logits of every
    image, and the fixed real sample that generated images are compared with."""

    def __init__(self, evaluator: Evaluator, data: Path, samples: int, seed: int):
        from imgfix.data.captions import load_images, read_corpus
        from imgfix.errors import InputError

        corpus = read_corpus(data)
        if corpus.concept_names != evaluator.concepts:
            raise InputError(
                f"{data}: its concepts differ from the ones the evaluator was trained on "
                "(retrain it with --train-evaluator)"
            )
        self.concepts = corpus.concept_names
        self.labels = corpus.concept_ids()
        self.fonts = np.array([f.parent.name for f in corpus.files])
        self.images = load_images(corpus, evaluator.image_size)
        self.features, self.logits = evaluator(self.images)
        if samples > len(self.images) // 2:
            raise InputError(
                f"--samples {samples}: the corpus has {len(self.images)} images; use at most "
                f"{len(self.images) // 2} so two disjoint real samples exist"
            )
        rng = np.random.default_rng([seed, 17])
        order = rng.permutation(len(self.images))
        self.sample = np.sort(order[:samples])
        """The real images generated ones are compared with (the same for every model)."""
        self.other = np.sort(order[samples : 2 * samples])
        """A disjoint real sample: the FD a perfect generator would get."""
        self.n = samples
        self.seed = seed

    def ceiling(self) -> dict:
        """Accuracy of real images per font, FD between fonts and between two real samples."""
        out: dict = {"fonts": {}}
        for font in sorted(set(self.fonts)):
            mask = self.fonts == font
            out["fonts"][font] = {
                "images": int(mask.sum()),
                "top1": topk_accuracy(self.logits[mask], self.labels[mask], 1),
                "top5": topk_accuracy(self.logits[mask], self.labels[mask], 5),
            }
        fonts = sorted(set(self.fonts))
        if len(fonts) == 2:
            # The same concepts in both styles: concepts drawn in both fonts, n of them.
            pairs = list(enumerate(zip(self.labels.tolist(), self.fonts, strict=True)))
            first, second = ({c: i for i, (c, f) in pairs if f == font} for font in fonts)
            shared = np.array(sorted(set(first) & set(second)))
            take = min(self.n, len(shared))
            pick = np.random.default_rng([self.seed, 23]).choice(shared, take, replace=False)
            a = self.features[[first[c] for c in pick]]
            b = self.features[[second[c] for c in pick]]
            out["fd_fonts"] = {"pair": fonts, "concepts": take, "fd": frechet_distance(a, b)}
        out["fd_real_samples"] = frechet_distance(
            self.features[self.sample], self.features[self.other]
        )
        return out


def evaluate_generator(
    generator,
    evaluator: Evaluator,
    reference: Reference,
    *,
    k: int = 2,
    temperature: float = 1.0,
) -> dict:
    """Prompt accuracy (k images per concept, prompted with its name), its shuffled-concept
    floor, and FD to the real sample; times each part."""
    from imgfix.errors import InputError

    concepts = reference.concepts
    known = set(generator.concepts) if getattr(generator, "text_encoder", None) is None else None
    if known is not None and not set(concepts) <= known:
        raise InputError("the generator's fixed labels do not cover the corpus concepts")
    started = time.time()
    prompts = [c for c in concepts for _ in range(k)]
    labels = np.repeat(np.arange(len(concepts)), k)
    images = generate_images(generator, prompts, [reference.seed, 1], temperature)
    fd_labels = reference.labels[reference.sample]
    fd_images = generate_images(
        generator, [concepts[c] for c in fd_labels], [reference.seed, 2], temperature
    )
    gen_seconds = time.time() - started
    started = time.time()
    _, logits = evaluator(images)
    features, _ = evaluator(fd_images)
    shuffled = np.random.default_rng([reference.seed, 3]).permutation(labels)
    result = {
        "images": len(images),
        "images_per_concept": k,
        "image_size": int(images.shape[1]),
        "top1": topk_accuracy(logits, labels, 1),
        "top5": topk_accuracy(logits, labels, 5),
        "shuffled_top1": topk_accuracy(logits, shuffled, 1),
        "shuffled_top5": topk_accuracy(logits, shuffled, 5),
        "fd": frechet_distance(features, reference.features[reference.sample]),
        "fd_samples": reference.n,
        "generate_seconds": round(gen_seconds, 1),
        "score_seconds": round(time.time() - started, 1),
    }
    result["examples"] = images
    return result


PROBES = ("cat", "猫", "Katze", "a dog", "Hund", "voiture", "pizza", "Herz", "árbol", "rocket")
"""Multilingual and paraphrased prompts the generation issue names, plus a few more."""


def probe_prompts(generator, evaluator: Evaluator, temperature: float, seeds: int = 6) -> dict:
    """For each of ``PROBES``: the concept the generator maps it to, and in how many of
    ``seeds`` noise draws (``imgfix generate -n 6 --seed 0``) the evaluator names that concept
    first. The ``cat`` rows are the issue's "a cat face in at least 5 of 6 seeds"."""
    from imgfix.pipelines.generate import GenerateOptions

    out = {}
    options = GenerateOptions(n=seeds, seed=0, temperature=temperature)
    for prompt in PROBES:
        result = generator.sample(prompt, options)
        concept = result.match.nearest[0][0] if result.match else prompt
        _, logits = evaluator(result.images)
        named = [evaluator.concepts[i] for i in logits.argmax(axis=1)]
        out[prompt] = {"concept": concept, "named": sum(n == concept for n in named), "of": seeds}
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.01 or x == 0 else f"{100 * x:.2f}%"


def markdown(models: dict[str, dict], ceiling: dict, num_concepts: int, samples: int) -> str:
    """The table of ``make bench-generate``; the last column is how close the images are to a
    copy of a real one (``nearest_psnr``: median PSNR to the nearest corpus image)."""

    def near(r: dict) -> str:
        value = r.get("nearest_real_psnr_median")
        return "" if value is None else f"{value:.1f} dB"

    lines = [
        f"| source | prompt top-1 | prompt top-5 | shuffled top-1 | FD to real (n={samples}) "
        "| nearest real image |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in models.items():
        label = f"{name} (temperature {r['temperature']:g})" if "temperature" in r else name
        lines.append(
            f"| {label} | {_pct(r['top1'])} | {_pct(r['top5'])} | {_pct(r['shuffled_top1'])} "
            f"| {r['fd']:.2f} | {near(r)} |"
        )
    for font, r in ceiling["fonts"].items():
        lines.append(
            f"| ceiling: real {font} (evaluator's training images) | {_pct(r['top1'])} "
            f"| {_pct(r['top5'])} | | | |"
        )
    if "fd_fonts" in ceiling:
        a, b = ceiling["fd_fonts"]["pair"]
        lines.append(
            f"| ceiling: real {a} vs real {b}, same concepts | | | | "
            f"{ceiling['fd_fonts']['fd']:.2f} | |"
        )
    lines.append(
        f"| ceiling: two disjoint real samples | | | | {ceiling['fd_real_samples']:.2f} "
        f"| {near(ceiling)} (each real image to the nearest other) |"
    )
    lines.append(
        f"| chance ({num_concepts} concepts) | {_pct(1 / num_concepts)} "
        f"| {_pct(5 / num_concepts)} | | | |"
    )
    probed = {name: r["probes"] for name, r in models.items() if r.get("probes")}
    if probed:
        lines += ["", "| model | prompt -> concept: the evaluator names it in n of 6 draws |"]
        lines.append("|---|---|")
        for name, probes in probed.items():
            cells = [f"{p} -> {v['concept']} {v['named']}/{v['of']}" for p, v in probes.items()]
            lines.append(f"| {name} | {'; '.join(cells)} |")
    return "\n".join(lines)


def _round(value):
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def _save_grid(images: np.ndarray, concepts: list[str], k: int, path: Path) -> None:
    """The first images of a few concepts spread over the list, one row per concept."""
    from imgfix.io import atomic_path
    from imgfix.pipelines.generate import make_grid

    step = max(len(concepts) // 12, 1)
    rows = [images[c * k : (c + 1) * k] for c in range(0, len(concepts), step)][:12]
    with atomic_path(path) as tmp:
        make_grid(rows, images.shape[1] * 2).save(tmp, format="PNG")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default=None, help="comma-separated zoo generators (default: all of them)"
    )
    parser.add_argument("--zoo", default=None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the real corpus")
    parser.add_argument("--evaluator", default=EVALUATOR, help="zoo name of the evaluator")
    parser.add_argument(
        "--train-evaluator", action="store_true", help="(re)train it even if it exists"
    )
    parser.add_argument("--evaluator-steps", type=int, default=1300)
    parser.add_argument("--evaluator-batch-size", type=int, default=128)
    parser.add_argument("--k", type=int, default=2, help="images per concept for accuracy")
    parser.add_argument("--samples", type=int, default=1500, help="images per side for FD")
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="noise scale (default: each model's own, as imgfix generate uses it)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write all figures here")
    parser.add_argument(
        "--markdown",
        nargs="?",
        const="-",
        default="-",
        help="the table is always printed; with a FILE it is written there too",
    )
    parser.add_argument("--grids", type=Path, help="save a sample grid per model in this folder")
    parser.add_argument("--update-card", action="store_true", help="store figures on the cards")
    args = parser.parse_args(argv)

    from imgfix import zoo as zoo_mod
    from imgfix.errors import InputError
    from imgfix.runtime import setup

    given = sys.argv[1:] if argv is None else argv
    if args.models is None:
        names = [c["name"] for c in zoo_mod.list_cards(args.zoo) if c.get("kind") == "generator"]
    else:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
    for name in names:
        zoo_mod.read_card(name, args.zoo, kind="generator")  # fail fast, before TensorFlow
    if min(args.k, args.samples) < 1:
        raise InputError("--k and --samples must be at least 1")

    setup("cpu", args.seed)
    log = sys.stderr
    exists = (zoo_mod.zoo_dir(args.zoo) / f"{args.evaluator}.keras").is_file()
    if args.train_evaluator or not exists:
        print(f"training evaluator '{args.evaluator}' on {args.data}...", file=log, flush=True)
        trained = train_evaluator(
            args.data,
            args.evaluator,
            zoo=args.zoo,
            steps=args.evaluator_steps,
            batch_size=args.evaluator_batch_size,
            seed=args.seed,
            command="python -m bench.generation_quality " + shlex.join(given),
            quiet=True,
        )
        print(
            f"  {trained['training']['seconds']} s, {json.dumps(trained['metrics'])}",
            file=log,
            flush=True,
        )
    evaluator = load_evaluator(args.evaluator, args.zoo)
    started = time.time()
    reference = Reference(evaluator, args.data, args.samples, args.seed)
    ceiling = reference.ceiling()
    ceiling.update(copy_figures(nearest_psnr(reference.images, reference.images, True)))
    ceiling["seconds"] = round(time.time() - started, 1)

    from imgfix.pipelines.generate import load_generator

    results: dict[str, dict] = {}
    for name in names:
        print(f"evaluating '{name}'...", file=log, flush=True)
        generator = load_generator(name, args.zoo)
        temperature = args.temperature
        if temperature is None:
            temperature = float(generator.card.get("sampling", {}).get("temperature", 1.0))
        result = evaluate_generator(
            generator, evaluator, reference, k=args.k, temperature=temperature
        )
        result["temperature"] = temperature
        examples = result.pop("examples")
        if args.grids:
            args.grids.mkdir(parents=True, exist_ok=True)
            _save_grid(examples, reference.concepts, args.k, args.grids / f"{name}.png")
        result["generator_sha256"] = generator.card.get("sha256")
        real = reference.images
        result.update(copy_figures(nearest_psnr(resize(examples, real.shape[1]), real)))
        if generator.condition != "label":  # fixed labels take no free prompt
            result["probes"] = probe_prompts(generator, evaluator, temperature)
        results[name] = result
        print(f"  {json.dumps(_round(result))}", file=log, flush=True)

    table = markdown(results, ceiling, len(reference.concepts), args.samples)
    print(table)
    if args.markdown and args.markdown != "-":
        from imgfix.io import atomic_write_text

        atomic_write_text(Path(args.markdown), table + "\n")
    settings = {
        "evaluator": args.evaluator,
        "evaluator_sha256": evaluator.card.get("sha256"),
        "data": _shown(args.data),
        "concepts": len(reference.concepts),
        "images_per_concept": args.k,
        "fd_samples": args.samples,
        "temperature": args.temperature,
        "seed": args.seed,
        "command": ("python -m bench.generation_quality " + shlex.join(given)).strip(),
    }
    if args.json:
        from imgfix.io import atomic_write_text

        payload = {"settings": settings, "models": results, "ceiling": ceiling}
        atomic_write_text(args.json, json.dumps(_round(payload), indent=1))
    if args.update_card:
        for name, result in results.items():
            figures = {
                **settings,
                **{k: result[k] for k in ("top1", "top5", "shuffled_top1", "fd", "temperature")},
                "ceiling": {
                    "fonts": ceiling["fonts"],
                    "fd_fonts": ceiling.get("fd_fonts", {}).get("fd"),
                    "fd_real_samples": ceiling["fd_real_samples"],
                },
            }
            zoo_mod.update_metrics(name, {"evaluation": _round(figures)}, args.zoo)


if __name__ == "__main__":
    main()
