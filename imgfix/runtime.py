"""Where and how models run: the LiteRT runtime on the CPU, TensorFlow on a GPU and for training.

``imgfix inpaint`` and ``generate`` run a model's ``.tflite`` file with LiteRT
(``ai-edge-litert``) when they run on the CPU: it starts in a tenth of a second, where importing
TensorFlow takes about five. TensorFlow runs the ``.keras`` file instead when a GPU is asked for
or found (``--device gpu``, or ``auto`` with an NVIDIA device node present), when
``--runtime tensorflow`` is given, for a model without a ``.tflite``, and where no LiteRT wheel
exists. ``choose`` makes that decision without importing either, and says why.

Both runtimes are wrapped to look the same to the pipelines: a model is called with NumPy
arrays, in its input order or by input name, and returns a NumPy array (``LiteRTModel``,
``KerasModel``).

TensorFlow's native code prints start-up chatter (oneDNN, CUDA probing) through absl before its
own log level applies, and LiteRT announces its XNNPACK delegate; that goes to file descriptor
2, so it is captured while they start and replayed only if starting fails.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.metadata
import importlib.util
import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from imgfix.errors import ImgfixError, InputError

DEVICES = ("auto", "cpu", "gpu")
RUNTIMES = ("auto", "litert", "tensorflow")
MAX_THREADS = 256

_configured: str | None = None
_warned: set[str] = set()


@dataclass(frozen=True)
class Settings:
    """The user's choices: ``--device``, ``--runtime``, ``--threads`` (None: one per CPU the
    process may use) and ``--seed``."""

    device: str = "auto"
    runtime: str = "auto"
    threads: int | None = None
    seed: int | None = None


@dataclass(frozen=True)
class Choice:
    """The runtime that will run models, and why, in words for ``imgfix info``."""

    runtime: str  # "litert" or "tensorflow"
    reason: str


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's count)."""
    with contextlib.suppress(AttributeError, OSError):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def threads(settings: Settings) -> int:
    """The thread count LiteRT gets: ``--threads``, else one per usable CPU (LiteRT's own
    default is a single thread)."""
    if settings.threads is None:
        return cpu_count()
    if not 1 <= settings.threads <= MAX_THREADS:
        raise InputError(f"--threads {settings.threads}: choose between 1 and {MAX_THREADS}")
    return settings.threads


