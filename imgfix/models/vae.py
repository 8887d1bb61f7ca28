"""Conditional VAE: ``encoder(x, c) -> (mean, log_var)``, ``decoder(z, c) -> x``.

The decoder is ``cgan.build_generator``, so a trained VAE can seed the GAN. Training overrides
only ``compute_loss`` (keras.io's VAE overrides ``train_step``), so ``fit`` runs unchanged on
TensorFlow, JAX or PyTorch.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from imgfix.models.cgan import LOG_VAR_LIMIT, _blocks, build_generator, kl_divergence
from imgfix.models.layers import float32_outputs
from imgfix.models.two_player import replica_share


def build_encoder(
    image_size: int = 48, z_dim: int = 64, cond_dim: int = 128, filters: int = 32
) -> keras.Model:
    """``[image in [0, 1], condition] -> [mean, log_var]`` of the posterior over ``z``."""
    image = keras.Input((image_size, image_size, 3), name="image")
    cond = keras.Input((cond_dim,), name="condition")
    x = layers.Rescaling(2.0, offset=-1.0)(image)
    width = filters
    for i in range(_blocks(image_size)):
        x = layers.Conv2D(width, 4, strides=2, padding="same", name=f"conv{i}")(x)
        x = layers.LeakyReLU(0.2)(x)
        width *= 2
    x = layers.Flatten()(x)
    x = layers.Concatenate()([x, layers.Dense(128, activation="gelu", name="cond_mlp")(cond)])
    x = layers.Dense(256, activation="gelu", name="hidden")(x)
    mean = layers.Dense(z_dim, name="mean")(x)
    log_var = layers.Dense(z_dim, kernel_initializer="zeros", name="log_var")(x)
    return keras.Model([image, cond], float32_outputs([mean, log_var]), name="encoder")


@keras.saving.register_keras_serializable(package="imgfix")
class ConditionalVAE(keras.Model):
    """The ELBO: a summed per-pixel binary cross-entropy (as keras.io's VAE) plus
    ``beta * KL``, where ``beta`` rises linearly from 0 to ``kl_weight`` over ``warmup_steps``
    so the decoder learns to use ``z`` before the prior pulls it in."""

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        kl_weight: float = 1.0,
        warmup_steps: int = 2000,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.kl_weight, self.warmup_steps, self.seed = kl_weight, warmup_steps, seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Counted by the model itself, so the warm-up survives --resume and works under jit.
        self.seen = self.add_weight(shape=(), initializer="zeros", trainable=False, name="seen")
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "rec", "kl", "beta")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def step(self) -> int:
        return int(ops.convert_to_numpy(self.seen))

    def call(self, inputs, training=False):
        image, cond = inputs
        mean, log_var = self.encoder([image, cond], training=training)
        log_var = ops.clip(log_var, -LOG_VAR_LIMIT, LOG_VAR_LIMIT)
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        z = mean + ops.exp(0.5 * log_var) * noise
        return self.decoder([z, cond], training=training), mean, log_var

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        image, _ = x
        rebuilt, mean, log_var = y_pred
        rec = ops.mean(
            ops.sum(keras.losses.binary_crossentropy(image, rebuilt, axis=-1), axis=(1, 2))
        )
        kl = kl_divergence(mean, log_var)
        progress = ops.minimum(1.0, (self.seen + 1.0) / max(self.warmup_steps, 1))
        beta = self.kl_weight * progress
        loss = rec + beta * kl
        if training:
            self.seen.assign(self.seen + 1.0)
        for name, value in (("loss", loss), ("rec", rec), ("kl", kl), ("beta", beta)):
            self.trackers[name].update_state(value)
        return replica_share(loss)  # as Keras's own losses do under MirroredStrategy

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "kl_weight": self.kl_weight,
            "warmup_steps": self.warmup_steps,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


__all__ = ["ConditionalVAE", "build_encoder", "build_generator"]
