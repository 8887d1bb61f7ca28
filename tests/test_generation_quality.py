"""The generation evaluator's metrics on tiny synthetic arrays: Fréchet distance, top-k
accuracy, the evaluator network's shapes and the scoring wiring with stand-in models. One test
runs the command end to end on the real corpus with untrained tiny models (skipped without
data/emoji)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench import generation_quality as gq

DATA = Path(__file__).resolve().parent.parent / "data" / "emoji"


def _features(n=600, d=6, seed=0, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    return rng.standard_normal((n, d)) @ mix * scale + shift


# ---------------------------------------------------------------------------- Fréchet distance


def test_fd_of_a_set_with_itself_is_zero():
    x = _features()
    assert gq.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fd_grows_with_a_mean_shift_by_its_squared_length():
    x = _features()
    previous = 0.0
    for length in (0.5, 1.0, 2.0, 4.0):
        shift = np.full(x.shape[1], length / np.sqrt(x.shape[1]))
        fd = gq.frechet_distance(x, x + shift)
        # Same covariance on both sides: FD is exactly the squared distance of the means.
        assert fd == pytest.approx(length**2, rel=1e-6)
        assert fd > previous
        previous = fd


def test_fd_is_symmetric_and_positive_between_different_sets():
    a = _features(seed=1)
    b = _features(seed=2, shift=0.3, scale=1.5)
    ab, ba = gq.frechet_distance(a, b), gq.frechet_distance(b, a)
    assert ab > 0.5
    assert ab == pytest.approx(ba, rel=1e-9)


def test_fd_matches_the_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 0.0]), np.array([4.0, 1.0, 9.0])  # one singular
    fd = gq.frechet_from_stats(mu1, np.diag(var1), mu2, np.diag(var2))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert fd == pytest.approx(expected, rel=1e-9)


def test_fd_matches_the_usual_sqrtm_formula():
    linalg = pytest.importorskip("scipy.linalg")
    mu1, s1 = gq.gaussian_stats(_features(seed=3))
    mu2, s2 = gq.gaussian_stats(_features(seed=4, shift=0.2, scale=0.7))
    covmean = linalg.sqrtm(s1 @ s2).real
    usual = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
    assert gq.frechet_from_stats(mu1, s1, mu2, s2) == pytest.approx(usual, rel=1e-6)


def test_fd_needs_two_samples():
    with pytest.raises(ValueError, match="N >= 2"):
        gq.gaussian_stats(np.zeros((1, 4)))


# ---------------------------------------------------------------------------- accuracy


def test_accuracy_is_one_for_perfect_and_chance_for_shuffled_predictions():
    rng = np.random.default_rng(0)
    classes, n = 50, 20000
    labels = rng.integers(0, classes, n)
    logits = rng.standard_normal((n, classes))
    logits[np.arange(n), labels] += 10.0  # always right
    assert gq.topk_accuracy(logits, labels, 1) == 1.0
    assert gq.topk_accuracy(logits, labels, 5) == 1.0
    shuffled = rng.permutation(labels)
    assert gq.topk_accuracy(logits, shuffled, 1) == pytest.approx(1 / classes, abs=0.006)
    assert gq.topk_accuracy(logits, shuffled, 5) == pytest.approx(5 / classes, abs=0.01)


def test_accuracy_counts_ranks_and_ties_against_the_label():
    logits = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    labels = np.array([0, 2, 1])
    assert gq.topk_accuracy(logits, labels, 1) == pytest.approx(1 / 3)
    assert gq.topk_accuracy(logits, labels, 2) == pytest.approx(1 / 3)
    assert gq.topk_accuracy(logits, labels, 3) == pytest.approx(1.0)


# ---------------------------------------------------------------------------- the network


def test_evaluator_shapes_features_and_cost():
    model = gq.build_evaluator(10, image_size=48, width=8)
    assert model.output_shape == (None, 10)
    assert model.get_layer(gq.FEATURES).output.shape == (None, 64)
    evaluator = gq.Evaluator(model, {"concepts": [str(i) for i in range(10)], "image_size": 48})
    # uint8 images of another size are resized to the evaluator's.
    images = np.random.default_rng(0).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    features, logits = evaluator(images)
    assert features.shape == (3, 64) and logits.shape == (3, 10)
    assert np.isfinite(features).all()
    assert 0 < gq.count_macs(model) < 2_000_000


def test_default_evaluator_stays_small():
    model = gq.build_evaluator(1652)
    assert model.get_layer(gq.FEATURES).output.shape[-1] in range(128, 257)
    assert model.count_params() * 4 < 3_000_000  # float32 bytes: under 3 MB on disk
    assert gq.count_macs(model) < 10_000_000


def test_augment_keeps_shape_and_range_and_varies_per_image():
    import tensorflow as tf

    x = np.full((4, 48, 48, 3), 1.0, np.float32)
    x[:, 16:32, 16:32] = (0.9, 0.2, 0.1)
    out = gq.augment(tf.constant(x)).numpy()
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out[0], out[1])
    # Geometry fills with white, so the corners stay light.
    assert out[:, 0, 0].mean() > 0.8


# ---------------------------------------------------------------------------- the wiring


class _Generator:
    """Draws concept c as a flat image whose red channel encodes c."""

    def __init__(self, concepts):
        self.concepts, self.z_dim = concepts, 4
        self.text_encoder, self.calls = None, []

    def network(self, z, cond):
        value = (np.argmax(cond, axis=1) + 1) / 255.0 + 0.0 * z[:, 0]
        return np.broadcast_to(value[:, None, None, None], (len(z), 8, 8, 3)).astype(np.float32)

    def conditions(self, prompts):
        self.calls.append(list(prompts))
        rows = [self.concepts.index(p) for p in prompts]
        return np.eye(len(self.concepts), dtype=np.float32)[rows]


class _Evaluator:
    """Reads the concept back from the red channel: a perfect classifier of _Generator's images."""

    def __init__(self, classes):
        self.classes = classes

    def __call__(self, images):
        concept = images[:, 0, 0, 0].astype(int) - 1
        logits = np.eye(self.classes)[concept]
        rng = np.random.default_rng(len(images))
        features = rng.standard_normal((len(images), 3)) + concept[:, None] * 0.01
        return features, logits


