"""The texture-transfer inpainter: builder, what its pieces compute, round trip, LiteRT."""

import keras
import numpy as np
import pytest

from imgfix.models import InpaintingGAN, build_context_encoder, build_patch_discriminator
from imgfix.models.texture import (
    BLOCK,
    Detail,
    OffsetTransfer,
    TextureTransfer,
    build_overlapped_inpainter,
    build_texture_inpainter,
    known_blur,
    rebuild_texture_inpainter,
    tent,
    texture_loss,
)


def _model(seed: int = 0):
    keras.utils.set_random_seed(seed)
    return build_texture_inpainter(build_context_encoder(filters=8), filters=8, key_dim=8)


def _batch(size: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.random((2, size, size, 3), dtype=np.float32)
    mask = np.zeros((2, size, size, 1), np.float32)
    mask[:, size // 4 : size // 2, size // 4 : 3 * size // 4] = 1
    return image * (1 - mask), mask


def test_known_pixels_are_exact_and_only_the_attention_and_gate_train():
    model = _model()
    image, mask = _batch(96)
    out = np.asarray(model([image, mask]))
    assert out.shape == image.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(out[mask[..., 0] == 0], image[mask[..., 0] == 0])
    assert 0 < len(model.trainable_weights) < len(model.weights)
    base = model.get_layer("base")
    assert not base.trainable


def test_known_blur_ignores_the_hole_and_detail_is_zero_on_flat_known_areas():
    image = np.full((1, 32, 32, 3), 0.25, np.float32)
    mask = np.zeros((1, 32, 32, 1), np.float32)
    mask[:, 8:24, 8:24] = 1
    image[:, 8:24, 8:24] = 1.0  # whatever is under the hole must not leak out
    blurred = np.asarray(known_blur(image, 1.0 - mask, 2.0))
    np.testing.assert_allclose(blurred[0][mask[0, ..., 0] == 0], 0.25, atol=1e-5)
    detail = np.asarray(Detail()([image, mask]))
    np.testing.assert_allclose(detail, 0.0, atol=1e-5)


def test_transfer_copies_the_detail_of_the_matching_known_block():
    # Two distinct feature vectors; the hole block's query equals the key of block (0, 1), so
    # with a sharp softmax it must receive exactly that block's detail.
    layer = TextureTransfer(reach=1e6)
    h = w = 2
    features = np.zeros((1, h, w, 2), np.float32)
    features[0, 0, 0] = (100, 0)
    features[0, 0, 1] = (0, 100)
    features[0, 1, 0] = (100, 0)
    features[0, 1, 1] = (0, 100)  # the hole block
    rng = np.random.default_rng(0)
    detail = rng.normal(size=(1, h * BLOCK, w * BLOCK, 3)).astype(np.float32)
    mask = np.zeros((1, h * BLOCK, w * BLOCK, 1), np.float32)
    mask[:, BLOCK:, BLOCK:] = 1
    pasted = np.asarray(layer([features, features, detail, mask]))
    np.testing.assert_allclose(
        pasted[0, BLOCK:, BLOCK:], detail[0, :BLOCK, BLOCK:], rtol=1e-4, atol=1e-5
    )


def test_texture_loss_prices_missing_texture_but_not_its_phase():
    rng = np.random.default_rng(0)
    truth = (0.5 + 0.2 * rng.standard_normal((2, 64, 64, 3))).astype(np.float32)
    mask = np.zeros((2, 64, 64, 1), np.float32)
    mask[:, 16:48, 16:48] = 1
    smooth = truth * (1 - mask) + 0.5 * mask
    shifted = truth * (1 - mask) + np.roll(truth, 7, axis=2) * mask  # same texture, other phase
    assert float(texture_loss(truth, truth, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(texture_loss(truth, smooth, mask)) > 0.5
    assert float(texture_loss(truth, shifted, mask)) < 0.15


def test_trainer_with_a_texture_model_trains_resumes_and_skips_the_critic(tmp_path):
    trainer = InpaintingGAN(
        _model(),
        build_patch_discriminator(filters=8),
        adv_weight=0.0,
        texture_weight=5.0,
    )
    trainer.compile()
    image, mask = _batch(64)
    critic = [w.numpy().copy() for w in trainer.discriminator.weights]
    import tensorflow as tf

    logs = trainer.fit(tf.data.Dataset.from_tensors((image, mask)), verbose=0).history
    assert logs["texture"][0] > 0 and logs["d_loss"][0] == 0
    for before, after in zip(critic, trainer.discriminator.weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    path = tmp_path / "t.keras"
    trainer.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.texture_weight == 5.0 and loaded.step == 1
    np.testing.assert_array_equal(
        np.asarray(loaded.generator([image, mask])), np.asarray(trainer.generator([image, mask]))
    )


def test_texture_model_exports_to_litert_with_dynamic_sizes(tmp_path):
    from imgfix import export, runtime

    model = _model()
    path = tmp_path / "t.tflite"
    export.to_litert(model, path)
    litert = runtime.LiteRTModel(path, num_threads=1, inputs=["image", "mask"])
    for size in (64, 96):
        image, mask = _batch(size, seed=size)
        got = litert(image=image, mask=mask)
        want = np.asarray(model([image, mask]))
        np.testing.assert_allclose(got, want, atol=2e-5)
        np.testing.assert_array_equal(got[mask[..., 0] == 0], image[mask[..., 0] == 0])


def test_half_shifted_tents_sum_to_one_and_vanish_on_their_own_block_edges():
    size = 3 * BLOCK
    zero, half = np.asarray(tent(size, 0, BLOCK)), np.asarray(tent(size, BLOCK // 2, BLOCK))
    np.testing.assert_allclose(zero + half, 1.0, atol=1e-6)
    assert zero[::BLOCK].max() < 0.1 and half[BLOCK // 2 :: BLOCK].max() < 0.1  # own edges
    assert zero[BLOCK // 2 :: BLOCK].min() > 0.9


def test_overlapped_model_blends_four_grids_back_to_a_shared_fill_and_keeps_known_pixels(
    tmp_path,
):
    model = _model()
    image, mask = _batch(64)
    hole = mask[..., 0] == 1
    overlapped = build_overlapped_inpainter(model)
    want = np.asarray(overlapped([image, mask]))
    np.testing.assert_array_equal(want[~hole], image[~hole])
    # With the gate shut every grid returns the base's fill, so the blend must give it back.
    gate = model.get_layer("texture_head").get_layer("gate")
    kernel, bias = gate.get_weights()
    gate.set_weights([kernel * 0, bias * 0 - 1e4])
    np.testing.assert_allclose(
        np.asarray(overlapped([image, mask])), np.asarray(model([image, mask])), atol=1e-5
    )
    gate.set_weights([kernel, bias])
    path = tmp_path / "overlapped.keras"
    overlapped.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(again([image, mask])), want, atol=1e-6)


def test_coherence_prefers_the_source_whose_neighbours_match_too():
    # Hole block (1, 1) matches two sources equally on its own; only source (1, 3) has the
    # right neighbours (its left neighbour matches the hole block's left neighbour).
    h, w, d = 3, 5, 2
    q = np.zeros((1, h, w, d), np.float32)
    q[0, 1, 1] = (10, 0)
    q[0, 1, 0] = (0, 10)
    k = q.copy()
    k[0, 1, 3] = (10, 0)  # the coherent source: its left neighbour (1, 2) is like (1, 0)
    k[0, 1, 2] = (0, 10)
    k[0, 2, 4] = (10, 0)  # an equally good source on its own, with nothing around it
    detail = np.zeros((1, h * BLOCK, w * BLOCK, 1), np.float32)
    detail[0, BLOCK : 2 * BLOCK, 3 * BLOCK : 4 * BLOCK] = 1.0  # the coherent source
    detail[0, 2 * BLOCK :, 4 * BLOCK :] = -1.0
    mask = np.zeros((1, h * BLOCK, w * BLOCK, 1), np.float32)
    mask[:, BLOCK : 2 * BLOCK, BLOCK : 2 * BLOCK] = 1
    pasted = {}
    for c in (0.0, 0.9):
        layer = TextureTransfer(reach=1e6, coherence=c)
        out = np.asarray(layer([q, k, detail, mask]))
        layer.sharing.assign(-30.0)  # no price for sharing here
        out = np.asarray(layer([q, k, detail, mask]))
        pasted[c] = float(out[0, BLOCK + 8, BLOCK + 8, 0])
    assert abs(pasted[0.0]) < 0.2  # a tie: the two sources cancel
    assert pasted[0.9] > 0.9


def test_rebuilt_model_keeps_its_weights_and_exports_with_coherence(tmp_path):
    from imgfix import export, runtime

    model = _model()
    image, mask = _batch(64)
    want = np.asarray(model([image, mask]))
    np.testing.assert_array_equal(np.asarray(rebuild_texture_inpainter(model)([image, mask])), want)
    coherent = rebuild_texture_inpainter(model, coherence=0.5)
    assert len(coherent.trainable_weights) == len(model.trainable_weights) + 1
    got = np.asarray(coherent([image, mask]))
    np.testing.assert_array_equal(got[mask[..., 0] == 0], image[mask[..., 0] == 0])
    path = tmp_path / "c.tflite"
    export.to_litert(coherent, path)
    litert = runtime.LiteRTModel(path, num_threads=1, inputs=["image", "mask"])
    np.testing.assert_allclose(litert(image=image, mask=mask), got, atol=2e-5)


def test_offset_transfer_copies_one_contiguous_piece_from_the_best_displacement():
    # Every block's key says "row r, column c"; every hole query asks for the block three
    # columns to its right. With a sharp choice the middle of the hole, whose neighbours all
    # choose the same, must receive that displaced detail pixel for pixel: one piece, as
    # shift-map copies, not a blend.
    h, w = 5, 8
    rows, cols = np.meshgrid(np.arange(h) * np.pi / 8, np.arange(w) * np.pi / 8, indexing="ij")
    wanted = cols + 3 * np.pi / 8
    keys = np.stack([np.cos(rows), np.sin(rows), np.cos(cols), np.sin(cols)], -1)[None]
    queries = np.stack([np.cos(rows), np.sin(rows), np.cos(wanted), np.sin(wanted)], -1)[None]
    rng = np.random.default_rng(0)
    detail = rng.normal(size=(1, h * BLOCK, w * BLOCK, 3)).astype(np.float32)
    mask = np.zeros((1, h * BLOCK, w * BLOCK, 1), np.float32)
    mask[:, BLOCK : 4 * BLOCK, BLOCK : 4 * BLOCK] = 1  # 3 x 3 hole blocks
    detail *= 1 - mask
    layer = OffsetTransfer(reach=1e6, coherence=0)
    layer.build(None)
    layer.sharpness.assign(np.log(1000.0))
    inputs = [queries.astype(np.float32), keys.astype(np.float32), detail, mask]
    pasted = np.asarray(layer(inputs))[0]
    middle = pasted[2 * BLOCK : 3 * BLOCK, 2 * BLOCK : 3 * BLOCK]
    np.testing.assert_allclose(
        middle, detail[0, 2 * BLOCK : 3 * BLOCK, 5 * BLOCK : 6 * BLOCK], atol=1e-3
    )


def test_offset_model_starts_from_a_block_model_and_exports(tmp_path):
    from imgfix import export, runtime

    model = _model()
    offsets = rebuild_texture_inpainter(model, transfer="offsets")
    head = offsets.get_layer("texture_head")
    assert isinstance(head.get_layer("transfer"), OffsetTransfer)
    np.testing.assert_array_equal(
        head.get_layer("queries").get_weights()[0],
        model.get_layer("texture_head").get_layer("queries").get_weights()[0],
    )
    path = tmp_path / "o.tflite"
    export.to_litert(offsets, path)
    litert = runtime.LiteRTModel(path, num_threads=1, inputs=["image", "mask"])
    for size in (64, 96):
        image, mask = _batch(size, seed=size)
        want = np.asarray(offsets([image, mask]))
        got = litert(image=image, mask=mask)
        np.testing.assert_allclose(got, want, atol=1e-4)  # 168 displacements summed
        np.testing.assert_array_equal(got[mask[..., 0] == 0], image[mask[..., 0] == 0])
