"""Context-encoder inpainter: a coarse-to-fine encoder-decoder, a patch discriminator, and the
GAN that trains them together (Pathak et al., CVPR 2016, with later improvements).

The generator starts from a smooth coarse fill of the hole (``PushPullFill``), then an
encoder-decoder with a dilated bottleneck predicts a correction for the hole pixels only. Starting
from the coarse fill means even an untrained network returns a sensible fill, and the network
spends its capacity on texture and edges rather than on carrying colour across a wide hole.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from imgfix.models.layers import Composite, PushPullFill, Upsample, float32_outputs
from imgfix.models.texture import DETAIL_SIGMA, blur, texture_loss
from imgfix.models.two_player import TwoPlayerModel

MULTIPLE = 16  # height and width must be multiples of this (three stride-2 stages, with slack)


def _conv(x, filters: int, name: str, *, strides: int = 1, dilation: int = 1, kernel: int = 3):
    x = layers.Conv2D(
        filters, kernel, strides=strides, dilation_rate=dilation, padding="same", name=name
    )(x)
    return layers.LeakyReLU(0.2, name=f"{name}_act")(x)


def build_context_encoder(
    filters: int = 32,
    bottleneck_dilations: tuple[int, ...] = (1, 2, 4, 8),
    coarse_smoothing: int = 16,
    name: str = "generator",
) -> keras.Model:
    """The inpainting generator. Inputs ``[image, mask]`` (image in [0, 1], mask 1 = hole);
    output: the image with its hole filled. Fully convolutional; sides must be multiples of 16.
    """
    image = keras.Input((None, None, 3), name="image")
    mask = keras.Input((None, None, 1), name="mask")
    coarse = PushPullFill(smoothing=coarse_smoothing, multiple=MULTIPLE, name="coarse_fill")(
        [image, mask]
    )
    x = layers.Concatenate(name="coarse_and_mask")([coarse, mask])
    x = layers.Rescaling(2.0, offset=-1.0, name="to_signed")(x)

    e0 = _conv(x, filters // 2, "enc0")
    e1 = _conv(e0, filters, "enc1", strides=2)
    e2 = _conv(e1, filters * 2, "enc2", strides=2)
    x = _conv(e2, filters * 4, "enc3", strides=2)
    for i, rate in enumerate(bottleneck_dilations):
        x = layers.Add(name=f"bottleneck{i}_res")(
            [x, _conv(x, filters * 4, f"bottleneck{i}", dilation=rate)]
        )
    for level, (skip, width) in enumerate(((e2, filters * 2), (e1, filters), (e0, filters // 2))):
        x = Upsample(name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skip])
        x = _conv(x, width, f"dec{level}")
    # Zero-initialised, so an untrained generator returns exactly the coarse fill.
    correction = layers.Conv2D(3, 3, padding="same", kernel_initializer="zeros", name="correction")(
        x
    )
    refined = layers.Add(name="refined")([coarse, correction])
    output = Composite(name="composite")([image, refined, mask])
    return keras.Model([image, mask], float32_outputs(output), name=name)


def build_patch_discriminator(filters: int = 32, name: str = "discriminator") -> keras.Model:
    """A PatchGAN critic: one realness score per ~40 px patch. Sees the image and the mask, so
    it can learn where to look for seams."""
    image = keras.Input((None, None, 3), name="image")
    mask = keras.Input((None, None, 1), name="mask")
    x = layers.Concatenate()([image, mask])
    x = layers.Rescaling(2.0, offset=-1.0)(x)
    for i, mult in enumerate((1, 2, 4)):
        x = _conv(x, filters * mult, f"disc{i}", strides=2, kernel=4)
    score = layers.Conv2D(1, 3, padding="same", name="patch_score")(x)
    return keras.Model([image, mask], float32_outputs(score), name=name)


REC_LOSSES = ("l1", "l2", "psnr", "lowpass")


def hole_loss(truth, prediction, mask, kind: str):
    """Reconstruction error over the hole pixels.

    ``l1`` and ``l2``: the mean absolute or squared error over all hole pixels of the batch.
    ``psnr``: minus the mean per-image PSNR of the hole (in dB, capped at 50). Benchmarks
    average PSNR over images, and this loss does the same: an error that costs an easy, smooth
    image many dB weighs as much as a textured image's larger error that costs as many dB.
    ``lowpass``: ``psnr`` of both images blurred at ``DETAIL_SIGMA``, so the hole's colour and
    shading must follow the truth while its fine detail is left to an adversarial loss.
    """
    if kind == "lowpass":
        truth, prediction, kind = blur(truth, DETAIL_SIGMA), blur(prediction, DETAIL_SIGMA), "psnr"
    diff = truth - prediction
    per_pixel = ops.abs(diff) if kind == "l1" else ops.square(diff)
    per_pixel = ops.mean(per_pixel, axis=-1, keepdims=True) * mask
    if kind != "psnr":
        return ops.sum(per_pixel) / ops.maximum(ops.sum(mask), 1.0)
    area = ops.maximum(ops.sum(mask, axis=(1, 2, 3)), 1.0)
    mse = ops.sum(per_pixel, axis=(1, 2, 3)) / area
    return ops.mean(10.0 * ops.log(mse + 1e-5)) / ops.log(10.0)


@keras.saving.register_keras_serializable(package="imgfix")
class InpaintingGAN(TwoPlayerModel):
    """Trains the generator with a reconstruction loss over the hole plus a hinge adversarial
    loss.

    Pathak et al. weighted an L2 reconstruction 0.999 and the adversarial loss 0.001; the small
    adversarial weight here plays the same role. The default reconstruction loss is ``psnr``
    (see ``hole_loss``): on the validation photos after ~1000 steps, L1 and L2 made the fill
    0.5 dB worse than the coarse fill on thin masks, while ``psnr`` stayed within 0.01 dB of it.
    The optimizers live on the model, so a ``.keras`` checkpoint carries their state and
    ``--resume`` continues exactly where training stopped.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        g_optimizer: keras.optimizers.Optimizer | None = None,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        adv_weight: float = 0.001,
        rec_loss: str = "psnr",
        texture_weight: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.adv_weight = adv_weight
        if rec_loss not in REC_LOSSES:
            raise ValueError(f"rec_loss must be one of {REC_LOSSES}, got {rec_loss!r}")
        self.rec_loss = rec_loss
        self.texture_weight = texture_weight
        self.built = True  # both networks are functional models, built at construction
        # Build optimizer slots now: loading a checkpoint into unbuilt optimizers drops their state.
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("rec", "adv", "d_loss", "texture", "psnr")
        }

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def trains_critic(self) -> bool:
        return self.adv_weight > 0  # without it the critic is neither run nor trained

    def player_losses(self, data, input_gradient):
        image, mask = data
        # One generator pass serves both players: each player's gradient sees its own weights.
        fake = self.generator([image, mask], training=True)
        rec = hole_loss(image, fake, mask, self.rec_loss)
        texture = texture_loss(image, fake, mask) if self.texture_weight else 0.0
        g_loss = rec + self.texture_weight * texture
        adv = d_loss = 0.0
        if self.trains_critic():
            real_score = self.discriminator([image, mask], training=True)
            fake_score = self.discriminator([fake, mask], training=True)
            d_loss = ops.mean(ops.relu(1.0 - real_score)) + ops.mean(ops.relu(1.0 + fake_score))
            adv = -ops.mean(fake_score)
            g_loss = g_loss + self.adv_weight * adv
        figures = dict(rec=rec, adv=adv, d_loss=d_loss, texture=texture)
        return g_loss, d_loss, {**figures, "psnr": hole_psnr(image, fake, mask)}

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer),
            "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
            "adv_weight": self.adv_weight,
            "rec_loss": self.rec_loss,
            "texture_weight": self.texture_weight,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator", "g_optimizer", "d_optimizer"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def hole_psnr(truth, prediction, mask):
    """PSNR in dB over the hole pixels of a batch, images in [0, 1]."""
    sq = ops.sum(ops.square(truth - prediction) * mask) / ops.maximum(3.0 * ops.sum(mask), 1.0)
    return -10.0 * ops.log(ops.maximum(sq, 1e-10)) / ops.log(10.0)
