"""The evaluator's figures of a generator against its training step, while it trains.

    python -m bench.generation_curve --zoo runs/zoo --model NAME --log runs/NAME/eval.jsonl

Every time the trainer exports a new version of ``--model`` to the zoo (at each checkpoint),
this scores it as ``make bench-generate`` does (English-name prompts for every concept, top-1,
top-5, FD against the fixed real sample) and appends ``{"step", "top1", "top5", "fd", ...}`` to
``--log``; ``python -m bench.curves`` plots the file. It runs until stopped; ``--once`` scores
the current export and exits.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.generation_quality import (
    DEFAULT_DATA,
    EVALUATOR,
    Reference,
    evaluate_generator,
    load_evaluator,
)


def _scored(log: Path) -> set[str]:
    if not log.is_file():
        return set()
    return {
        json.loads(line).get("generator_sha256") for line in log.read_text().splitlines() if line
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default=None)
    parser.add_argument("--model", required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--evaluator", default=EVALUATOR)
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--poll", type=float, default=30.0, help="seconds between looks")
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args(argv)

    from imgfix import zoo as zoo_mod
    from imgfix.pipelines.generate import load_generator
    from imgfix.runtime import setup

    setup("cpu", args.seed)
    evaluator = load_evaluator(args.evaluator, args.zoo)
    reference = Reference(evaluator, args.data, 1500, args.seed)
    from imgfix.errors import InputError

    while True:
        try:
            card = zoo_mod.read_card(args.model, args.zoo, kind="generator")
        except InputError:  # not exported yet: the run's first checkpoint is still to come
            card = {"sha256": None}
        if card["sha256"] is not None and card.get("sha256") not in _scored(args.log):
            generator = load_generator(args.model, args.zoo)
            temperature = args.temperature
            if temperature is None:
                temperature = float(card.get("sampling", {}).get("temperature", 1.0))
            result = evaluate_generator(generator, evaluator, reference, temperature=temperature)
            result.pop("examples")
            row = {"step": card.get("steps"), "time": time.time(), **result,
                   "generator_sha256": card.get("sha256")}  # fmt: skip
            with open(args.log, "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps({k: row[k] for k in ("step", "top1", "top5", "fd")}), flush=True)
        if args.once:
            return
        time.sleep(args.poll)


if __name__ == "__main__":
    main()
