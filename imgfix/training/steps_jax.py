"""The GAN step on JAX, stateless as Keras's JAX trainer wants it (the keras.io guide
"Customizing what happens in fit() with JAX"): the losses are a pure function of the variables'
values, ``jax.value_and_grad`` differentiates it once per player, and each player's optimizer
applies its gradients with ``stateless_apply``.

The state is Keras's ``(trainable, non_trainable, optimizer, metrics)``. Its optimizer part
holds both players' optimizer variables, because the model's optimizer is a
``PlayerOptimizers`` over them (``imgfix.models.two_player``).
"""

from __future__ import annotations

from typing import Any

import jax
from keras import ops
from keras.src.backend import StatelessScope


def input_gradient(fn, x):
    """d sum(fn(x)) / dx, itself differentiable by the enclosing ``jax.grad`` (R1)."""
    return jax.grad(lambda v: ops.sum(fn(v)))(x)


def _scope(*pairs: tuple[list, list]) -> StatelessScope:
    """A scope in which each listed variable reads the value given beside it."""
    return StatelessScope(
        state_mapping=[m for refs, values in pairs for m in zip(refs, values, strict=True)]
    )


def _current(scope: StatelessScope, variables: list, before: list) -> list:
    """The values ``variables`` hold at the end of ``scope``: assigned there, or as before."""
    now = [scope.get_current_value(v) for v in variables]
    return [b if n is None else n for n, b in zip(now, before, strict=True)]


def _positions(model: Any) -> tuple[list[int], list[int]]:
    """Where the generator's and the critic's variables sit in ``model.trainable_variables``."""
    index = {id(v): i for i, v in enumerate(model.trainable_variables)}
    g = [index[id(v)] for v in model.generator_variables()]
    d = [index[id(v)] for v in model.critic_variables()]
    return g, d


def _split(model: Any, optimizer_values: list) -> tuple[list, list, list]:
    """The optimizer state as (the wrapper's own counters, generator's, critic's)."""
    players = model.optimizer
    own = len(players.variables) - sum(len(o.variables) for o in players.optimizers)
    head, rest = optimizer_values[:own], optimizer_values[own:]
    parts = {}
    for inner in players.optimizers:
        parts[id(inner)], rest = rest[: len(inner.variables)], rest[len(inner.variables) :]
    return head, parts[id(model.g_optimizer)], parts[id(model.d_optimizer)]


def train_step(model: Any, state: tuple, data: Any) -> tuple[dict, tuple]:
    trainable, non_trainable, optimizer_values, metrics_values = state
    data = jax.tree_util.tree_map(ops.convert_to_tensor, data)  # NumPy from tf.data, as arrays
    g_at, d_at = _positions(model)
    head, g_opt, d_opt = _split(model, list(optimizer_values))

    def losses(g_values, d_values, which, base, fixed):
        values = list(base)
        for i, v in zip(g_at, g_values, strict=True):
            values[i] = v
        for i, v in zip(d_at, d_values, strict=True):
            values[i] = v
        pairs = (model.trainable_variables, values), (model.non_trainable_variables, fixed)
        with _scope(*pairs) as scope:
            g_loss, d_loss, figures = model.player_losses(data, input_gradient)
        return (g_loss, d_loss)[which], (
            figures,
            _current(scope, model.non_trainable_variables, fixed),
            _current(scope, model.trainable_variables, values),
        )

    def critic_update(d_values, d_opt, base, fixed):
        """One critic update at ``base``: its new values, optimizer state and what it assigned."""
        (_, (_, fixed, assigned)), d_grads = jax.value_and_grad(
            lambda d: losses(g_values, d, 1, base, fixed), has_aux=True
        )(d_values)
        d_now = [assigned[i] for i in d_at]
        d_values, d_opt = model.d_optimizer.stateless_apply(d_opt, d_grads, d_now)
        for i, v in zip(d_at, d_values, strict=True):
            assigned[i] = v
        return d_values, d_opt, assigned, fixed

    g_values = [trainable[i] for i in g_at]
    d_values = [trainable[i] for i in d_at]
    # The critic alone first (model.d_steps - 1 updates), each pass on the values the last left.
    trainable, non_trainable = list(trainable), list(non_trainable)
    for _ in range(model.d_steps - 1 if model.trains_critic() else 0):
        d_values, d_opt, trainable, non_trainable = critic_update(
            d_values, d_opt, trainable, non_trainable
        )
    # One gradient per player, each with the other player's weights held: under jit, XLA
    # shares the forward pass the two have in common.
    (_, (figures, non_trainable_next, assigned)), g_grads = jax.value_and_grad(
        losses, argnums=0, has_aux=True
    )(g_values, d_values, 0, trainable, non_trainable)
    # A layer may assign its own weights in the forward pass: spectral normalisation stores
    # the normalised kernel. As under TensorFlow, the update applies to what it assigned.
    new = list(assigned)
    if model.trains_critic():  # its pass assigns what the generator's pass assigned
        d_values, d_opt, _, _ = critic_update(d_values, d_opt, trainable, non_trainable)
        for i, v in zip(d_at, d_values, strict=True):
            new[i] = v
    g_now = [assigned[i] for i in g_at]
    g_values, g_opt = model.g_optimizer.stateless_apply(g_opt, g_grads, g_now)
    for i, v in zip(g_at, g_values, strict=True):
        new[i] = v
    non_trainable = list(non_trainable_next)
    new, non_trainable = _moving_averages(model, new, non_trainable, g_opt)

    optimizer_values = [*head, *_join(model, g_opt, d_opt)]
    with _scope((model.metrics_variables, metrics_values)) as scope:
        logs = model.log_figures(figures)
    metrics_values = _current(scope, model.metrics_variables, metrics_values)
    return logs, (new, non_trainable, optimizer_values, metrics_values)


def _join(model: Any, g_opt: list, d_opt: list) -> list:
    by_id = {id(model.g_optimizer): g_opt, id(model.d_optimizer): d_opt}
    return [v for inner in model.optimizer.optimizers for v in by_id[id(inner)]]


def _moving_averages(model: Any, trainable: list, non_trainable: list, g_opt: list):
    """Apply ``model.moving_averages()`` to the new values (the EMA generator)."""
    with _scope(
        (model.trainable_variables, trainable),
        (model.non_trainable_variables, non_trainable),
        (model.g_optimizer.variables, g_opt),
    ):
        averages, variables, decay = model.moving_averages()
        if not averages:
            return trainable, non_trainable
        blended = [
            decay * ops.convert_to_tensor(a) + (1.0 - decay) * ops.convert_to_tensor(v)
            for a, v in zip(averages, variables, strict=True)
        ]
    where = {id(v): ("t", i) for i, v in enumerate(model.trainable_variables)}
    where.update({id(v): ("n", i) for i, v in enumerate(model.non_trainable_variables)})
    lists = {"t": list(trainable), "n": list(non_trainable)}
    for average, value in zip(averages, blended, strict=True):
        kind, i = where[id(average)]
        lists[kind][i] = value
    return lists["t"], lists["n"]