def gpu_device() -> str | None:
    """An NVIDIA GPU's device node or driver entry, found without importing TensorFlow; None
    when there is none, or when ``CUDA_VISIBLE_DEVICES`` hides every GPU."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return None
    found = sorted(glob.glob("/dev/nvidia[0-9]*"))
    found = found or sorted(glob.glob("/proc/driver/nvidia/gpus/*"))
    return found[0] if found else None


def litert_installed() -> bool:
    return importlib.util.find_spec("ai_edge_litert") is not None


def choose(settings: Settings) -> Choice:
    """Which runtime runs inference under these settings, and why; imports neither."""
    if settings.device not in DEVICES:
        raise InputError(f"--device {settings.device}: must be one of {', '.join(DEVICES)}")
    if settings.runtime not in RUNTIMES:
        raise InputError(f"--runtime {settings.runtime}: must be one of {', '.join(RUNTIMES)}")
    if settings.runtime == "litert" and settings.device == "gpu":
        raise InputError("--runtime litert runs on the CPU only; drop --device gpu")
    if settings.runtime == "tensorflow":
        return Choice("tensorflow", "--runtime tensorflow")
    if settings.device == "gpu" and settings.runtime == "auto":
        return Choice("tensorflow", "--device gpu: TensorFlow runs the GPU")
    if settings.device == "auto" and settings.runtime == "auto":
        node = gpu_device()
        if node is not None:
            return Choice("tensorflow", f"--device auto found an NVIDIA GPU ({node})")
    if not litert_installed():
        if settings.runtime == "litert":
            raise ImgfixError(
                "--runtime litert: ai-edge-litert is not installed (no wheel for "
                f"{platform.system()} {platform.machine()}?); use --runtime tensorflow"
            )
        return Choice(
            "tensorflow",
            f"ai-edge-litert is not installed ({platform.system()} {platform.machine()})",
        )
    why = "--runtime litert" if settings.runtime == "litert" else f"--device {settings.device}"
    if settings.device == "auto" and settings.runtime == "auto":
        why = "no GPU found"
    return Choice("litert", f"{why}: LiteRT runs the .tflite files on the CPU")


def warn_once(key: str, text: str) -> None:
    """A warning on stderr, printed once per process for each ``key``."""
    if key not in _warned:
        _warned.add(key)
        print(f"imgfix: warning: {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_native_stderr(replay: bool = True) -> Iterator[None]:
    """Send fd 2 to a temporary file for the duration; replay it if the block raises (unless
    ``replay`` is False: the caller reports the failure itself)."""
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
            if replay:
                sink.seek(0)
                with contextlib.suppress(OSError):
                    os.write(2, sink.read())
            raise
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


# --- the two runtimes, one interface -----------------------------------------------------------


class LiteRTModel:
    """A ``.tflite`` model in one LiteRT interpreter, called as ``model(array, ...)`` in the
    Keras model's input order (``inputs``, which the card records) or ``model(name=array)``.

    The input tensors are resized, and the interpreter's tensors allocated again, only when a
    call's shapes differ from the last call's, so a batch of same-sized crops plans once. One
    instance serves every call of a process; it is not thread-safe.
    """

    runtime = "litert"

    def __init__(
        self,
        path: str | os.PathLike,
        num_threads: int,
        inputs: list[str] | None = None,
        xnnpack: bool = True,
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        # Without XNNPACK for a model its export found it runs wrongly (export.xnnpack_agrees).
        resolver = (
            OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        self.xnnpack = xnnpack
        self._make = lambda: Interpreter(
            model_path=str(path), num_threads=num_threads, experimental_op_resolver_type=resolver
        )
        self.interpreter = self._make()
        self.path = Path(path)
        runner = self.interpreter.get_signature_runner()
        self._inputs = dict(runner.get_input_details())
        if inputs is not None and sorted(inputs) != sorted(self._inputs):
            raise ImgfixError(f"{self.path.name}: inputs {sorted(self._inputs)}, card: {inputs}")
        self.input_names = list(inputs or self._inputs)
        outputs = list(runner.get_output_details().values())
        if len(outputs) != 1:
            raise ImgfixError(f"{self.path.name}: expected one output, found {len(outputs)}")
        self._output = outputs[0]["index"]
        self._shapes: dict[str, tuple[int, ...]] = {}

    def release(self) -> None:
        """Free the interpreter's working memory (about 300 MB after a 512 x 512 crop of the
        inpainter); the next call starts a new interpreter."""
        self.interpreter = None
        self._shapes = {}

    def __call__(self, *arrays: np.ndarray, **named: np.ndarray) -> np.ndarray:
        named = _named(self.input_names, arrays, named)
        if self.interpreter is None:
            self.interpreter = self._make()
        shapes = {name: tuple(np.shape(a)) for name, a in named.items()}
        if shapes != self._shapes:
            for name, shape in shapes.items():
                self.interpreter.resize_tensor_input(self._inputs[name]["index"], shape)
            with quiet_native_stderr():  # the first allocation announces the XNNPACK delegate
                self.interpreter.allocate_tensors()
            self._shapes = shapes
        for name, array in named.items():
            detail = self._inputs[name]
            self.interpreter.set_tensor(
                detail["index"], np.ascontiguousarray(array, dtype=detail["dtype"])
            )
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output)


class KerasModel:
    """A Keras model behind the same interface as ``LiteRTModel``: NumPy arrays in (in input
    order, or by name), one NumPy array out, run in inference mode."""

    runtime = "tensorflow"

    def __init__(self, model: Any) -> None:
        self.model = model
        self.input_names = [t.name for t in model.inputs]

    def release(self) -> None:
        """Nothing to free: TensorFlow keeps its own pools."""

    def __call__(self, *arrays: np.ndarray, **named: np.ndarray) -> np.ndarray:
        from keras import ops

        named = _named(self.input_names, arrays, named)
        inputs = [named[name] for name in self.input_names]
        result = self.model(inputs if len(inputs) > 1 else inputs[0], training=False)
        return ops.convert_to_numpy(result)


def _named(names: list[str], arrays: tuple, named: dict) -> dict:
    """Inputs by name, from positional arrays (in ``names``' order) or keywords."""
    if arrays and named:
        raise ValueError("pass the inputs in order or by name, not both")
    if arrays:
        if len(arrays) != len(names):
            raise ValueError(f"{len(arrays)} inputs; the model takes {names}")
        return dict(zip(names, arrays, strict=True))
    if set(named) != set(names):
        raise ValueError(f"inputs {sorted(named)}; the model takes {names}")
    return named


def trim_heap() -> None:
    """Hand freed heap memory back to the OS (glibc's ``malloc_trim``; elsewhere a no-op).
    Decoding a 12 MP photo and its mask frees about 35 MB that glibc would otherwise keep
    mapped through the fill, where it would add to the peak."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)


def batched(model: Any, batch_size: int, *arrays: np.ndarray) -> np.ndarray:
    """``model(*arrays)`` over slices of at most ``batch_size`` rows, concatenated: bounded
    memory for long inputs (1,652 prompts, -n 1024)."""
    total = len(arrays[0])
    if total <= batch_size:
        return model(*arrays)
    parts = [
        model(*(a[start : start + batch_size] for a in arrays))
        for start in range(0, total, batch_size)
    ]
    return np.concatenate(parts)


def load(
    name: str, zoo: str | os.PathLike | None, kind: str, settings: Settings | None = None
) -> tuple[LiteRTModel | KerasModel, dict]:
    """Zoo model ``name`` ready to call on the runtime ``choose`` picks, after checking its kind
    and the sha256 of the file that runs. A model without a ``.tflite`` runs on TensorFlow, with
    a warning (once)."""
    from imgfix import zoo as model_zoo

    settings = settings or Settings()
    choice = choose(settings)
    card = model_zoo.read_card(name, zoo, kind)
    if choice.runtime == "litert":
        path = model_zoo.runtime_file(name, zoo)
        if path is not None:
            xnnpack = card["runtime"].get("xnnpack", True) is not False
            return LiteRTModel(
                path, threads(settings), card["runtime"].get("inputs"), xnnpack
            ), card
        why = (card.get("runtime") or {}).get("error") or "it has no .tflite file"
        if settings.runtime == "litert":
            raise ImgfixError(
                f"--runtime litert: model '{name}' cannot run on LiteRT: {why} (imgfix zoo "
                f"export-runtime {name} makes one, or use --runtime tensorflow)"
            )
        warn_once(
            f"no-litert:{name}",
            f"model '{name}' runs on TensorFlow, slower to start: {why} "
            f"(imgfix zoo export-runtime {name} makes one)",
        )
    setup(settings.device, settings.seed, settings.threads)
    model, card = model_zoo.load_model(name, zoo, kind)
    return KerasModel(model), card


# --- TensorFlow ---------------------------------------------------------------------------------


TRAINING_BACKENDS = ("tensorflow", "jax")


def choose_backend(backend: str) -> None:
    """Make ``backend`` Keras's backend (``--backend``): it must be set before Keras is first
    imported, which no command does before its options are read."""
    if backend not in TRAINING_BACKENDS:
        raise InputError(f"--backend {backend}: must be one of {', '.join(TRAINING_BACKENDS)}")
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise ImgfixError(
                f"--backend {backend}: Keras has already started on {keras.backend.backend()}"
            )
        return
    os.environ["KERAS_BACKEND"] = backend


def import_tensorflow() -> ModuleType:
    """The ``tensorflow`` module, imported without its start-up noise (no device choice)."""
    # 3 also hides the "E0000" lines that oneDNN and Grappler print for harmless fallbacks
    # (half-precision tables, optimizer rewrites); set the variable yourself to see them.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with quiet_native_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe logs at first use; keep it captured
    tf.get_logger().setLevel("ERROR")
    with contextlib.suppress(ImportError):
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    return tf


def setup(device: str = "auto", seed: int | None = None, threads: int | None = None) -> ModuleType:
    """Import TensorFlow without its start-up noise, choose the device and seed everything;
    ``threads`` caps TensorFlow's CPU thread pools when given.

    Must run before any model is built: TensorFlow fixes its visible devices at first use.
    Returns the ``tensorflow`` module.
    """
    global _configured
    if device not in DEVICES:
        raise InputError(f"--device {device}: must be one of {', '.join(DEVICES)}")
    tf = import_tensorflow()
    if _configured is None:
        gpus = tf.config.list_physical_devices("GPU")
        if device == "gpu" and not gpus:
            raise ImgfixError(
                "--device gpu: TensorFlow sees no GPU (no CUDA driver, or tensorflow was "
                "installed without CUDA: pip install 'imgfix[gpu]'); use --device cpu or auto"
            )
        try:
            if threads is not None:
                with contextlib.suppress(RuntimeError):  # too late once TensorFlow has run ops
                    tf.config.threading.set_intra_op_parallelism_threads(threads)
                    tf.config.threading.set_inter_op_parallelism_threads(threads)
            if device == "cpu":
                tf.config.set_visible_devices([], "GPU")
            else:
                for gpu in gpus:
                    tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as exc:
            raise ImgfixError(f"--device {device}: TensorFlow has already started ({exc})") from exc
        _configured = "cpu" if device == "cpu" or not gpus else "gpu"
    elif device != "auto" and device != _configured:
        # auto takes whatever runs; cpu and gpu must match what TensorFlow already uses.
        raise ImgfixError(f"--device {device}: TensorFlow already runs on the {_configured}")
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


def device_info(zoo: str | os.PathLike | None = None, settings: Settings | None = None) -> dict:
    """Versions, devices, the inference runtime and why, and paths: what a bug report needs."""
    import keras
    import PIL

    import imgfix
    from imgfix import zoo as model_zoo

    settings = settings or Settings()
    choice = choose(settings)
    tf = import_tensorflow()
    build = {}
    with contextlib.suppress(Exception):
        build = dict(tf.sysconfig.get_build_info())
    gpus = tf.config.list_physical_devices("GPU")
    visible = tf.config.get_visible_devices("GPU")
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "imgfix": imgfix.__version__,
        "inference_runtime": choice.runtime,
        "inference_runtime_reason": choice.reason,
        "threads": threads(settings) if choice.runtime == "litert" else settings.threads,
        "litert": importlib.metadata.version("ai-edge-litert") if litert_installed() else None,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "cuda_build": build.get("cuda_version") or None,
        "cudnn_build": build.get("cudnn_version") or None,
        "gpu_device_node": gpu_device(),
        "devices": [d.name for d in tf.config.list_physical_devices("CPU")]
        + [_gpu_name(tf, g) for g in gpus],
        "device": _gpu_name(tf, visible[0]) if visible else "CPU",
        "training": training_info(),
        "zoo": str(model_zoo.zoo_dir(zoo)),
    }


def training_info() -> dict:
    """What ``imgfix train`` would run on: the Keras backend (``--backend``), its devices
    (``--devices all`` takes them all) and the precision (``--precision``)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devices = [f"{d.platform}:{d.id}" for d in jax.local_devices()]
        version = jax.__version__
    else:
        tf = import_tensorflow()
        devices = [d.name for d in tf.config.get_visible_devices()]
        version = tf.__version__
    return {
        "backend": backend,
        "backend_version": version,
        "devices": devices,
        "precision": keras.config.dtype_policy().name,
    }
