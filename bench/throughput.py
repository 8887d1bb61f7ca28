"""Training throughput of each trainable model at its default configuration, next to the
keras.io reference model of the same kind built in the same process at the same image size.

    python -m bench.throughput [--json outputs/throughput.json] [--steps 12] [--warmup 2]
    python -m bench.throughput --backend jax ...   # one backend only (default: each installed)

Each training model is built and compiled as its trainer does (``imgfix/training/``) and run by
``fit`` on synthetic in-memory batches of the shapes its trainer feeds (random pixels, masks from
``imgfix.masks.training_masks``, unit condition vectors, token ids), so no corpus is needed and
the input pipeline is left out. Images per second = batch x ``--steps`` / the seconds those
steps took, counted after ``--warmup`` steps (the first traces the step function). The
references (``bench/keras_io.py``) are built in the same process and run the same way at our
image size and batch size, taking turns with our models in ``ROUNDS`` rounds so that a change in
the (shared) machine's load falls on both; ``ratio`` = ours / reference images per second. The
prompt encoder's "images" are image-caption pairs.

Keras picks its backend once per process, so without ``--backend`` each backend (TensorFlow,
and JAX where it is installed) runs in a child process of its own; the page's main table is
TensorFlow's, and a second one puts the backends side by side (``by_backend``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imgfix import runtime
from imgfix.io import atomic_write_text

if TYPE_CHECKING:
    import keras

COND_DIM = 128  # the prompt encoder's embedding size, which the generators condition on
SEED = 0
STEPS, WARMUP = 12, 2
ROUNDS = 3


@dataclass
class Case:
    """One model to time: how to build its compiled training model and one batch for ``fit``."""

    name: str
    model: str
    image_size: int
    batch_size: int
    build: Callable[[], keras.Model]
    batch: Callable[[np.random.Generator], object]
    reference: str | None = None
    build_reference: Callable[[], keras.Model] | None = None
    reference_batch: Callable[[np.random.Generator], object] | None = None


def _images(rng: np.random.Generator, batch: int, size: int) -> np.ndarray:
    pixels = rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    return pixels.astype(np.float32) / 255.0


def _conditions(rng: np.random.Generator, batch: int) -> np.ndarray:
    v = rng.standard_normal((batch, COND_DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def build_inpainter() -> keras.Model:
    """``imgfix train inpainter`` (and ``make train-inpainter``) at its defaults."""
    import keras

    from imgfix.training.inpainter import build_inpainting_trainer

    keras.utils.set_random_seed(SEED)
    return build_inpainting_trainer()


def build_vae(z_dim: int = 16) -> keras.Model:
    """``make train-vae``: the conditional VAE with ``--z-dim 16 --kl-weight 10``."""
    import keras

    from imgfix.training.generators import build_trainer

    keras.utils.set_random_seed(SEED)
    return build_trainer(
        "vae", 48, COND_DIM, z_dim=z_dim, kl_weight=10.0, warmup_steps=300, seed=SEED
    )


def build_cgan(init_from_vae: bool = False) -> keras.Model:
    """``imgfix train cgan`` at its defaults: a plain conditional GAN with ``z`` of 64. With
    ``init_from_vae``, ``make train-cgan``'s VAE-GAN instead: it takes over the encoder and
    decoder of a ``make train-vae`` VAE (``z`` of 16; random weights, the same shapes) with
    ``--kl-weight 0.05``."""
    import keras

    from imgfix.training.generators import build_trainer

    keras.utils.set_random_seed(SEED)
    if init_from_vae:
        return build_trainer("cgan", 48, COND_DIM, kl_weight=0.05, init=build_vae(), seed=SEED)
    return build_trainer("cgan", 48, COND_DIM, seed=SEED)


def build_prompt_encoder() -> keras.Model:
    """``make train-text``: the CLIP-style n-gram text tower and image tower."""
    import keras

    from imgfix.training.prompt import build_prompt_trainer

    keras.utils.set_random_seed(SEED)
    return build_prompt_trainer("ngram", COND_DIM)


def _token_ids(rng: np.random.Generator, batch: int) -> np.ndarray:
    """Ids shaped as ``tokenize`` gives them: hashed n-grams (10 for "cat", 74 for "grinning
    face with big eyes"), then padding up to ``MAX_TOKENS``."""
    from imgfix.data.tokens import MAX_TOKENS, NGRAM_BUCKETS

    width = MAX_TOKENS["ngram"]
    ids = rng.integers(1, NGRAM_BUCKETS, (batch, width), dtype=np.int32)
    ids[np.arange(width) >= rng.integers(8, width + 1, batch)[:, None]] = 0
    return ids


def _inpainter_batch(rng: np.random.Generator, batch: int = 16, size: int = 128):
    from imgfix.masks import training_masks

    masks = training_masks(batch, size, seed=int(rng.integers(1 << 31)))
    return _images(rng, batch, size), masks[..., None].astype(np.float32)


def _text_batch(rng: np.random.Generator, batch: int = 256):
    targets = np.arange(batch, dtype=np.int32)
    return (_token_ids(rng, batch), _images(rng, batch, 48)), (targets, targets)


DCGAN_REF = "keras.io DCGAN (face images), scaled to 48 px"
VAE_REF = "keras.io VAE, scaled to 48 x 48 x 3"


def reference_dcgan() -> keras.Model:
    from bench import keras_io

    return keras_io.build_dcgan(48)


def reference_vae() -> keras.Model:
    from bench import keras_io

    return keras_io.build_vae(48, 3)


def cases() -> list[Case]:
    """Our trainable models at their default configurations, with their references."""
    dcgan = {
        "reference": DCGAN_REF,
        "build_reference": reference_dcgan,
        "reference_batch": lambda rng: _images(rng, 32, 48),
    }
    return [
        Case(
            "photo-inpainter",
            "our inpainter (imgfix train inpainter default = make train-inpainter)",
            128,
            16,
            build_inpainter,
            _inpainter_batch,
        ),
        Case(
            "emoji-vae",
            "our conditional VAE (make train-vae: z 16)",
            48,
            64,
            build_vae,
            lambda rng: ((_images(rng, 64, 48), _conditions(rng, 64)),),
            VAE_REF,
            reference_vae,
            lambda rng: _images(rng, 64, 48),
        ),
        Case(
            "cgan-default",
            "a plain conditional GAN at `imgfix train cgan` defaults (no --init, z 64)",
            48,
            32,
            build_cgan,
            lambda rng: (_images(rng, 32, 48), _conditions(rng, 32)),
            **dcgan,
        ),
        Case(
            "emoji-cgan",
            "the shipped VAE-GAN setup (make train-cgan: --init from the VAE, z 16)",
            48,
            32,
            lambda: build_cgan(init_from_vae=True),
            lambda rng: (_images(rng, 32, 48), _conditions(rng, 32)),
            **dcgan,
        ),
        Case(
            "prompt-encoder",
            "our CLIP-style prompt encoder (make train-text; image-caption pairs)",
            48,
            256,
            build_prompt_encoder,
            _text_batch,
        ),
    ]


def trained_params(trainer: keras.Model) -> int:
    """Trainable parameters of the networks a training step updates (not an EMA copy)."""
    import keras

    names = ("generator", "discriminator", "encoder", "decoder")
    parts = [getattr(trainer, name, None) for name in names]
    unique = {id(p): p for p in parts if isinstance(p, keras.Model)} or {id(trainer): trainer}
    return sum(int(np.prod(w.shape)) for p in unique.values() for w in p.trainable_weights)


class Timed:
    """A compiled training model and the ``fit`` input that repeats one synthetic batch."""

    def __init__(self, trainer: keras.Model, batch: object):
        import tensorflow as tf

        self.trainer = trainer
        self.dataset = tf.data.Dataset.from_tensors(batch).repeat().prefetch(2)
        self.seconds, self.steps = 0.0, 0

    def fit(self, steps: int, callbacks: list | None = None) -> None:
        self.trainer.fit(
            self.dataset,
            epochs=1,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,
        )

    def run(self, steps: int) -> None:
        """``steps`` timed steps of ``fit``, timed from the end of an untimed first one (which
        traces the step function, or starts the iterator) to the end of the last."""
        import keras

        ends: list[float] = []

        class Clock(keras.callbacks.Callback):
            def on_train_batch_end(self, step, logs=None):
                float(next(iter(logs.values())))  # the step's results, so it has finished
                ends.append(time.perf_counter())

        self.fit(steps + 1, [Clock()])
        self.seconds += ends[-1] - ends[0]
        self.steps += steps

    @property
    def step_s(self) -> float:
        return self.seconds / self.steps


def measure(group: list[Case], steps: int, warmup: int, rounds: int = ROUNDS) -> list[dict]:
    """Rows for models that share one reference (or have none), all built in this process and
    timed in turns: after ``warmup`` steps each, every model and the reference run about
    ``steps / rounds`` timed steps in each of ``rounds`` rounds, ``steps`` in all, so a change
    in the machine's load falls on all of them alike."""
    if steps < 1 or warmup < 0:
        raise ValueError("--steps must be at least 1 and --warmup at least 0")
    rng = np.random.default_rng(SEED)
    ours = [Timed(case.build(), case.batch(rng)) for case in group]
    first = group[0]
    reference = None
    if first.build_reference is not None:
        reference = Timed(first.build_reference(), first.reference_batch(rng))
    everyone = ours + ([reference] if reference else [])
    for t in everyone:
        if warmup:
            t.fit(warmup)
    rounds = min(rounds, steps)
    for r in range(rounds):
        for t in everyone:
            t.run(steps // rounds + (r < steps % rounds))
    rows = []
    for case, t in zip(group, ours, strict=True):
        images_per_s = case.batch_size / t.step_s
        row = {
            "name": case.name,
            "model": case.model,
            "image_size": case.image_size,
            "batch_size": case.batch_size,
            "params": trained_params(t.trainer),
            "images_per_s": round(images_per_s, 2),
            "step_s": round(t.step_s, 4),
            "reference": case.reference,
            "reference_params": None,
            "reference_images_per_s": None,
            "ratio": None,
        }
        if reference is not None:
            reference_per_s = case.batch_size / reference.step_s  # the same batch size
            row["reference_params"] = trained_params(reference.trainer)
            row["reference_images_per_s"] = round(reference_per_s, 2)
            row["ratio"] = round(images_per_s / reference_per_s, 3)
        rows.append(row)
    return rows


def markdown(results: dict) -> str:
    """The results as a Markdown table, with a note of how they were measured."""
    lines = [
        "| model | image size | batch | params | images/s | reference | reference images/s "
        "| ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["models"]:
        ref, ratio = r["reference_images_per_s"], r["ratio"]
        lines.append(
            f"| **{r['name']}**: {r['model']} | {r['image_size']} | {r['batch_size']} "
            f"| {r['params']:,} | {r['images_per_s']:.1f} | {r['reference'] or '-'} "
            f"| {'-' if ref is None else f'{ref:.1f}'} "
            f"| {'-' if ratio is None else f'{ratio:.2f}'} |"
        )
    s = results["settings"]
    lines.append(
        f"\nTraining steps by `fit` on synthetic in-memory batches: {s['steps']} timed steps "
        f"after {s['warmup']} warm-up steps, in {s['rounds']} rounds taking turns with the "
        f"reference built in the same process; {s['device']}, Keras backend "
        f"{s.get('backend', 'tensorflow')}, TensorFlow {s['tensorflow']}, "
        f"Keras {s['keras']}. ratio = ours / reference images per second."
    )
    if results.get("by_backend"):
        lines.append(
            "\nThe same on each Keras backend, each in a process of its own "
            "(`python -m bench.throughput --backend B`), one after the other:\n"
        )
        lines.append(backend_markdown(results["by_backend"]))
    runs = [results, *results.get("by_backend", {}).values()]
    if all("cpu" in str(run["settings"]["device"]).lower() for run in runs):
        lines.append("\nNo GPU was available on this machine: every figure here is the CPU's.")
    return "\n".join(lines)


def headline(results: dict) -> list[str]:
    """One line per model that has a keras.io reference: the ratio, with both figures."""
    rows = [r for r in results["models"] if r["ratio"] is not None]
    if not rows:
        return []
    return [
        "- **Training throughput against keras.io** (same process, image size and batch): "
        + "; ".join(
            f"{r['name']} {r['images_per_s']:.1f} images/s against "
            f"{r['reference_images_per_s']:.1f} for the {r['reference']} (ratio {r['ratio']:.2f})"
            for r in rows
        )
        + "."
    ]


QUICK = "emoji-vae"  # the cheapest model that has a reference


BACKENDS = ("tensorflow", "jax")


def _device(backend: str) -> str:
    """Where this backend trains: TensorFlow's device, or JAX's first."""
    if backend == "jax":
        import jax

        return str(jax.devices()[0])
    return runtime.device_info()["device"]


def installed_backends() -> list[str]:
    import importlib.util

    return [b for b in BACKENDS if b == "tensorflow" or importlib.util.find_spec(b) is not None]


def backend_markdown(by_backend: dict) -> str:
    """The backends side by side: images/s of each model under each, and JAX / TensorFlow."""
    names = list(by_backend)
    rows = {}
    for backend, results in by_backend.items():
        for r in results["models"]:
            rows.setdefault(r["name"], {})[backend] = r["images_per_s"]
    head = "| model | " + " | ".join(f"{b} images/s" for b in names)
    ratio = len(names) == 2
    lines = [head + (f" | {names[1]} / {names[0]} |" if ratio else " |")]
    lines.append("|---" * (len(names) + 1 + ratio) + "|")
    for name, figures in rows.items():
        cells = " | ".join(f"{figures[b]:.1f}" if b in figures else "-" for b in names)
        share = ""
        if ratio:
            a, b = (figures.get(n) for n in names)
            share = f" | {b / a:.2f}" if a and b else " | -"
        lines.append(f"| {name} | {cells}{share} |")
    return "\n".join(lines)


def _per_backend(argv: list[str], backends: list[str]) -> dict:
    """Run this module once per backend, each in its own process; their results by backend."""
    import os
    import subprocess
    import tempfile

    by_backend = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            out = Path(tmp) / f"{backend}.json"
            rest = [a for a in argv if a != "--json"]
            if "--json" in argv:  # drop the option and its value
                i = argv.index("--json")
                rest = argv[:i] + argv[i + 2 :]
            command = [sys.executable, "-m", "bench.throughput", *rest, "--backend", backend]
            env = {**os.environ, "KERAS_BACKEND": backend}
            print(f"== throughput on {backend}", file=sys.stderr, flush=True)
            subprocess.run([*command, "--json", str(out)], env=env, check=True)
            by_backend[backend] = json.loads(out.read_text())
    return by_backend


def main(argv: list[str] | None = None) -> dict:
    """Measure, print the table, optionally write the JSON; returns the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--steps", type=int, help=f"timed steps per model [{STEPS}]")
    parser.add_argument("--warmup", type=int, help=f"untimed steps first [{WARMUP}]")
    parser.add_argument(
        "--quick", action="store_true", help=f"2 steps of {QUICK} and its reference only"
    )
    parser.add_argument("--only", help="comma-separated model names (default: all)")
    parser.add_argument(
        "--backend", choices=BACKENDS, help="one Keras backend, in this process [each installed]"
    )
    shown = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.backend is None:
        by_backend = _per_backend(shown, installed_backends())
        results = {**by_backend["tensorflow"], "by_backend": by_backend}
        print(backend_markdown(by_backend))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
        return results
    runtime.choose_backend(args.backend)
    steps = args.steps if args.steps is not None else (2 if args.quick else STEPS)
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else WARMUP)
    only = args.only or (QUICK if args.quick else None)
    chosen = [c for c in cases() if only is None or c.name in only.split(",")]
    if not chosen:
        parser.error(f"--only {only}: choose from {', '.join(c.name for c in cases())}")
    if args.backend != "tensorflow":  # the keras.io references train with TensorFlow's tape
        chosen = [replace(c, reference=None, build_reference=None) for c in chosen]
    tf = runtime.setup("auto", SEED)  # TensorFlow quietly, on the device the CLI would use
    import keras

    rows = []
    for _, group in itertools.groupby(chosen, key=lambda case: case.reference):
        for row in measure(list(group), steps, warmup):
            print(f"{row['name']}: {row['images_per_s']} images/s", file=sys.stderr)
            rows.append(row)
    results = {
        "settings": {
            "steps": steps,
            "warmup": warmup,
            "rounds": min(ROUNDS, steps),
            "backend": keras.backend.backend(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "device": _device(keras.backend.backend()),
            "command": "python -m bench.throughput " + shlex.join(shown),
        },
        "models": rows,
    }
    print(markdown(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
