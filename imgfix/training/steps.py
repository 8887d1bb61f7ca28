"""The two-player (GAN) training step of the running Keras backend: one module per backend,
the same losses (``TwoPlayerModel.player_losses``) in each."""

from __future__ import annotations

from typing import Any

import keras

BACKENDS = ("tensorflow", "jax")


def train_step(model: Any, *args: Any) -> Any:
    """``model.train_step``'s body: ``(data)`` under TensorFlow, ``(state, data)`` under JAX,
    as Keras's trainer of that backend calls it."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from imgfix.training import steps_tensorflow as impl
    elif backend == "jax":
        from imgfix.training import steps_jax as impl
    else:
        raise NotImplementedError(
            f"imgfix trains its GANs on {' and '.join(BACKENDS)}, not on {backend}"
        )
    return impl.train_step(model, *args)
