"""Child process of ``test_backends.py``: trains each trainer a few steps on the Keras backend
it was started under (``KERAS_BACKEND``) and reports the losses as JSON on stdout.

``python tests/_backend_worker.py FOLDER STEPS [--resume-from OTHER]``: for every
``FOLDER/<kind>-init.keras`` the test wrote (under TensorFlow), load it as ``--resume`` does,
train ``STEPS`` steps on the fixed batch of ``batches(kind)`` and save
``FOLDER/<kind>-<backend>.keras``. With ``--resume-from``, also load
``FOLDER/<kind>-<OTHER>.keras``, written under the other backend, and report its step and
optimizer state. With ``--devices N`` (JAX, with N devices: on the CPU,
``XLA_FLAGS=--xla_force_host_platform_device_count=N``), train the ``PARALLEL`` kinds again,
data parallel.

The trainers' noise (``keras.random.normal``, ``randint``) is replaced by fixed patterns, the
same on every backend: TensorFlow's and JAX's random streams differ by design, and the losses
can only agree when the draws do.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import keras
import numpy as np
from keras import ops

KINDS = ("inpainter", "lama", "cgan", "cgan-d2", "vae", "text")
AGREE = ("inpainter", "lama", "cgan", "cgan-d2", "vae")
PARALLEL = ("cgan", "vae")
"""Run again with ``--devices N``: data parallel over N emulated devices (JAX) or logical CPUs
(TensorFlow's MirroredStrategy)."""
"""The kinds whose losses must agree across backends. The text trainer's augmentation layers
draw from the backend's own random module, which the fixed noise does not reach."""


def _pattern(shape):
    """Fixed "noise", the same for every pair of batch rows: a replica that holds half of the
    global batch (TensorFlow's MirroredStrategy) draws what the whole batch's rows hold."""
    shape = [int(d) for d in shape]
    period = 2 * math.prod(shape[1:])
    index = ops.arange(math.prod(shape), dtype="int32") % period
    return ops.reshape(ops.sin(ops.cast(index, "float32") * 0.7311), shape)


def fix_noise() -> None:
    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return mean + stddev * _pattern(shape)

    def randint(shape, minval, maxval, dtype="int32", seed=None):
        steps = (_pattern(shape) + 1.0) * 0.5 * (maxval - minval - 1e-3)
        return ops.cast(ops.floor(steps), dtype) + minval

    keras.random.normal, keras.random.randint = normal, randint


def batches(kind: str) -> tuple:
    rng = np.random.default_rng(7)
    if kind in ("inpainter", "lama"):
        images = rng.random((2, 32, 32, 3)).astype("float32")
        masks = np.zeros((2, 32, 32, 1), "float32")
        masks[:, 8:20, 6:22] = 1.0
        return images, masks
    images = rng.random((4, 24, 24, 3)).astype("float32")
    if kind == "text":
        from imgfix.models.text import tokenize

        ids = tokenize(["red circle", "blue square", "green star", "a cat"], "ngram")
        targets = np.arange(4, dtype="int32")
        return (ids, images), (targets, targets)
    # Conditions that repeat every two rows: the critic's mismatched pairs (the conditions
    # rolled by one row) are then the same whether a replica rolls its half or one device
    # rolls the whole batch.
    pair = images, np.eye(8, dtype="float32")[[0, 3, 0, 3]]
    return (pair,) if kind == "vae" else pair  # the VAE takes both as its input x


def _step(model) -> int:
    return int(getattr(model, "step", None) or ops.convert_to_numpy(model.optimizer.iterations))


def _losses(model, kind: str, steps: int) -> list[dict]:
    import tensorflow as tf

    data = tf.data.Dataset.from_tensors(batches(kind)).repeat(steps)
    seen: list[dict] = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append({k: float(v) for k, v in logs.items()})
    )
    model.fit(data, epochs=1, verbose=0, callbacks=[record], shuffle=False)
    return seen


def _optimizer_sum(model) -> float:
    """Sum of |x| over every optimizer variable: the state --resume must carry."""
    optimizers = (
        [model.g_optimizer, model.d_optimizer]
        if hasattr(model, "g_optimizer")
        else [model.optimizer]
    )
    return float(
        sum(np.abs(ops.convert_to_numpy(v)).sum() for o in optimizers for v in o.variables)
    )


def main(folder: Path, steps: int, other: str | None, devices: int = 1) -> None:
    import time

    from imgfix.training.checkpoints import load_checkpoint  # what --resume loads with

    backend = keras.backend.backend()
    fix_noise()
    report: dict = {}
    for kind in KINDS:
        began = time.monotonic()
        model = load_checkpoint(folder / f"{kind}-init.keras")
        if kind not in ("vae", "text"):
            model.compile()
        report[kind] = _losses(model, kind, steps)
        report[f"{kind}-step"] = _step(model)
        if hasattr(model, "d_optimizer"):
            report[f"{kind}-critic-steps"] = int(ops.convert_to_numpy(model.d_optimizer.iterations))
        report[f"{kind}-optimizer"] = _optimizer_sum(model)
        model.save(folder / f"{kind}-{backend}.keras")
        report[f"{kind}-seconds"] = round(time.monotonic() - began, 1)
    (folder / f"{backend}.done").touch()  # this run's checkpoints are all written
    if devices > 1:  # the same from the same start, data parallel (imgfix train --devices)
        from imgfix.training.devices import use_devices

        use_devices(str(devices), batch_size=4)
        for kind in PARALLEL:
            model = load_checkpoint(folder / f"{kind}-init.keras")
            if kind != "vae":  # the VAE keeps the optimizer it was saved with
                model.compile()
            report[f"{kind}-parallel"] = _losses(model, kind, steps)
            value = model.trainable_variables[0].value
            if backend == "jax":
                placed = len(value.sharding.device_set)
            else:  # a MirroredVariable: one copy per replica
                placed = len(getattr(value, "values", [value]))
            report[f"{kind}-parallel-devices"] = placed
    if other:  # the other backend's checkpoints, loaded here with their optimizer state
        deadline = time.monotonic() + 600
        while not (folder / f"{other}.done").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        for kind in KINDS:
            resumed = load_checkpoint(folder / f"{kind}-{other}.keras")
            report[f"{kind}-resumed-step"] = _step(resumed)
            report[f"{kind}-resumed-optimizer"] = _optimizer_sum(resumed)
    print(json.dumps(report))


if __name__ == "__main__":
    args = sys.argv[1:]
    other = args[args.index("--resume-from") + 1] if "--resume-from" in args else None
    devices = int(args[args.index("--devices") + 1]) if "--devices" in args else 1
    if devices > 1 and keras.backend.backend() == "tensorflow":  # before TensorFlow starts
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * devices
        )
    main(Path(args[0]), int(args[1]), other, devices)
