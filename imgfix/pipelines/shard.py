"""``--shard K/N``: one of N machines takes its share of a batch job (docs/scale.md).

Shards are dealt round-robin: item ``i`` (0-based, in the job's fixed order) belongs to shard
``i % N + 1``. Which shard owns an item then depends on its index alone, never on how many items
there are, and shard sizes differ by at most one however the work is ordered. Standard library
only: the CLI parses the option before any model or image library loads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from imgfix.errors import InputError

T = TypeVar("T")

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``k`` of ``n``, 1-based: ``Shard(2, 4)`` is ``--shard 2/4``."""

    k: int
    n: int

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"

    def select(self, items: Sequence[T]) -> list[T]:
        """This shard's items, in their order: every n-th one, from the k-th."""
        return list(items[self.k - 1 :: self.n])

    def owns(self, index: int) -> bool:
        """Whether the item at 0-based ``index`` of the whole job is this shard's."""
        return index % self.n == self.k - 1


def parse_shard(text: str | None) -> Shard | None:
    """``"K/N"`` as a Shard (None stays None); an InputError naming ``--shard`` and the reason."""
    if text is None:
        return None
    found = _SHARD.fullmatch(text)
    if found is None:
        raise InputError(f"--shard {text}: expected K/N, two whole numbers (e.g. --shard 2/4)")
    k, n = int(found[1]), int(found[2])
    if n < 1:
        raise InputError(f"--shard {text}: N, the number of shards, must be at least 1")
    if k < 1:
        raise InputError(f"--shard {text}: K counts from 1; choose K between 1 and {n}")
    if k > n:
        raise InputError(f"--shard {text}: K is past N; choose K between 1 and {n}")
    return Shard(k, n)
