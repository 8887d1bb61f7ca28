"""The ``.keras`` -> ``.tflite`` conversion that gives every zoo model a LiteRT file.

This is the training stack's side of the split: it imports TensorFlow, and runs when a model is
saved to the zoo (training, ``zoo import``) or rebuilt (``zoo export-runtime``). Inference reads
the result with LiteRT alone (``runtime.LiteRTModel``).

- Only LiteRT's builtin ops are allowed. An op that would need the Flex delegate (full
  TensorFlow at run time) fails here, naming the op, rather than on a user's machine.
- Inputs keep the model's own shapes, so a fully convolutional model keeps height and width
  dynamic (``shape_signature`` -1) and the runtime resizes them per crop.
- Weights are stored in float32, or in float16 for models of more than ``FLOAT16_PARAMS``
  parameters, to keep ``models_zoo/`` small; LiteRT widens them to float32 once, when the model
  loads. Measured on the shipped generators with the same noise, float16 storage moves pixels by
  at most 0.72/255 (``tests/test_runtime_parity.py`` checks every shipped model).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from imgfix.errors import ImgfixError

WEIGHTS = ("auto", "float32", "float16")
FLOAT16_PARAMS = 2_000_000
"""Above this many parameters, ``auto`` stores the LiteRT weights in float16: the 4 M-parameter
generators take 8 MB instead of 16, while the 0.8 M-parameter inpainter stays exact."""


class ExportError(ImgfixError):
    """The model cannot run on LiteRT's builtin ops."""


def storage(model: Any, weights: str = "auto") -> str:
    """The weight type the ``.tflite`` stores for ``weights``: float32 or float16."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    if weights != "auto":
        return weights
    if any(str(w.dtype) == "float16" for w in model.weights):
        return "float16"  # already half precision (the compact prompt encoder): keep it so
    return "float16" if model.count_params() > FLOAT16_PARAMS else "float32"


def _widened(model: Any) -> Any:
    """A float32 copy of a model that keeps some weights in float16: LiteRT has no builtin
    gather for float16 tables, and float16 storage (below) brings the size back."""
    import keras

    if all(str(w.dtype) != "float16" for w in model.weights):
        return model

    def float32(layer: Any) -> Any:
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=float32)
    copy.set_weights([np.asarray(w, np.float32) for w in model.get_weights()])
    return copy


def in_float32(model: Any) -> Any:
    """``model`` computing in float32, with the same weights: a model trained with
    ``--precision mixed`` computes in bfloat16 (its weights are float32 already); the zoo and
    LiteRT get its float32 twin. A float32 model comes back as it is."""
    import keras

    def mixed(layer: Any) -> bool:
        return layer.dtype_policy.compute_dtype != layer.dtype_policy.variable_dtype

    if not any(mixed(layer) for layer in model._flatten_layers(include_self=False)):
        return model

    def float32(layer: Any) -> Any:
        config = layer.get_config()
        if mixed(layer):
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")  # what layers build inside themselves, too
    try:
        copy = keras.models.clone_model(model, clone_function=float32, recursive=True)
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def _reason(exc: BaseException) -> str:
    """The converter's error in one line: the op it could not map, when it names one."""
    text = str(exc)
    ops = sorted(set(re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", text)))
    if ops:
        needs = "it would need TensorFlow's Flex delegate"
        return f"{', '.join(ops)} is not a LiteRT builtin op ({needs})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return first if len(first) <= 200 else first[:197] + "..."


def to_litert(model: Any, path: str | os.PathLike, weights: str = "auto") -> str:
    """Convert a Keras model to a LiteRT file at ``path`` (written in place: callers pass a
    temporary path). Returns the weight storage used; raises ExportError with the reason."""
    from imgfix import runtime

    tf = runtime.import_tensorflow()
    kind = storage(model, weights)
    options: dict[str, Any] = {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if kind == "float16":
        options["optimizations"] = [tf.lite.Optimize.DEFAULT]
        options["target_spec"]["supported_types"] = [tf.float16]
    try:
        with runtime.quiet_native_stderr(replay=False):  # MLIR diagnostics; _reason sums up
            _widened(model).export(str(path), format="litert", verbose=False, **options)
    except OSError:
        raise  # a full disk, not the model: the caller's atomic_path names the file
    except Exception as exc:
        raise ExportError(_reason(exc)) from exc
    if not Path(path).is_file():
        raise ExportError("the converter wrote no file")
    return kind


def convert_in_tensorflow(
    keras_path: str | os.PathLike, path: str | os.PathLike, weights: str = "auto"
) -> tuple[str, bool | None]:
    """``to_litert`` and ``xnnpack_agrees`` for the ``.keras`` file at ``keras_path``, in a
    child process on Keras's TensorFlow backend: Keras exports to LiteRT from TensorFlow only,
    so a model trained under JAX converts there. Returns ``(weight storage, xnnpack)``."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    command = [sys.executable, "-m", "imgfix.export", str(keras_path), str(path), weights]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise ExportError(lines[-1] if lines else f"the converter exited {done.returncode}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["weights"], answer["xnnpack"]


def _main(keras_path: str, path: str, weights: str) -> None:
    """``python -m imgfix.export KERAS TFLITE WEIGHTS``: the child of ``convert_in_tensorflow``."""
    import json
    import sys

    import keras

    import imgfix.models  # noqa: F401  (registers the custom layers)

    try:
        model = keras.saving.load_model(keras_path, safe_mode=True, compile=False)
        stored = to_litert(model, path, weights)
    except ExportError as exc:
        sys.exit(str(exc))
    print(json.dumps({"weights": stored, "xnnpack": xnnpack_agrees(model, path)}))


XNNPACK_BATCHES = (1, 6, 8, 16)


def xnnpack_agrees(model: Any, path: str | os.PathLike, repeats: int = 3) -> bool | None:
    """Whether LiteRT's default XNNPACK delegate runs the ``.tflite`` at ``path`` as Keras runs
    ``model``: random inputs at a few batch sizes, each invoked ``repeats`` times on one
    interpreter. None when an input has a run-time size besides the batch (an inpainter),
    which this cannot sample.

    Why: for the concept generators (float16 weights, a 1,652-wide condition), XNNPACK gave
    the right image on an interpreter's first invoke and a wrong one (all white) on later
    invokes at some batch sizes, while LiteRT without XNNPACK, or with float32 weights, did
    not. A model that fails this runs without the delegate (``runtime.LiteRTModel``). None
    too where LiteRT is not installed."""
    import numpy as np

    from imgfix.runtime import litert_installed, quiet_native_stderr

    if not litert_installed():  # a platform without the wheel runs TensorFlow anyway
        return None
    from ai_edge_litert.interpreter import Interpreter

    shapes = [tuple(t.shape[1:]) for t in model.inputs]
    if any(d is None for shape in shapes for d in shape):
        return None
    if any(not str(t.dtype).startswith("float") for t in model.inputs):
        return None
    rng = np.random.default_rng(0)
    for batch in XNNPACK_BATCHES:
        arrays = [rng.standard_normal((batch, *shape)).astype(np.float32) for shape in shapes]
        reference = np.asarray(model(arrays if len(arrays) > 1 else arrays[0]))
        interpreter = Interpreter(model_path=str(path), num_threads=2)
        runner = interpreter.get_signature_runner()
        named = dict(zip([t.name for t in model.inputs], arrays, strict=True))
        for _ in range(repeats):
            with quiet_native_stderr():  # the first invoke announces the XNNPACK delegate
                out = np.asarray(next(iter(runner(**named).values())))
            if np.abs(out - reference).max() > 1e-2 * (1.0 + np.abs(reference).max()):
                return False
    return True


if __name__ == "__main__":
    import sys

    _main(*sys.argv[1:4])
