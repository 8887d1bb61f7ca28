"""Prompts to concepts without TensorFlow: the caption table and the concept bank."""

from __future__ import annotations

import numpy as np

from imgfix.data import concepts


def test_caption_table_prefers_the_concept_a_caption_names():
    names = ["cat", "cat face", "dog"]
    texts = {
        "cat": ["cat", "Katze", "猫"],
        "cat face": ["cat face", "Katzengesicht", "猫", "cat"],  # shares "猫" and "cat"
        "dog": ["dog", "Hund"],
    }
    table = concepts.caption_table(names, texts)
    assert table["cat"] == 0  # the English name wins over another concept's alternative
    assert table["猫"] == 0  # equal claims: the concept listing it earliest, then the first
    assert table["katzengesicht"] == 1 and table["hund"] == 2
    assert concepts.lookup(table, "  KATZE!! ") == 0
    assert concepts.lookup(table, "Katzen") is None
    assert concepts.lookup(table, "the dog") == concepts.lookup(table, "ein Hund") == 2
    assert concepts.lookup(table, "cats") == 0 and concepts.lookup(table, "a cat face") == 1
    assert concepts.lookup(table, "the") is None and concepts.lookup(table, "dogs dog") is None


def test_resolve_embeds_only_the_misses_and_ranks_the_bank():
    bank = concepts.centroids(
        np.array([[1.0, 0.0], [3.0, 0.1], [0.0, 1.0], [0.0, 2.0]], np.float32),
        np.array([0, 0, 1, 1]),
        2,
    )
    np.testing.assert_allclose(np.linalg.norm(bank, axis=1), 1.0, atol=1e-6)
    table = {"cat": 0, "dog": 1}
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.array([[0.1, 1.0] if "pup" in t else [1.0, 0.2] for t in texts], np.float32)

    assert concepts.resolve(table, bank, ["Cat", "dog"], embed) == [[(0, 1.0)], [(1, 1.0)]]
    assert calls == []  # all captions: the encoder is not needed
    found = concepts.resolve(table, bank, ["a pup", "cat", "kitty"], embed, top=2)
    assert calls == [["a pup", "kitty"]]
    assert [f[0][0] for f in found] == [1, 0, 0]
    assert found[1] == [(0, 1.0)] and len(found[0]) == 2 and found[0][0][1] > found[0][1][1]


def test_table_and_bank_survive_packing():
    rng = np.random.default_rng(0)
    bank = concepts.centroids(rng.standard_normal((40, 7)).astype(np.float32), np.arange(40) % 5, 5)
    table = {"cat": 0, "katze": 0, "猫": 0, "dog": 3, "hund": 3}
    packed = concepts.pack(table, bank)
    assert packed["shape"] == [5, 7] and isinstance(packed["bank"], str)
    table2, bank2 = concepts.unpack(packed)
    assert table2 == table
    np.testing.assert_allclose(bank2, bank, atol=0.02)
    np.testing.assert_allclose(np.linalg.norm(bank2, axis=1), 1.0, atol=1e-6)
