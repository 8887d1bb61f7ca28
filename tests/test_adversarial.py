"""LaMa's losses for the context encoder: the critic, which patches count as fake, the
low-pass reconstruction, one training step and the ``.keras`` round trip."""

import keras
import numpy as np

from imgfix.models import FeatureMatchingGAN, build_context_encoder, build_feature_critic
from imgfix.models.adversarial import CRITIC_STRIDE, fake_patches
from imgfix.models.context_encoder import hole_loss


def _batch(size: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.random((2, size, size, 3), dtype=np.float32)
    mask = np.zeros((2, size, size, 1), np.float32)
    mask[:, 8:20, 4:28] = 1
    return image, mask


def test_the_critic_sees_no_mask_and_returns_features_then_one_score_per_patch():
    critic = build_feature_critic(filters=4)
    assert len(critic.inputs) == 1
    outputs = critic(np.zeros((1, 64, 48, 3), np.float32))
    assert len(outputs) == 5
    assert tuple(outputs[-1].shape) == (1, 64 // CRITIC_STRIDE, 48 // CRITIC_STRIDE, 1)


def test_a_patch_is_fake_exactly_when_it_holds_a_hole_pixel():
    mask = np.zeros((1, 32, 32, 1), np.float32)
    mask[0, 9, 17] = 1  # one pixel, in patch (1, 2)
    patches = np.asarray(fake_patches(mask))[0, ..., 0]
    expected = np.zeros((4, 4), np.float32)
    expected[1, 2] = 1
    np.testing.assert_array_equal(patches, expected)


def test_lowpass_loss_ignores_fine_detail_that_the_pixel_loss_punishes():
    image, mask = _batch()
    smooth = np.full_like(image, 0.5)
    checker = (np.indices((32, 32)).sum(0) % 2)[None, ..., None].astype(np.float32)
    detailed = smooth + 0.2 * (checker - 0.5)  # a pixel-scale texture with the same mean
    for kind, changes in (("psnr", True), ("lowpass", False)):
        plain = float(hole_loss(smooth, smooth * 0 + 0.45, mask, kind))
        textured = float(hole_loss(smooth, detailed - 0.05, mask, kind))
        assert (abs(textured - plain) > 3.0) == changes, (kind, plain, textured)


def test_one_step_trains_both_players_and_the_round_trip_keeps_the_recipe(tmp_path):
    keras.utils.set_random_seed(0)
    trainer = FeatureMatchingGAN(
        build_context_encoder(filters=8), build_feature_critic(filters=4), fm_weight=50.0
    )
    assert trainer.adv_weight == 10.0 and trainer.rec_loss == "lowpass"
    image, mask = _batch()
    g_before = [np.array(w) for w in trainer.generator.trainable_weights]
    d_before = [np.array(w) for w in trainer.discriminator.trainable_weights]
    logs = trainer.train_step((image, mask))
    assert all(np.isfinite(float(logs[k])) for k in ("fm", "r1", "adv", "d_loss"))
    assert all(np.isfinite(float(logs[k])) for k in ("d_real", "d_fake_hole", "d_fake_known"))
    for before, after in (
        (g_before, trainer.generator.trainable_weights),
        (d_before, trainer.discriminator.trainable_weights),
    ):
        assert any(not np.array_equal(b, np.array(a)) for b, a in zip(before, after, strict=True))
    out = np.asarray(trainer.generator([image, mask]))
    known = mask[..., 0] == 0
    np.testing.assert_array_equal(out[known], image[known])

    path = tmp_path / "gan.keras"
    trainer.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(again, FeatureMatchingGAN)
    assert (again.fm_weight, again.r1_gamma, again.step) == (50.0, trainer.r1_gamma, 1)
    np.testing.assert_array_equal(np.asarray(again.generator([image, mask])), out)
