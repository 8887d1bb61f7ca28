"""Text-conditioned GAN: a FiLM-conditioned generator, a projection discriminator, and a
training model with the stabilisers known to work on small data.

``build_generator`` is also the decoder of the conditional VAE (``vae.py``), so a GAN can start
from a trained VAE and keep its encoder as a reconstruction path (VAE-GAN, Larsen et al. 2016):
the encoder gives ``z`` for a real image and the generator must rebuild that image, which ties
shape to the prompt where the adversarial loss alone ties only colour.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from imgfix.models.layers import FiLM, diff_augment, float32_outputs
from imgfix.models.two_player import TwoPlayerModel

BASE_SIZE = 6
"""The generator starts from a 6 x 6 grid and doubles it, so sizes are 6 * 2**k (24, 48, 96)."""


def _blocks(image_size: int) -> int:
    blocks, size = 0, BASE_SIZE
    while size < image_size:
        size, blocks = size * 2, blocks + 1
    if size != image_size:
        raise ValueError(f"image_size must be {BASE_SIZE} * 2**k (24, 48, 96), got {image_size}")
    return blocks


def build_generator(
    image_size: int = 48, z_dim: int = 64, cond_dim: int = 128, filters: int = 32
) -> keras.Model:
    """``[z, condition] -> image in [0, 1]``: upsampling conv blocks, each normalised per
    sample and modulated by the condition (FiLM), so the prompt shapes every scale."""
    z = keras.Input((z_dim,), name="z")
    cond = keras.Input((cond_dim,), name="condition")
    blocks = _blocks(image_size)
    width = filters * 2**blocks
    c = layers.Dense(256, activation="gelu", name="cond_mlp")(cond)
    x = layers.Dense(BASE_SIZE * BASE_SIZE * width, name="seed")(layers.Concatenate()([z, c]))
    x = layers.Reshape((BASE_SIZE, BASE_SIZE, width))(x)
    for i in range(blocks + 1):
        if i:
            x = layers.UpSampling2D(name=f"up{i}")(x)
            width //= 2
        for j in range(2 if i == 1 else 1):
            x = layers.Conv2D(width, 3, padding="same", name=f"conv{i}_{j}")(x)
            x = layers.GroupNormalization(8, center=False, scale=False, name=f"norm{i}_{j}")(x)
            x = FiLM(name=f"film{i}_{j}")([x, c])
            x = layers.Activation("gelu")(x)
    x = layers.Conv2D(3, 3, padding="same", activation="sigmoid", name="to_rgb")(x)
    return keras.Model([z, cond], float32_outputs(x), name="generator")


def _sn_conv(filters: int, kernel: int, strides: int, name: str) -> layers.Layer:
    return layers.SpectralNormalization(
        layers.Conv2D(filters, kernel, strides=strides, padding="same"), name=name
    )


POOLINGS = ("average", "sum")


def build_discriminator(
    image_size: int = 48,
    cond_dim: int = 128,
    filters: int = 32,
    pooling: str = "average",
    condition_table: np.ndarray | None = None,
) -> keras.Model:
    """``[image in [0, 1], condition] -> score``: spectrally normalised convs and a projection
    head (Miyato & Koyama 2018), ``score = w . h + <h, V c>``, so the condition enters as an
    inner product with the image features rather than as an extra input channel.

    ``pooling`` ``sum`` is global *sum* pooling before the heads, as in SNGAN-projection and
    BigGAN: under spectral norm the heads cannot scale up an averaged feature, so averaging
    shrinks the logits by the number of positions (36: the last map is 6 x 6).

    ``condition_table`` (K x D, for one-hot conditions of K concepts): each concept's fixed
    vector (its text centroid) is looked up before the projection, so the projection is one
    learned D x C map shared by all concepts instead of one free vector per concept: concepts
    with two images each learn from their neighbours in text."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    image = keras.Input((image_size, image_size, 3), name="image")
    cond = keras.Input((cond_dim,), name="condition")
    x = layers.Rescaling(2.0, offset=-1.0)(image)
    x = layers.LeakyReLU(0.2)(_sn_conv(filters, 3, 1, "conv0")(x))
    width = filters
    for i in range(1, _blocks(image_size) + 1):
        width *= 2
        x = layers.LeakyReLU(0.2)(_sn_conv(width, 4, 2, f"conv{i}")(x))
    h = layers.GlobalAveragePooling2D()(x)
    if pooling == "sum":
        positions = x.shape[1] * x.shape[2]
        h = layers.Rescaling(float(positions), name="sum_pool")(h)
    unconditional = layers.SpectralNormalization(layers.Dense(1), name="score")(h)
    if condition_table is not None:
        table = np.asarray(condition_table, np.float32)
        if table.shape[0] != cond_dim:
            raise ValueError(f"condition_table has {table.shape[0]} rows for cond_dim {cond_dim}")
        lookup = layers.Dense(table.shape[1], use_bias=False, trainable=False, name="cond_table")
        cond_in = lookup(cond)
        lookup.kernel.assign(table)
    else:
        cond_in = cond
    embed = layers.SpectralNormalization(layers.Dense(width, use_bias=False), name="embed")
    embedded = embed(cond_in)
    projection = layers.Dot(axes=1, name="projection")([h, embedded])
    return keras.Model(
        [image, cond],
        float32_outputs(layers.Add()([unconditional, projection])),
        name="discriminator",
    )


