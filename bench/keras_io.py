"""The keras.io reference models the training-throughput benchmark compares against, as
published, scaled only in image size.

* "DCGAN to generate face images" (fchollet), 64 x 64 faces, latent 128, batch 32:
  https://keras.io/examples/generative/dcgan_overriding_train_step/
  At ``image_size`` the generator starts from an ``image_size / 8`` square instead of 8 x 8
  (6 x 6 for 48 px); every layer is otherwise as published, and the discriminator changes only
  its input shape.
* "Variational AutoEncoder" (fchollet), 28 x 28 x 1 MNIST digits, latent 2, batch 128:
  https://keras.io/examples/generative/vae/
  At ``image_size`` x ``channels`` only the input shape, the decoder's starting grid
  (``image_size / 4``, 7 for 28 px) and the output channels change.

Both training models override ``train_step`` with TensorFlow's gradient tape, as the examples
do, so they run on the TensorFlow backend only.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

DCGAN_LATENT = 128
VAE_LATENT = 2


def dcgan_discriminator(image_size: int = 64) -> keras.Model:
    """The example's discriminator: three strided 4 x 4 convs, dropout, a sigmoid unit."""
    return keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, 3)),
            layers.Conv2D(64, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="discriminator",
    )


def dcgan_generator(image_size: int = 64, latent_dim: int = DCGAN_LATENT) -> keras.Model:
    """The example's generator: a dense seed and three strided 4 x 4 transposed convs."""
    if image_size % 8:
        raise ValueError(f"image_size must be a multiple of 8, got {image_size}")
    side = image_size // 8
    return keras.Sequential(
        [
            keras.Input(shape=(latent_dim,)),
            layers.Dense(side * side * 128),
            layers.Reshape((side, side, 128)),
            layers.Conv2DTranspose(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(256, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(512, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(3, kernel_size=5, padding="same", activation="sigmoid"),
        ],
        name="generator",
    )


class GAN(keras.Model):
    """The example's GAN: one discriminator step on real and fake images with noisy labels,
    then one generator step on fresh latents."""

    def __init__(self, discriminator: keras.Model, generator: keras.Model, latent_dim: int):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        generated_images = self.generator(random_latent_vectors)
        combined_images = ops.concatenate([generated_images, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * tf.random.uniform(tf.shape(labels))  # "important trick!"

        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(
            zip(grads, self.discriminator.trainable_weights, strict=True)
        )

        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        misleading_labels = ops.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))

        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


def build_dcgan(image_size: int = 64) -> GAN:
    """The example's GAN, compiled as published: Adam(1e-4) for both, binary cross-entropy."""
    gan = GAN(dcgan_discriminator(image_size), dcgan_generator(image_size), DCGAN_LATENT)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate=0.0001),
        g_optimizer=keras.optimizers.Adam(learning_rate=0.0001),
        loss_fn=keras.losses.BinaryCrossentropy(),
    )
    return gan


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def vae_encoder(
    image_size: int = 28, channels: int = 1, latent_dim: int = VAE_LATENT
) -> keras.Model:
    """The example's encoder: two strided 3 x 3 convs, a 16-unit layer, mean and log-variance."""
    encoder_inputs = keras.Input(shape=(image_size, image_size, channels))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    return keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")


def vae_decoder(
    image_size: int = 28, channels: int = 1, latent_dim: int = VAE_LATENT
) -> keras.Model:
    """The example's decoder: a dense seed at a quarter of the image side, two strided 3 x 3
    transposed convs, a sigmoid output."""
    if image_size % 4:
        raise ValueError(f"image_size must be a multiple of 4, got {image_size}")
    side = image_size // 4
    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(side * side * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((side, side, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder_outputs = layers.Conv2DTranspose(channels, 3, activation="sigmoid", padding="same")(x)
    return keras.Model(latent_inputs, decoder_outputs, name="decoder")


class VAE(keras.Model):
    """The example's VAE: summed per-pixel binary cross-entropy plus the KL divergence."""

    def __init__(self, encoder: keras.Model, decoder: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
            )
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


def build_vae(image_size: int = 28, channels: int = 1) -> VAE:
    """The example's VAE, compiled as published: ``Adam()`` at its defaults."""
    vae = VAE(vae_encoder(image_size, channels), vae_decoder(image_size, channels))
    vae.compile(optimizer=keras.optimizers.Adam())
    return vae
