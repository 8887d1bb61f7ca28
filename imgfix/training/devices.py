"""``--devices N|all``: data parallelism over the local devices, on JAX.

Keras's ``DataParallel`` distribution replicates the variables on every device and splits each
global batch across them; the jitted step (``steps_jax``, or Keras's own) then averages the
losses over the global batch, so the figures and the updates are those of one device taking the
whole batch. TensorFlow's ``MirroredStrategy`` would need the custom steps to scale their losses
per replica, and is not wired in yet.
"""

from __future__ import annotations

from imgfix.errors import ImgfixError, InputError


def parse_devices(text: str) -> int | None:
    """``"all"`` -> None (every device), else a positive count."""
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"--devices {text}: give a count of at least 1, or all")
    return int(text)


def use_devices(text: str, batch_size: int) -> int:
    """Train on ``text`` devices (``--devices``); returns how many. One device changes nothing."""
    import keras

    wanted = parse_devices(text)
    if wanted == 1:
        return 1
    backend = keras.backend.backend()
    if backend != "jax":
        if wanted is None:
            return 1  # all of TensorFlow's: it places the model on its one chosen device
        raise ImgfixError(
            f"--devices {text}: data parallelism runs on JAX (--backend jax); on {backend} "
            "imgfix trains on one device"
        )
    import jax

    devices = jax.devices()
    count = len(devices) if wanted is None else wanted
    if count > len(devices):
        raise ImgfixError(
            f"--devices {text}: JAX sees {len(devices)} device(s): "
            + ", ".join(str(d) for d in devices)
        )
    if batch_size % count:
        raise InputError(
            f"--batch-size {batch_size}: must split evenly over {count} devices (--devices {text})"
        )
    if count > 1:
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices[:count])
        )
    return count
