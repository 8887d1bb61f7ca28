"""Starting TensorFlow quietly on the device the user asked for.

Only the commands that run a model call ``setup``, so ``imgfix --help`` and file checks stay fast.
TensorFlow's native code prints start-up chatter (oneDNN, CUDA probing) through absl before its
own log level applies; that goes to file descriptor 2, so it is captured while TensorFlow starts
and replayed only if starting fails.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from imgfix.errors import ImgfixError, InputError

DEVICES = ("auto", "cpu", "gpu")

_configured: str | None = None


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[None]:
    """Send fd 2 to a temporary file for the duration; replay it if the block raises."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            with contextlib.suppress(OSError):
                os.write(2, sink.read())
            raise
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def _import_tensorflow() -> ModuleType:
    # 3 also hides the "E0000" lines that oneDNN and Grappler print for harmless fallbacks
    # (half-precision tables, optimizer rewrites); set the variable yourself to see them.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with _native_stderr_captured():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe logs at first use; keep it captured
    tf.get_logger().setLevel("ERROR")
    with contextlib.suppress(ImportError):
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    return tf


def setup(device: str = "auto", seed: int | None = None) -> ModuleType:
    """Import TensorFlow without its start-up noise, choose the device and seed everything.

    Must run before any model is built: TensorFlow fixes its visible devices at first use.
    Returns the ``tensorflow`` module.
    """
    global _configured
    if device not in DEVICES:
        raise InputError(f"--device {device}: must be one of {', '.join(DEVICES)}")
    tf = _import_tensorflow()
    if _configured is None:
        gpus = tf.config.list_physical_devices("GPU")
        if device == "gpu" and not gpus:
            raise ImgfixError(
                "--device gpu: TensorFlow sees no GPU (no CUDA driver, or tensorflow was "
                "installed without CUDA: pip install 'imgfix[gpu]'); use --device cpu or auto"
            )
        try:
            if device == "cpu":
                tf.config.set_visible_devices([], "GPU")
            else:
                for gpu in gpus:
                    tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as exc:
            raise ImgfixError(f"--device {device}: TensorFlow has already started ({exc})") from exc
        _configured = device
    elif _configured != device:
        raise ImgfixError(f"--device {device}: TensorFlow already runs with --device {_configured}")
    if seed is not None:
        import keras

        keras.utils.set_random_seed(seed)
    return tf


def _gpu_name(tf: ModuleType, gpu: Any) -> str:
    with contextlib.suppress(Exception):
        details = tf.config.experimental.get_device_details(gpu)
        if details.get("device_name"):
            return f"{gpu.name} ({details['device_name']})"
    return gpu.name


def device_info(zoo: str | os.PathLike | None = None) -> dict:
    """Versions, devices and paths: what a bug report needs, in one place."""
    import keras
    import numpy
    import PIL

    import imgfix
    from imgfix import zoo as model_zoo

    tf = _import_tensorflow()
    build = {}
    with contextlib.suppress(Exception):
        build = dict(tf.sysconfig.get_build_info())
    gpus = tf.config.list_physical_devices("GPU")
    visible = tf.config.get_visible_devices("GPU")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "imgfix": imgfix.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "cuda_build": build.get("cuda_version") or None,
        "cudnn_build": build.get("cudnn_version") or None,
        "devices": [d.name for d in tf.config.list_physical_devices("CPU")]
        + [_gpu_name(tf, g) for g in gpus],
        "device": _gpu_name(tf, visible[0]) if visible else "CPU",
        "zoo": str(model_zoo.zoo_dir(zoo)),
    }