AUGMENTS = ("diffaugment", "translation")
"""What the critic sees of every image: DiffAugment's translation and cutout (half the side),
or the translation alone."""


LOG_VAR_LIMIT = 10.0
"""The posterior's log-variance is clipped to +-10, so exp() cannot overflow on a bad step."""


def kl_divergence(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, 1)) summed over dimensions, averaged over the batch."""
    return ops.mean(-0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1))


def ema_decay(step, decay: float = 0.999):
    """EMA decay warmed up as (1 + t) / (10 + t), so the average does not lag early training."""
    t = ops.cast(step, "float32")
    return ops.minimum(decay, (1.0 + t) / (10.0 + t))


@keras.saving.register_keras_serializable(package="imgfix")
class DelayedStart(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate of 0 for the first ``delay`` steps, then ``learning_rate``: the
    generator's, so that a fresh critic learns alone first (``train cgan --d-warmup``). The
    optimizer's moment estimates still see the gradients while the rate is 0, so the first
    real steps are not oversized."""

    def __init__(self, learning_rate: float, delay: int):
        self.learning_rate, self.delay = float(learning_rate), int(delay)

    def __call__(self, step):
        held = ops.cast(step, "float32") < float(self.delay)
        return ops.where(held, 0.0, self.learning_rate)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "delay": self.delay}


@keras.saving.register_keras_serializable(package="imgfix")
class ConditionalGAN(TwoPlayerModel):
    """Trains a text-conditioned generator with:

    * hinge loss, spectral normalisation (in the discriminator) and Adam(beta_1=0);
    * DiffAugment (translation + cutout) on every image the discriminator sees;
    * a matching-aware discriminator (Reed et al. 2016): a real image with another row's
      prompt counts as fake, so the discriminator must check the prompt, not only realism;
    * with an ``encoder``, a reconstruction path: ``generator(encoder(x, c), c)`` must rebuild
      ``x`` (L1, weight ``rec_weight``) and the encoder is kept near the prior by a KL term;
    * an EMA copy of the generator's weights, warmed up, which is the exported generator;
    * ``d_steps`` critic updates per generator update.

    The step itself is the backend's (``TwoPlayerModel``); this class says what is minimised.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        encoder: keras.Model | None = None,
        g_optimizer: keras.optimizers.Optimizer | None = None,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        rec_weight: float = 10.0,
        kl_weight: float = 0.01,
        mismatch_weight: float = 0.5,
        ema: float = 0.999,
        seed: int = 0,
        ema_generator: keras.Model | None = None,
        r1_gamma: float = 0.0,
        augment: str = "diffaugment",
        d_steps: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator, self.discriminator, self.encoder = generator, discriminator, encoder
        self.ema_generator = ema_generator or keras.models.clone_model(generator)
        if ema_generator is None:
            self.ema_generator.set_weights(generator.get_weights())
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.0, beta_2=0.99)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.0, beta_2=0.99)
        self.rec_weight, self.kl_weight = rec_weight, kl_weight
        self.mismatch_weight, self.ema, self.seed = mismatch_weight, ema, seed
        if augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {AUGMENTS}, got {augment!r}")
        self.r1_gamma, self.augment = r1_gamma, augment
        if int(d_steps) < 1:
            raise ValueError(f"d_steps must be at least 1, got {d_steps}")
        self.d_steps = int(d_steps)
        self.z_dim = generator.input_shape[0][-1]
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True
        # Build optimizer slots now: loading a checkpoint into unbuilt optimizers drops their state.
        self.g_optimizer.build(self.generator_variables())
        self.d_optimizer.build(self.discriminator.trainable_variables)
        # The critic's health: mean scores, and how often it is right (real > 0, fake and
        # mismatched < 0). A critic that learns sits at 80-95 % on reals; one stuck at chance
        # leaves the generator with a reconstruction loss only.
        names = ["d_loss", "g_adv", "d_real", "d_fake", "d_mismatch"]
        names += ["d_real_acc", "d_fake_acc", "d_mismatch_acc"]
        names += ["r1"] if r1_gamma else []
        names += ["rec_l1", "kl"] if encoder is not None else []
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}

    def generator_variables(self) -> list:
        extra = self.encoder.trainable_variables if self.encoder is not None else []
        return self.generator.trainable_variables + extra

    def call(self, inputs, training=False):
        return self.ema_generator(inputs, training=training)

    def _encode(self, image, cond):
        mean, log_var = self.encoder([image, cond], training=True)
        log_var = ops.clip(log_var, -LOG_VAR_LIMIT, LOG_VAR_LIMIT)
        noise = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * noise, mean, log_var

    def moving_averages(self):
        decay = ema_decay(self.g_optimizer.iterations, self.ema)
        return self.ema_generator.weights, self.generator.weights, decay

    def player_losses(self, data, input_gradient):
        image, cond = data
        batch = ops.shape(image)[0]
        z = keras.random.normal((batch, self.z_dim), seed=self.seed_generator)
        mismatched = ops.roll(cond, 1, axis=0)
        values = {}
        fake = self.generator([z, cond], training=True)
        d = self.discriminator
        cutout = 0.5 if self.augment == "diffaugment" else 0.0

        def score(x, c):
            x = diff_augment(x, self.seed_generator, cutout=cutout)
            return d([x, c], training=True)

        real_score, r1 = score(image, cond), 0.0
        if self.r1_gamma:
            # R1 (Mescheder et al. 2018): the critic's gradient at the real images, squared.
            slope = input_gradient(lambda x: d([x, cond], training=True), image)
            r1 = ops.mean(ops.sum(ops.square(slope), axis=(1, 2, 3)))
            values["r1"] = r1
        fake_score = score(fake, cond)
        mismatch_score = score(image, mismatched)
        w = self.mismatch_weight
        d_loss = (
            ops.mean(ops.relu(1.0 - real_score))
            + (1 - w) * ops.mean(ops.relu(1.0 + fake_score))
            + w * ops.mean(ops.relu(1.0 + mismatch_score))
            + 0.5 * self.r1_gamma * r1
        )
        g_adv = -ops.mean(fake_score)
        g_loss = g_adv
        if self.encoder is not None:
            z_real, mean, log_var = self._encode(image, cond)
            rebuilt = self.generator([z_real, cond], training=True)
            rec = ops.mean(ops.abs(rebuilt - image))
            kl = kl_divergence(mean, log_var)
            g_loss = g_loss + self.rec_weight * rec + self.kl_weight * kl
            values.update(rec_l1=rec, kl=kl)
        values.update(
            d_loss=d_loss,
            g_adv=g_adv,
            d_real=ops.mean(real_score),
            d_fake=ops.mean(fake_score),
            d_mismatch=ops.mean(mismatch_score),
            d_real_acc=ops.mean(ops.cast(real_score > 0, "float32")),
            d_fake_acc=ops.mean(ops.cast(fake_score < 0, "float32")),
            d_mismatch_acc=ops.mean(ops.cast(mismatch_score < 0, "float32")),
        )
        return g_loss, d_loss, values

    def get_config(self):
        nested = ("generator", "discriminator", "encoder", "g_optimizer", "d_optimizer")
        return {
            **super().get_config(),
            **{k: keras.saving.serialize_keras_object(getattr(self, k)) for k in nested},
            "ema_generator": keras.saving.serialize_keras_object(self.ema_generator),
            "rec_weight": self.rec_weight,
            "kl_weight": self.kl_weight,
            "mismatch_weight": self.mismatch_weight,
            "ema": self.ema,
            "seed": self.seed,
            "r1_gamma": self.r1_gamma,
            "augment": self.augment,
            "d_steps": self.d_steps,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in (
            "generator",
            "discriminator",
            "encoder",
            "g_optimizer",
            "d_optimizer",
            "ema_generator",
        ):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
