"""LaMa's recipe for texture in the hole (Suvorov et al., WACV 2022): an adversarial patch loss
in which only the patches that touch the hole count as fake, R1 on the real images, and
feature matching on the critic's activations.

The generator is the context encoder, unchanged; only what it is trained against differs from
``InpaintingGAN``. The hole gets no pixel loss on its fine detail: LaMa's paper found that pixel
losses in the hole make fills blurry. What stays is a pixel loss on the hole's low frequencies
(``rec_loss="lowpass"``), so colour and shading still follow the truth, and feature matching,
which compares the critic's view of the fill with its view of the truth at the same place.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from imgfix.models.context_encoder import InpaintingGAN, hole_loss, hole_psnr
from imgfix.models.layers import float32_outputs
from imgfix.models.texture import texture_loss

EXTRA_METRICS = ("fm", "r1", "d_real", "d_fake_hole", "d_fake_known")
CRITIC_STRIDE = 8  # the critic scores one patch per 8 x 8 pixels (three stride-2 layers)


def build_feature_critic(filters: int = 32, name: str = "discriminator") -> keras.Model:
    """LaMa's PatchGAN critic, narrower: ``image -> [features..., patch scores]``. It sees the
    image only, not the mask, so it must find the hole from the pixels; the intermediate
    activations are what feature matching compares."""
    image = keras.Input((None, None, 3), name="image")
    x = layers.Rescaling(2.0, offset=-1.0)(image)
    features = []
    for i, (mult, stride) in enumerate(((1, 2), (2, 2), (4, 2), (8, 1))):
        x = layers.Conv2D(filters * mult, 4, strides=stride, padding="same", name=f"critic{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"critic{i}_act")(x)
        features.append(x)
    score = layers.Conv2D(1, 3, padding="same", name="patch_score")(x)
    return keras.Model(image, float32_outputs([*features, score]), name=name)


def fake_patches(mask, stride: int = CRITIC_STRIDE):
    """1 where a critic patch holds any hole pixel (the mask max-pooled to the score grid)."""
    return ops.max_pool(mask, stride, strides=stride, padding="same")


def _masked_mean(x, weight):
    return ops.sum(x * weight) / ops.maximum(ops.sum(weight), 1.0)


@keras.saving.register_keras_serializable(package="imgfix")
class FeatureMatchingGAN(InpaintingGAN):
    """``InpaintingGAN`` with LaMa's losses. Generator: ``rec_loss`` over the hole,
    ``texture_weight`` x the detail-amplitude loss, ``adv_weight`` x the non-saturating loss on
    every patch, and ``fm_weight`` x the mean squared difference of the critic's features on
    the fill and on the truth. Critic: the real image is real everywhere; in the fill, the
    patches that touch the hole are fake and the others real, the two groups weighted equally;
    plus ``r1_gamma / 2`` x R1.
    """

    def __init__(self, *args, fm_weight: float = 100.0, r1_gamma: float = 0.001, **kwargs):
        kwargs.setdefault("adv_weight", 10.0)
        kwargs.setdefault("rec_loss", "lowpass")
        super().__init__(*args, **kwargs)
        self.fm_weight, self.r1_gamma = fm_weight, r1_gamma
        for name in EXTRA_METRICS:
            self.trackers[name] = keras.metrics.Mean(name=name)

    def trains_critic(self) -> bool:
        return True  # feature matching needs a critic that learns, whatever adv_weight is

    def player_losses(self, data, input_gradient):
        image, mask = (ops.convert_to_tensor(x) for x in data)
        d = self.discriminator
        fake = self.generator([image, mask], training=True)
        *real_features, real_score = d(image, training=True)
        # R1 on a quarter of the batch: its double backward through the critic was a quarter
        # of the step's time on the whole batch, and it is only a regulariser.
        batch = ops.shape(image)[0]  # static under JAX, a tensor in a TensorFlow graph
        some = image[: max(batch // 4, 1) if isinstance(batch, int) else ops.maximum(batch // 4, 1)]
        slope = input_gradient(lambda x: d(x, training=True)[-1], some)
        r1 = ops.mean(ops.sum(ops.square(slope), axis=(1, 2, 3)))
        *fake_features, fake_score = d(fake, training=True)
        hole = fake_patches(mask)
        # The hole is a minority of the patches: weighted by area, the critic did best by
        # calling everything real (measured: 100% of hole patches called real at step 240),
        # and then it teaches the generator nothing. So hole and known patches of the fill
        # weigh as much as each other, and together as much as the real image.
        d_loss = (
            ops.mean(ops.softplus(-real_score))
            + 0.5 * _masked_mean(ops.softplus(fake_score), hole)
            + 0.5 * _masked_mean(ops.softplus(-fake_score), 1.0 - hole)
            + 0.5 * self.r1_gamma * r1
        )
        adv = ops.mean(ops.softplus(-fake_score))
        fm = ops.mean(
            ops.stack(
                [
                    ops.mean(ops.square(f - ops.stop_gradient(r)))
                    for f, r in zip(fake_features, real_features, strict=True)
                ]
            )
        )
        rec = hole_loss(image, fake, mask, self.rec_loss)
        texture = texture_loss(image, fake, mask) if self.texture_weight else 0.0
        g_loss = rec + self.texture_weight * texture + self.adv_weight * adv + self.fm_weight * fm
        figures = dict(
            rec=rec,
            adv=adv,
            d_loss=d_loss,
            texture=texture,
            psnr=hole_psnr(image, fake, mask),
            fm=fm,
            r1=r1,
            # The critic's mean logits. Its accuracy at 0 says little: a critic that sees no
            # difference scores everything log 3 > 0, the optimum for the 3:1 prior of the
            # loss. What shows it learning is hole patches scoring below the real ones.
            d_real=ops.mean(real_score),
            d_fake_hole=_masked_mean(fake_score, hole),
            d_fake_known=_masked_mean(fake_score, 1.0 - hole),
        )
        return g_loss, d_loss, figures

    def get_config(self):
        return {**super().get_config(), "fm_weight": self.fm_weight, "r1_gamma": self.r1_gamma}
