"""``--devices N|all`` and ``--processes``: data parallelism on JAX, on one machine or several.

Keras's ``DataParallel`` distribution replicates the variables on every device and splits each
global batch across them; the jitted step (``steps_jax``, or Keras's own) then averages the
losses over the global batch, so the figures and the updates are those of one device taking the
whole batch. On TensorFlow ``--devices N`` enters ``MirroredStrategy``: each replica computes its
part of the batch, the optimizers sum the replicas' gradients, and each step takes its
replica's share of the loss, so the update is again that of the whole batch.

Several processes (one per machine, ``--coordinator HOST:PORT --processes N --process-id K``)
join JAX's multi-process runtime (``jax.distributed``) before anything else runs. Every process
reads the same data with the same seed, and Keras hands each its share of every global batch,
so N processes train as one process on the same global batch would. Every process takes part in
each computation, validation included; only the chief (process 0) writes checkpoints, logs and
zoo entries, and the chief's clock and signals decide when all of them checkpoint and stop.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from imgfix.errors import ImgfixError, InputError


@dataclass(frozen=True)
class Cluster:
    """``--coordinator``, ``--processes`` and ``--process-id``: this process's place in a run."""

    coordinator: str
    processes: int
    process_id: int


def parse_cluster(
    coordinator: str | None, processes: int | None, process_id: int | None
) -> Cluster | None:
    """None for a run in one process; else the checked ``Cluster``."""
    if processes in (None, 1) and coordinator is None:
        return None
    if coordinator is None or processes is None or process_id is None:
        raise InputError("--coordinator, --processes and --process-id go together")
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--coordinator {coordinator}: give HOST:PORT, e.g. 10.0.0.1:1234")
    if processes < 1 or not 0 <= process_id < processes:
        raise InputError(f"--process-id {process_id}: choose between 0 and {processes - 1}")
    return Cluster(coordinator, processes, process_id)


def join_cluster(cluster: Cluster | None) -> None:
    """Join the run's other processes (JAX only). Must come before any JAX computation."""
    if cluster is None or cluster.processes == 1:
        return
    import keras

    if keras.backend.backend() != "jax":
        raise ImgfixError(
            f"--processes {cluster.processes}: training across processes runs on JAX "
            "(--backend jax)"
        )
    import jax

    # The CPU's collectives (on GPUs JAX uses NCCL whatever this says).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=cluster.coordinator,
            num_processes=cluster.processes,
            process_id=cluster.process_id,
        )
    except Exception as exc:  # RuntimeError or XlaRuntimeError, with the reason
        raise ImgfixError(
            f"--coordinator {cluster.coordinator}: cannot join the run as process "
            f"{cluster.process_id} of {cluster.processes} ({str(exc).splitlines()[0][:160]})"
        ) from None
    # The first collective connects the processes, and gloo says so on stdout, which is for
    # results (--json): connect now, with stdout sent to stderr.
    from jax.experimental import multihost_utils

    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        multihost_utils.sync_global_devices("imgfix: every process joined")
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def multi_process() -> bool:
    """True in a run spread over several processes (``--processes``)."""
    return "jax" in sys.modules and sys.modules["jax"].process_count() > 1


def is_chief() -> bool:
    """True in the process that writes files: process 0, or the only one."""
    return not multi_process() or sys.modules["jax"].process_index() == 0


def agree(flags: list[bool]) -> list[bool]:
    """The chief's ``flags`` on every process (each process passes its own; one collective)."""
    if not multi_process():
        return flags
    from jax.experimental import multihost_utils

    chief = multihost_utils.broadcast_one_to_all(np.asarray(flags, dtype=np.int32))
    return [bool(f) for f in np.asarray(chief)]


def predict(model, inputs, batch_size: int) -> np.ndarray:
    """``model.predict`` on NumPy inputs. Across processes Keras's ``predict`` takes only a
    ``tf.data`` input it can shard, so every process calls the model on the same batches."""
    if not multi_process():
        return model.predict(inputs, batch_size=batch_size, verbose=0)
    import keras

    many = isinstance(inputs, list | tuple)
    count = len(inputs[0]) if many else len(inputs)
    outputs = []
    for start in range(0, count, batch_size):
        part = slice(start, start + batch_size)
        batch = [x[part] for x in inputs] if many else inputs[part]
        outputs.append(keras.ops.convert_to_numpy(model(batch, training=False)))
    return np.concatenate(outputs)


def parse_devices(text: str) -> int | None:
    """``"all"`` -> None (every device), else a positive count."""
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"--devices {text}: give a count of at least 1, or all")
    return int(text)


def use_devices(text: str, batch_size: int) -> int:
    """Train on ``text`` devices (``--devices``; per process with ``--processes``); returns
    how many in all. One device in one process changes nothing."""
    import keras

    wanted = parse_devices(text)
    if wanted == 1 and not multi_process():
        return 1
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _mirror(text, wanted, batch_size)
    if backend != "jax":
        raise ImgfixError(f"--devices {text}: data parallelism runs on JAX or TensorFlow")
    import jax

    local = jax.local_devices()
    if multi_process():
        if wanted not in (None, len(local)):
            raise InputError(
                f"--devices {text}: across processes each trains on all its {len(local)} "
                "device(s); use --devices all"
            )
        devices = jax.devices()  # every process's
    else:
        count = len(local) if wanted is None else wanted
        if count > len(local):
            raise ImgfixError(
                f"--devices {text}: JAX sees {len(local)} device(s): "
                + ", ".join(str(d) for d in local)
            )
        devices = local[:count]
    if batch_size % len(devices):
        raise InputError(
            f"--batch-size {batch_size}: the global batch must split evenly over "
            f"{len(devices)} devices"
        )
    if len(devices) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)


_strategy_scope = None  # the MirroredStrategy's scope, entered for the rest of the process


def _mirror(text: str, wanted: int | None, batch_size: int) -> int:
    """TensorFlow: ``MirroredStrategy`` over the first N GPUs (or logical CPUs where there is
    no GPU), entered for the rest of the process, so that every model built or loaded from now
    on is mirrored and ``fit`` splits each global batch over the replicas; the steps take
    each replica's share of the loss (``models.two_player.replica_share``)."""
    global _strategy_scope
    from imgfix.runtime import import_tensorflow

    tf = import_tensorflow()
    kind = "GPU" if tf.config.list_logical_devices("GPU") else "CPU"
    names = [d.name for d in tf.config.list_logical_devices(kind)]
    count = len(names) if wanted is None else wanted
    if count > len(names):
        raise ImgfixError(
            f"--devices {text}: TensorFlow sees {len(names)} device(s): {', '.join(names)}"
        )
    if count == 1:
        return 1
    if batch_size % count:
        raise InputError(
            f"--batch-size {batch_size}: the global batch must split evenly over {count} devices"
        )
    _strategy_scope = tf.distribute.MirroredStrategy(names[:count]).scope()
    _strategy_scope.__enter__()
    return count


def mirrored() -> int:
    """Replicas of TensorFlow's ``MirroredStrategy`` (``--devices N``), else 1."""
    if _strategy_scope is None:
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync
