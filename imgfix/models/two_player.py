"""The base of the GANs: a generator and a critic trained against each other, each with its own
optimizer, on any Keras backend.

A subclass says *what* to minimise, in ``keras.ops`` only: ``player_losses`` returns the
generator's loss, the critic's loss and the figures to log. *How* the two gradients are taken
and applied is the backend's business, in one small module per backend
(``imgfix.training.steps_tensorflow``, ``imgfix.training.steps_jax``), so no model holds a
gradient tape.

Keras's JAX trainer threads only ``model.optimizer``'s variables through its jitted state, so
``compile`` makes that optimizer a ``PlayerOptimizers``: a ``MultiOptimizer`` over the two
players' own optimizers, whose variables are the ones the state must carry. It saves only its
own counters, since ``g_optimizer`` and ``d_optimizer`` are saved under their own names: a
checkpoint is the same file whichever backend wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras


def replica_share(loss):
    """A replica's part of a loss whose gradients TensorFlow's ``MirroredStrategy`` sums over
    the replicas (``--devices N`` on TensorFlow): the loss / N, so that the update is the one
    of the global batch's mean. Elsewhere (one device; JAX, which sees the global batch) the
    loss itself."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            return loss / replicas
    return loss


class PlayerOptimizers(keras.optimizers.MultiOptimizer):
    """The generator's and the critic's optimizers as one, for the JAX trainer's state."""

    def __init__(self, generator_optimizer, critic_optimizer, critic_variables):
        critic = {id(v) for v in critic_variables}
        super().__init__(
            lambda v: critic_optimizer if id(v) in critic else generator_optimizer,
            name="players",
        )
        self.player_optimizers = (generator_optimizer, critic_optimizer)

    def finalize_variable_values(self, var_list):
        # fit() hands every trainable weight; the EMA copy of a generator belongs to no player.
        known = [v for v in var_list if self._var_key(v) in self._var_to_optimizer_idx]
        super().finalize_variable_values(known)

    def save_own_variables(self, store):
        for i, variable in enumerate(self._variables):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        if len(store.keys()) == len(self._variables):  # else a checkpoint of an older layout
            for i, variable in enumerate(self._variables):
                variable.assign(store[str(i)])


class TwoPlayerModel(keras.Model):
    """``generator`` and ``discriminator`` with ``g_optimizer`` and ``d_optimizer``; subclasses
    define ``player_losses`` and may override ``generator_variables`` and ``moving_averages``.

    ``d_steps`` critic updates come before each generator update (WGAN's n_critic): the first
    ``d_steps - 1`` train the critic alone, on the same batch with fresh noise, and the last is
    the joint step, whose figures are logged.
    """

    d_steps: int = 1

    def generator_variables(self) -> list:
        return list(self.generator.trainable_variables)

    def critic_variables(self) -> list:
        return list(self.discriminator.trainable_variables)

    def trains_critic(self) -> bool:
        """False when the critic is neither run nor trained (an adversarial weight of 0)."""
        return True

    def player_losses(self, data: Any, input_gradient: Callable) -> tuple[Any, Any, dict]:
        """``(generator loss, critic loss, figures)`` for one batch, in ``keras.ops``.
        ``input_gradient(fn, x)`` is the gradient of ``sum(fn(x))`` with respect to ``x``
        (R1), differentiable again by the outer step."""
        raise NotImplementedError

    def moving_averages(self) -> tuple[list, list, Any]:
        """``(averages, variables, decay)``: after each update, every average becomes
        ``decay * average + (1 - decay) * variable``. None by default."""
        return [], [], 0.0

    def log_figures(self, values: dict) -> dict:
        """Update the trackers with this step's figures; returns the logs."""
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.g_optimizer.iterations))

    def compile(self, **kwargs):
        players = PlayerOptimizers(self.g_optimizer, self.d_optimizer, self.critic_variables())
        players.build(self.generator_variables() + self.critic_variables())
        super().compile(optimizer=players, **kwargs)

    def get_compile_config(self):
        # The optimizers are part of the model's own config; there is nothing to re-compile.
        return None

    def train_step(self, *args):
        from imgfix.training import steps

        return steps.train_step(self, *args)
