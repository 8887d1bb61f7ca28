"""Prompt text to integer ids, in plain Python (no TensorFlow): Keras ops have no string type,
so the prompt encoder (``models/text.py``) receives ids made here.

  "ngram"  each word, and its character 2-, 3- and 4-grams with word-boundary marks, hashed
  "gru"    each character, hashed

Hashing uses CRC-32, never Python's salted ``hash()``, so ids are the same in every process.
"""

from __future__ import annotations

import re
import unicodedata
import zlib

import numpy as np

TEXT_KINDS = ("ngram", "gru")
NGRAM_BUCKETS = 1 << 15
CHAR_BUCKETS = 1 << 13
MAX_TOKENS = {"ngram": 96, "gru": 48}
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    """Case, width, accents-as-composed, punctuation and whitespace folded away."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def _bucket(piece: str, buckets: int) -> int:
    return zlib.crc32(piece.encode("utf-8")) % (buckets - 1) + 1


def _ngram_ids(text: str) -> list[int]:
    ids = []
    for word in normalize(text).split():
        ids.append(_bucket("w:" + word, NGRAM_BUCKETS))
        marked = f"<{word}>"
        for n in (2, 3, 4):
            ids += [_bucket(marked[i : i + n], NGRAM_BUCKETS) for i in range(len(marked) - n + 1)]
    return ids


def _char_ids(text: str) -> list[int]:
    return [_bucket(ch, CHAR_BUCKETS) for ch in normalize(text)]


def tokenize(texts: list[str] | str, kind: str = "ngram") -> np.ndarray:
    """Texts to ``(N, MAX_TOKENS[kind]) int32`` ids, 0-padded (an empty text is all zeros)."""
    if kind not in TEXT_KINDS:
        raise ValueError(f"unknown text encoder kind {kind!r}")
    texts = [texts] if isinstance(texts, str) else list(texts)
    width = MAX_TOKENS[kind]
    out = np.zeros((len(texts), width), dtype=np.int32)
    make = _ngram_ids if kind == "ngram" else _char_ids
    for row, text in enumerate(texts):
        ids = make(text)[:width]
        out[row, : len(ids)] = ids
    return out
