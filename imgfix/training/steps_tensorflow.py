"""The GAN step on TensorFlow: one forward pass under two gradient tapes, one per player, after
``model.d_steps - 1`` passes that train the critic alone."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from imgfix.models.two_player import replica_share


def input_gradient(fn, x):
    """d sum(fn(x)) / dx, itself differentiable by the enclosing tapes (R1)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(fn(x))
    return tape.gradient(total, x)


def train_step(model: Any, data: Any) -> dict:
    g_vars, d_vars = model.generator_variables(), model.critic_variables()
    for _ in range(model.d_steps - 1 if model.trains_critic() else 0):
        with tf.GradientTape() as d_tape:
            d_loss = replica_share(model.player_losses(data, input_gradient)[1])
        d_grads = d_tape.gradient(d_loss, d_vars)
        model.d_optimizer.apply_gradients(zip(d_grads, d_vars, strict=True))
    with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
        g_loss, d_loss, values = model.player_losses(data, input_gradient)
        # Over N replicas (MirroredStrategy) the optimizers sum the replicas' gradients.
        g_loss, d_loss = replica_share(g_loss), replica_share(d_loss)
    if model.trains_critic():
        d_grads = d_tape.gradient(d_loss, d_vars)
        model.d_optimizer.apply_gradients(zip(d_grads, d_vars, strict=True))
    g_grads = g_tape.gradient(g_loss, g_vars)
    model.g_optimizer.apply_gradients(zip(g_grads, g_vars, strict=True))
    averages, variables, decay = model.moving_averages()
    for average, variable in zip(averages, variables, strict=True):
        average.assign(decay * average + (1.0 - decay) * variable)
    return model.log_figures(values)
