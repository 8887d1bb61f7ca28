"""The prompt encoder's text side: the tokenizer (plain Python, the same in every process), the
two text towers (unit vectors for any string), their ``.keras`` round trip, and the held-out
caption split the trainers share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgfix.models.text import (
    CHAR_BUCKETS,
    MAX_TOKENS,
    NGRAM_BUCKETS,
    TEXT_KINDS,
    normalize,
    tokenize,
)
from imgfix.training.prompt import HOLDOUT_EVERY, split_texts

SAMPLES = ["cat", "  CAT!! ", "black cat", "猫", "Katze", "ｃａｔ", "", "a red ball on the grass"]
SLOW_EXAMPLES = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- tokenize ---------------------------------------------------------------------------------


def test_tokenize_is_the_same_in_another_process():
    """Ids come from CRC-32, never from Python's salted hash(): a process with another hash
    seed (checked: its hash() differs) gives the same ids."""
    script = textwrap.dedent(
        """
        import json, sys
        from imgfix.models.text import TEXT_KINDS, tokenize
        texts = json.loads(sys.argv[1])
        print(json.dumps({k: tokenize(texts, k).tolist() for k in TEXT_KINDS}))
        print(hash("black cat"))
        """
    )
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(SAMPLES)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONHASHSEED": seed, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr
    ids, salted = done.stdout.strip().splitlines()[-2:]
    assert int(salted) != hash("black cat")  # the two processes really hash differently
    assert json.loads(ids) == {k: tokenize(SAMPLES, k).tolist() for k in TEXT_KINDS}


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_tokenize_folds_case_width_whitespace_and_punctuation(kind):
    same = ["cat", "  CAT!! ", "Cat.", "ｃａｔ", "\tcat\n", "¡¡cat??"]
    ids = tokenize(same, kind)
    assert ids.shape == (len(same), MAX_TOKENS[kind]) and ids.dtype == np.int32
    assert (ids == ids[0]).all()
    assert ids[0].any()
    assert not np.array_equal(tokenize("dog", kind), ids[:1])
    assert np.array_equal(tokenize("black  cat", kind), tokenize("Black-Cat", kind))


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_tokenize_empty_text_is_all_zeros(kind):
    ids = tokenize(["", "   ", "!?.,;", "cat"], kind)
    assert not ids[:3].any()
    assert ids[3].any()
    assert tokenize([], kind).shape == (0, MAX_TOKENS[kind])


def test_tokenize_unknown_kind():
    with pytest.raises(ValueError, match="unknown text encoder kind"):
        tokenize("cat", "bert")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(TEXT_KINDS))
def test_tokenize_any_text(text, kind):
    ids = tokenize(text, kind)[0]
    buckets = NGRAM_BUCKETS if kind == "ngram" else CHAR_BUCKETS
    assert ids.shape == (MAX_TOKENS[kind],)
    assert ((ids >= 0) & (ids < buckets)).all()
    used = int(np.count_nonzero(ids))
    assert (ids[:used] > 0).all() and not ids[used:].any()  # ids first, then padding
    assert used == 0 or normalize(text)
    assert np.array_equal(tokenize(f"  {text} ?! ", kind)[0], ids)


def test_normalize():
    assert normalize("  Hello,   WORLD!! ") == "hello world"
    assert normalize("e\u0301t\u00e9") == "été"  # composed accents
    assert normalize("snake_case") == "snake case"
    assert normalize("ﬁsh") == "fish"  # compatibility ligature


# --- the text towers --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoders():
    import keras

    from imgfix.models.text import build_text_encoder

    keras.utils.set_random_seed(0)
    return {kind: build_text_encoder(kind, dim=16, width=32) for kind in TEXT_KINDS}


def _embed(encoder, texts, kind="ngram"):
    return np.asarray(encoder(tokenize(texts, kind), training=False))


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_encoder_gives_unit_vectors(encoders, kind):
    encoder = encoders[kind]
    assert encoder.input_shape == (None, MAX_TOKENS[kind]) and encoder.output_shape == (None, 16)
    texts = ["cat", "a black cat", "猫", "x" * 1000, "ein großer Hund"]
    vectors = _embed(encoder, texts, kind)
    assert vectors.shape == (len(texts), 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1], atol=1e-3)  # different texts differ
    # An empty prompt has no ids: the untrained tower (zero biases) maps it to zeros, finitely.
    empty = _embed(encoder, ["", "!!"], kind)
    assert np.isfinite(empty).all() and not empty.any()


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_encoder_is_deterministic_and_case_insensitive(encoders, kind):
    encoder = encoders[kind]
    texts = ["cat", "  CAT!! ", "Black Cat", "black-cat", "dog"]
    first, again = _embed(encoder, texts, kind), _embed(encoder, texts, kind)
    assert np.array_equal(first, again)
    np.testing.assert_allclose(first[0], first[1], atol=1e-6)
    np.testing.assert_allclose(first[2], first[3], atol=1e-6)
    # A row does not depend on the rest of its batch.
    np.testing.assert_allclose(_embed(encoder, ["dog"], kind)[0], first[4], atol=1e-6)


@SLOW_EXAMPLES
@given(st.lists(st.text(max_size=120), min_size=1, max_size=12))
def test_ngram_encoder_on_any_unicode(encoders, texts):
    encoder = encoders["ngram"]
    padded = [f" \t{t}?! " for t in texts]
    ids = tokenize(texts + padded)
    vectors = np.asarray(encoder(ids, training=False))  # one call for the whole example
    assert np.isfinite(vectors).all()
    norms = np.linalg.norm(vectors, axis=1)
    has_ids = ids.any(axis=1)
    np.testing.assert_allclose(norms[has_ids], 1.0, atol=1e-5)
    np.testing.assert_allclose(norms[~has_ids], 0.0, atol=1e-6)
    n = len(texts)
    np.testing.assert_allclose(vectors[:n], vectors[n:], atol=1e-6)
    again = np.asarray(encoder(ids, training=False))
    assert np.array_equal(vectors, again)


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_keras_round_trip_in_safe_mode(encoders, kind, tmp_path):
    import keras

    encoder = encoders[kind]
    path = tmp_path / f"{kind}.keras"
    encoder.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.name == encoder.name
    assert np.array_equal(_embed(loaded, SAMPLES, kind), _embed(encoder, SAMPLES, kind))


def test_zoo_round_trip(encoders, tmp_path):
    from imgfix import zoo

    card = {"kind": "text-encoder", "tokenizer": "ngram", "dim": 16}
    zoo.save_model(encoders["ngram"], "enc", card, tmp_path)
    loaded, saved = zoo.load_model("enc", tmp_path, kind="text-encoder")
    assert saved["tokenizer"] == "ngram" and saved["sha256"]
    assert np.array_equal(_embed(loaded, SAMPLES), _embed(encoders["ngram"], SAMPLES))


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_compact_stores_the_table_in_half_precision(encoders, kind, tmp_path):
    import keras

    from imgfix.models.text import compact

    encoder = encoders[kind]
    small = compact(encoder)
    assert small.name == encoder.name and small.output_shape == encoder.output_shape
    table = small.get_layer(f"{'ngram' if kind == 'ngram' else 'char'}_embedding").embeddings
    assert keras.backend.standardize_dtype(table.dtype) == "float16"
    texts = ["cat", "a black cat", "猫", "ein großer Hund", ""]
    full, half = _embed(encoder, texts, kind), _embed(small, texts, kind)
    assert half.dtype == np.float32 and np.isfinite(half).all()
    np.testing.assert_allclose(np.linalg.norm(half[:-1], axis=1), 1.0, atol=1e-5)
    assert (np.sum(full[:-1] * half[:-1], axis=1) > 0.9999).all()
    assert not half[-1].any()

    small.save(tmp_path / "small.keras")
    encoder.save(tmp_path / "full.keras")
    loaded = keras.saving.load_model(tmp_path / "small.keras", safe_mode=True)
    assert np.array_equal(_embed(loaded, texts, kind), half)
    ratio = (tmp_path / "small.keras").stat().st_size / (tmp_path / "full.keras").stat().st_size
    assert ratio < 0.7


def test_contrastive_model_pairs_texts_with_images(encoders):
    from imgfix.models.text import build_contrastive, build_image_encoder

    images = build_image_encoder(image_size=24, dim=16, filters=4)
    model = build_contrastive(encoders["ngram"], images)
    batch = np.random.default_rng(0).random((3, 24, 24, 3), dtype=np.float32)
    logits, transposed = model([tokenize(["a", "b", "c"]), batch], training=False)
    logits, transposed = np.asarray(logits), np.asarray(transposed)
    assert logits.shape == (3, 3)
    np.testing.assert_allclose(transposed, logits.T, atol=1e-6)
    # Cosines times the initial temperature 1/0.07: bounded by it.
    assert np.abs(logits).max() <= 1 / 0.07 + 1e-3
    image_vectors = np.asarray(images(batch, training=False))
    np.testing.assert_allclose(np.linalg.norm(image_vectors, axis=1), 1.0, atol=1e-5)


# --- held-out captions ------------------------------------------------------------------------


def test_split_texts_keeps_each_concepts_name():
    names = [f"thing {i}" for i in range(300)]
    held_names = [n for n in names if zlib.crc32(n.encode()) % HOLDOUT_EVERY == 0]
    assert held_names  # some names would be held out if they were ordinary captions
    texts = {n: [n, f"{n} again", f"another {n}"] for n in names}
    train, held = split_texts(texts)
    for n in names:
        assert n in train[n] and n not in held[n]
        assert sorted(train[n] + held[n]) == sorted(texts[n])
        assert train[n] == [t for t in texts[n] if t not in held[n]]  # order kept
    fraction = sum(len(h) for h in held.values()) / sum(len(t) for t in texts.values())
    assert 0.03 < fraction < 0.2
    # A name that is another concept's caption is held out there like any caption.
    other = {"a": ["a", held_names[0]], held_names[0]: [held_names[0]]}
    train, held = split_texts(other)
    assert held["a"] == [held_names[0]] and train[held_names[0]] == [held_names[0]]


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(min_size=1), st.lists(st.text(min_size=1)), max_size=8))
def test_split_texts_is_a_stable_partition(raw):
    texts = {concept: [concept, *items] for concept, items in raw.items()}
    train, held = split_texts(texts)
    assert (train, held) == split_texts(texts)
    assert (train, held) == split_texts(json.loads(json.dumps(texts)))
    for concept, items in texts.items():
        assert concept in train[concept]
        assert not set(train[concept]) & set(held[concept])
        assert set(train[concept]) | set(held[concept]) == set(items)