def _reference(concepts, n=40):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(concepts)), 2)
    return SimpleNamespace(
        concepts=concepts,
        labels=labels,
        features=rng.standard_normal((len(labels), 3)),
        sample=np.sort(rng.choice(len(labels), n, replace=False)),
        n=n,
        seed=0,
    )


def test_generate_images_embeds_each_prompt_once_and_is_reproducible():
    gen = _Generator(["a", "b", "c"])
    prompts = ["a", "a", "c", "b", "c"]
    first = gq.generate_images(gen, prompts, seed=[0, 1])
    assert gen.calls == [["a", "c", "b"]]
    assert first.dtype == np.uint8 and first.shape == (5, 8, 8, 3)
    assert list(first[:, 0, 0, 0]) == [1, 1, 3, 2, 3]
    assert np.array_equal(first, gq.generate_images(gen, prompts, seed=[0, 1]))


def test_a_perfect_generator_scores_one_and_shuffling_drops_to_chance():
    concepts = [f"c{i}" for i in range(200)]
    result = gq.evaluate_generator(
        _Generator(concepts), _Evaluator(len(concepts)), _reference(concepts), k=2
    )
    assert result["images"] == 400 and result["examples"].shape == (400, 8, 8, 3)
    assert result["top1"] == 1.0 and result["top5"] == 1.0
    assert result["shuffled_top1"] < 0.03 and result["shuffled_top5"] < 0.05
    assert result["fd"] >= 0.0 and result["fd_samples"] == 40
    table = gq.markdown(
        {"perfect": result},
        {"fonts": {"noto": {"top1": 0.99, "top5": 1.0}}, "fd_real_samples": 1.5},
        len(concepts),
        40,
    )
    assert "| perfect | 100.0% | 100.0% |" in table
    assert "chance (200 concepts) | 0.50% | 2.5%" in table


def test_a_label_generator_must_know_every_concept():
    from imgfix.errors import InputError

    with pytest.raises(InputError, match="fixed labels"):
        gq.evaluate_generator(
            _Generator(["a", "b"]), _Evaluator(3), _reference(["a", "b", "x"], n=4)
        )


# ---------------------------------------------------------------------------- end to end


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "captions.jsonl").is_file(), reason="needs data/emoji")
def test_command_scores_a_generator_and_updates_its_card(tmp_path, monkeypatch):
    """Untrained tiny models on the real corpus: checks the plumbing, not the figures."""
    import keras
    from keras import layers

    from imgfix import zoo
    from imgfix.data.captions import read_corpus

    monkeypatch.setattr("imgfix.runtime.setup", lambda *args, **kwargs: None)
    concepts = read_corpus(DATA).concept_names
    keras.utils.set_random_seed(0)
    evaluator = gq.build_evaluator(len(concepts), width=4)
    zoo.save_model(evaluator, "tiny-eval", {"kind": "evaluator", "concepts": concepts}, tmp_path)
    z, cond = keras.Input((4,)), keras.Input((len(concepts),))
    x = layers.Dense(8)(layers.Concatenate()([z, cond]))
    x = layers.Reshape((6, 6, 3))(layers.Dense(108, activation="sigmoid")(x))
    generator = keras.Model([z, cond], layers.UpSampling2D(8)(x))
    card = {
        "kind": "generator",
        "condition": "label",
        "concepts": concepts,
        "z_dim": 4,
        "image_size": 48,
    }
    zoo.save_model(generator, "tiny-gen", card, tmp_path)
    out = tmp_path / "figures.json"
    gq.main(
        ["--zoo", str(tmp_path), "--models", "tiny-gen", "--evaluator", "tiny-eval"]
        + ["--k", "1", "--samples", "200", "--json", str(out), "--update-card"]
    )
    figures = json.loads(out.read_text())
    model = figures["models"]["tiny-gen"]
    assert model["images"] == len(concepts) and model["fd_samples"] == 200
    assert 0.0 <= model["top1"] <= model["top5"] <= 1.0 and model["fd"] >= 0.0
    ceiling = figures["ceiling"]
    assert set(ceiling["fonts"]) == {"noto", "openmoji"}
    assert ceiling["fd_fonts"]["concepts"] == 200
    evaluation = zoo.read_card("tiny-gen", tmp_path)["metrics"]["evaluation"]
    assert evaluation["evaluator"] == "tiny-eval" and evaluation["fd"] == model["fd"]
    assert "--update-card" in evaluation["command"]


def test_nearest_psnr_tells_a_copy_from_a_new_image():
    rng = np.random.default_rng(0)
    bank = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    copies = bank[[3, 7]]
    noisy = np.clip(bank[[3]].astype(int) + rng.integers(-40, 41, (1, 8, 8, 3)), 0, 255)
    psnr = gq.nearest_psnr(np.concatenate([copies, noisy.astype(np.uint8)]), bank)
    np.testing.assert_allclose(psnr[:2], 100.0, rtol=1e-5)  # exact copies: the 1e-10 floor
    assert 10 < psnr[2] < 30
    itself = gq.nearest_psnr(bank, bank, exclude_self=True)
    assert (itself < 15).all()  # random images are far from each other
    figures = gq.copy_figures(psnr)
    assert figures["near_copies_above_30db"] == pytest.approx(2 / 3, abs=1e-4)
