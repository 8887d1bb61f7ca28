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


def test_critic_warmup_holds_the_generator_then_lets_it_learn(tmp_path):
    from imgfix.models.cgan import DelayedStart
    from imgfix.training.generators import _set_rate, _warmup

    schedule = DelayedStart(1e-3, 2)
    rates = [float(schedule(step)) for step in (0, 1, 2, 10)]
    assert rates == pytest.approx([0.0, 0.0, 1e-3, 1e-3])
    keras.utils.set_random_seed(0)
    gan = ConditionalGAN(
        build_generator(24, 4, 8, 8),
        build_discriminator(24, 8, 8),
        g_optimizer=keras.optimizers.Adam(schedule, beta_1=0.0, beta_2=0.99),
    )
    gan.compile()
    image, cond = _images()
    batches = tf.data.Dataset.from_tensors((image, cond)).repeat()
    start = [np.array(w) for w in gan.generator.trainable_weights]
    critic = [np.array(w) for w in gan.discriminator.trainable_weights]

    def moved(weights, before):
        pairs = zip(weights, before, strict=True)
        return max(float(np.abs(np.array(w) - b).max()) for w, b in pairs)

    gan.fit(batches, steps_per_epoch=2, verbose=0)
    assert moved(gan.generator.trainable_weights, start) == 0.0  # held for 2 steps
    assert moved(gan.discriminator.trainable_weights, critic) > 0.0  # the critic learned
    gan.fit(batches, steps_per_epoch=1, verbose=0)
    assert moved(gan.generator.trainable_weights, start) > 0.0  # then the generator moves
    path = tmp_path / "gan.keras"
    gan.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert _warmup(loaded.g_optimizer) == 2 and _warmup(loaded.d_optimizer) == 0
    _set_rate(loaded.g_optimizer, 5e-4)  # a resumed run's --lr keeps the delay
    assert _warmup(loaded.g_optimizer) == 2
    assert float(loaded.g_optimizer.learning_rate) == pytest.approx(5e-4)


def test_d_steps_updates_the_critic_that_many_times_per_generator_step(tmp_path):
    image, cond = _images()
    batches = tf.data.Dataset.from_tensors((image, cond)).repeat()
    critics = {}
    for d_steps in (1, 3):
        keras.utils.set_random_seed(0)
        gan = ConditionalGAN(
            build_generator(24, 4, 8, 8), build_discriminator(24, 8, 8), d_steps=d_steps
        )
        gan.compile(run_eagerly=True)  # the same step, untraced: tracing two models took 40 s
        before = [np.array(w) for w in gan.discriminator.trainable_weights]
        gan.fit(batches, steps_per_epoch=2, verbose=0)
        assert int(gan.g_optimizer.iterations) == 2
        assert int(gan.d_optimizer.iterations) == 2 * d_steps
        pairs = zip(gan.discriminator.trainable_weights, before, strict=True)
        critics[d_steps] = sum(float(np.abs(np.array(w) - b).sum()) for w, b in pairs)
    assert critics[3] > critics[1]  # the extra updates moved it: not a counter alone
    path = tmp_path / "gan.keras"
    gan.save(path)
    assert keras.saving.load_model(path, safe_mode=True).d_steps == 3
    with pytest.raises(ValueError, match="d_steps"):
        ConditionalGAN(build_generator(24, 4, 8, 8), build_discriminator(24, 8, 8), d_steps=0)


def test_a_text_table_critic_shares_its_projection_and_keeps_the_table(tmp_path):
    """``condition_table``: concepts with one text vector get one projection, the table is
    not trained, and it survives the ``.keras`` round trip."""
    rng = np.random.default_rng(0)
    table = rng.normal(size=(8, 5)).astype(np.float32)
    table[3] = table[2]  # two concepts with the same text
    keras.utils.set_random_seed(0)
    critic = build_discriminator(24, 8, 8, pooling="sum", condition_table=table)
    image = _images(1)[0].repeat(8, axis=0)
    scores = np.asarray(critic([image, np.eye(8, dtype=np.float32)]))[:, 0]
    assert scores[2] == pytest.approx(scores[3], rel=1e-5)
    assert len(set(np.round(scores, 4))) > 2  # the condition matters
    gan = ConditionalGAN(build_generator(24, 4, 8, 8), critic)
    gan.compile(run_eagerly=True)
    onehot = np.eye(8, dtype=np.float32)[rng.integers(0, 8, 4)]
    gan.fit(tf.data.Dataset.from_tensors((_images()[0], onehot)).repeat(2), verbose=0)
    lookup = critic.get_layer("cond_table")
    assert not lookup.trainable_weights
    np.testing.assert_array_equal(np.asarray(lookup.kernel), table)
    path = tmp_path / "gan.keras"
    gan.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True).discriminator
    np.testing.assert_array_equal(np.asarray(loaded.get_layer("cond_table").kernel), table)
    with pytest.raises(ValueError, match="rows"):
        build_discriminator(24, 9, 8, condition_table=table)
