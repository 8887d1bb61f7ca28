"""Model builders, the coarse fill, and the training model's .keras round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from imgfix.models import InpaintingGAN, build_context_encoder, build_patch_discriminator
from imgfix.models.layers import PushPullFill


def batch(n=2, h=32, w=48, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((n, h, w, 3), dtype=np.float32)
    mask = np.zeros((n, h, w, 1), np.float32)
    mask[:, 8:20, 10:30] = 1
    return image, mask


def test_generator_shapes_and_known_pixels_pass_through():
    model = build_context_encoder(filters=8)
    for h, w in ((32, 48), (64, 16)):
        image, mask = batch(h=h, w=w)
        out = keras.ops.convert_to_numpy(model([image, mask]))
        assert out.shape == image.shape
        np.testing.assert_array_equal(out[mask[..., 0] == 0], image[mask[..., 0] == 0])
        assert out.min() >= 0 and out.max() <= 1


def test_untrained_generator_returns_the_coarse_fill():
    model = build_context_encoder(filters=8)
    image, mask = batch()
    coarse = PushPullFill(smoothing=16)([image, mask])
    np.testing.assert_allclose(model([image, mask]), coarse, atol=1e-6)


def test_push_pull_fills_smooth_regions_exactly_and_keeps_known_pixels():
    image = np.full((1, 40, 40, 3), 0.25, np.float32)
    image[..., 1] = 0.75
    mask = np.zeros((1, 40, 40, 1), np.float32)
    mask[0, 5:35, 10:30] = 1
    filled = keras.ops.convert_to_numpy(PushPullFill()([image * (1 - mask), mask]))
    np.testing.assert_allclose(filled, image, atol=1e-6)

    # A left-to-right ramp is filled with a rising ramp that stays within the known values.
    ramp = np.tile(np.linspace(0, 1, 40, dtype=np.float32)[None, None, :, None], (1, 40, 1, 3))
    filled = keras.ops.convert_to_numpy(PushPullFill()([ramp, mask]))
    np.testing.assert_array_equal(filled[mask[..., 0] == 0], ramp[mask[..., 0] == 0])
    row = filled[0, 20, 10:30, 0]
    assert np.all(np.diff(row) > 0)
    assert row.min() > 0.0 and row.max() < 1.0


def test_push_pull_with_empty_mask_is_identity_and_full_mask_is_finite():
    image, _ = batch()
    np.testing.assert_array_equal(PushPullFill()([image, np.zeros_like(image[..., :1])]), image)
    full = keras.ops.convert_to_numpy(PushPullFill()([image, np.ones_like(image[..., :1])]))
    assert np.isfinite(full).all()


def test_discriminator_scores_patches():
    disc = build_patch_discriminator(filters=8)
    image, mask = batch(h=64, w=64)
    assert disc([image, mask]).shape == (2, 8, 8, 1)


def test_gan_keras_round_trip_keeps_weights_and_optimizer_state(tmp_path):
    gan = InpaintingGAN(build_context_encoder(filters=8), build_patch_discriminator(filters=8))
    gan.compile()
    image, mask = batch(n=4)
    gan.fit(tf.data.Dataset.from_tensors((image, mask)).repeat(3), verbose=0)
    assert gan.step == 3
    path = tmp_path / "gan.keras"
    gan.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, InpaintingGAN) and loaded.step == 3
    for opt in ("g_optimizer", "d_optimizer"):
        saved = getattr(gan, opt).variables
        restored = getattr(loaded, opt).variables
        assert len(saved) == len(restored) > 2  # slots, not just the step counter
        for a, b in zip(saved, restored, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(gan.generator([image, mask]), loaded.generator([image, mask]))
    assert loaded.adv_weight == gan.adv_weight


def test_gan_config_is_complete():
    gan = InpaintingGAN(
        build_context_encoder(filters=8), build_patch_discriminator(filters=8), adv_weight=0.01
    )
    rebuilt = InpaintingGAN.from_config(gan.get_config())
    assert rebuilt.adv_weight == 0.01
    assert rebuilt.generator.count_params() == gan.generator.count_params()
    assert rebuilt.discriminator.count_params() == gan.discriminator.count_params()


def test_smoothing_makes_the_coarse_fill_harmonic():
    # A linear ramp is harmonic: with smoothing the fill of a box in it is close to the ramp.
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32)[None, None, :, None], (1, 64, 1, 3))
    mask = np.zeros((1, 64, 64, 1), np.float32)
    mask[0, 16:48, 16:48] = 1
    hole = mask[0, ..., 0] > 0

    def error(smoothing):
        filled = keras.ops.convert_to_numpy(PushPullFill(smoothing=smoothing)([ramp, mask]))
        return np.abs(filled - ramp)[0][hole].mean()

    assert error(16) < 0.5 * error(0)


def test_psnr_loss_is_minus_the_mean_per_image_hole_psnr():
    from imgfix.metrics import psnr
    from imgfix.models.context_encoder import hole_loss

    image, mask = batch(n=3)
    noisy = np.clip(image + np.random.default_rng(3).normal(0, 0.05, image.shape), 0, 1)
    noisy[0] = image[0] + 0.01  # one easy image: a tiny error
    hole_psnr = [psnr(image[i], noisy[i], mask[i, ..., 0] > 0) for i in range(3)]
    mse = [10 ** (-p / 10) for p in hole_psnr]
    loss = float(hole_loss(image, noisy.astype(np.float32), mask, "psnr"))
    # The loss caps each image near 50 dB: 10 log10(mse + 1e-5).
    assert loss == pytest.approx(np.mean([10 * np.log10(m + 1e-5) for m in mse]), abs=1e-3)
    assert abs(loss + np.mean(hole_psnr)) < 0.2
    l2 = float(hole_loss(image, noisy.astype(np.float32), mask, "l2"))
    hole = np.broadcast_to(mask > 0, image.shape)
    assert l2 == pytest.approx(np.mean((image - noisy)[hole] ** 2), rel=1e-4)


# --- traceable resizing, for the LiteRT export --------------------------------------------------


def _reference_push_pull(image, mask, levels=8, smoothing=16):
    """PushPullFill as it was written with ``ops.image.resize`` (before the LiteRT export),
    which the layer must still reproduce exactly."""
    ops = keras.ops

    def smooth(filled, x, w):
        for _ in range(smoothing):
            filled = x * w + ops.average_pool(filled, 3, strides=1, padding="same") * (1.0 - w)
        return filled

    known = 1.0 - mask
    pyramid, x, w = [(image, known)], image, known
    for _ in range(levels):
        wsum = ops.average_pool(w, 2, strides=2, padding="same")
        x = ops.average_pool(x * w, 2, strides=2, padding="same") / ops.maximum(wsum, 1e-6)
        w = ops.cast(wsum > 0, x.dtype)
        pyramid.append((x, w))
    total = ops.sum(w, axis=(1, 2), keepdims=True)
    mean = ops.sum(x * w, axis=(1, 2), keepdims=True) / ops.maximum(total, 1e-6)
    filled = smooth(x * w + mean * (1.0 - w), x, w)
    for x, w in reversed(pyramid[:-1]):
        up = ops.image.resize(filled, (x.shape[1], x.shape[2]), interpolation="bilinear")
        filled = smooth(x * w + up * (1.0 - w), x, w)
    return ops.convert_to_numpy(filled)


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 31), (64, 48), (100, 129)])
def test_resize_and_upsample_match_keras_exactly(size):
    from imgfix.models.layers import Upsample, resize

    x = np.random.default_rng(0).random((2, *size, 4)).astype(np.float32)
    up = keras.layers.UpSampling2D(interpolation="bilinear")(x)
    np.testing.assert_array_equal(Upsample()(x), up)
    for target in ((2 * size[0], 2 * size[1]), (size[0] + 3, max(1, size[1] - 1)), (7, 9)):
        want = keras.ops.image.resize(x, target, interpolation="bilinear")
        np.testing.assert_array_equal(resize(x, *target), want)


@pytest.mark.parametrize("size", [(32, 48), (33, 47), (5, 7), (160, 96)])
def test_push_pull_output_is_unchanged_by_the_traceable_form(size):
    image, mask = batch(h=size[0], w=size[1], seed=3)
    want = _reference_push_pull(image * (1 - mask), mask)
    got = PushPullFill(multiple=16)([image * (1 - mask), mask])
    np.testing.assert_array_equal(got, want)


def test_push_pull_traces_with_dynamic_sizes_and_keeps_its_output():
    """With unknown height and width (the export's signature) ``multiple`` decides the exact
    2x levels; on multiples of 16 the traced graph gives the eager numbers."""
    layer = PushPullFill(multiple=16)
    spec = [tf.TensorSpec((None, None, None, 3)), tf.TensorSpec((None, None, None, 1))]
    traced = tf.function(lambda x, m: layer([x, m]), input_signature=spec)
    for h, w in ((32, 48), (160, 96), (16, 256)):
        image, mask = batch(h=h, w=w, seed=4)
        np.testing.assert_array_equal(
            traced(image * (1 - mask), mask), _reference_push_pull(image * (1 - mask), mask)
        )
