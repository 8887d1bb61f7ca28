"""The text-conditioned GAN's critic options: sum pooling, R1, translation-only augmentation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from imgfix.models import ConditionalGAN, build_discriminator, build_generator


def _images(n: int = 4, size: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.random((n, size, size, 3), dtype=np.float32), rng.normal(size=(n, 8)).astype(
        np.float32
    )


def test_sum_pooling_scales_the_logits_by_the_number_of_positions():
    keras.utils.set_random_seed(0)
    average = build_discriminator(24, 8, 8, pooling="average")
    total = build_discriminator(24, 8, 8, pooling="sum")
    total.set_weights(average.get_weights())
    image, cond = _images()
    a, s = np.asarray(average([image, cond])), np.asarray(total([image, cond]))
    # 24 px -> 6 x 6 after the two stride-2 convs: the same features, summed over 36 positions.
    np.testing.assert_allclose(s, 36 * a, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="pooling"):
        build_discriminator(24, 8, 8, pooling="max")


def test_r1_and_translation_train_log_and_survive_a_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    gan = ConditionalGAN(
        build_generator(24, 4, 8, 8),
        build_discriminator(24, 8, 8, pooling="sum"),
        r1_gamma=0.1,
        augment="translation",
    )
    gan.compile()
    image, cond = _images()
    history = gan.fit(tf.data.Dataset.from_tensors((image, cond)).repeat(2), verbose=0).history
    assert history["r1"][-1] > 0
    for key in ("d_real_acc", "d_fake_acc", "d_mismatch_acc"):
        assert 0.0 <= history[key][-1] <= 1.0
    path = tmp_path / "gan.keras"
    gan.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert (loaded.r1_gamma, loaded.augment) == (0.1, "translation")
    assert any(layer.name == "sum_pool" for layer in loaded.discriminator.layers)
    with pytest.raises(ValueError, match="augment"):
        ConditionalGAN(build_generator(24, 4, 8, 8), build_discriminator(24, 8, 8), augment="x")
