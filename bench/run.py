"""Run the benchmark suite and write its page.

    python -m bench.run                  # everything: docs/benchmarks.md (make bench)
    python -m bench.run --quick          # a tiny subset in under 2 minutes (make bench-quick)
    python -m bench.run --only speed     # one part, then re-render the page

Each part runs in its own process (``python -m bench.<module>``), so one part's memory and
threads never colour another's timings, and leaves a JSON file in ``--results``. The page is
rendered from whatever JSON files are there (``bench.report``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import report
from imgfix.io import atomic_write_text

DATA = Path("data/emoji")


def commands(results: Path, assets: Path, quick: bool, data: Path) -> dict[str, list[str]]:
    """The command line of each part, full or quick."""
    quality = ["bench.inpaint_quality", "--json", results / "inpaint_quality.json",
               "--figure", assets / "inpaint-side-by-side.png"]  # fmt: skip
    speed = ["bench.speed", "--json", results / "speed.json"]
    throughput = ["bench.throughput", "--json", results / "throughput.json"]
    parity = ["bench.runtime_parity", "--json", results / "runtime_parity.json"]
    generation = ["bench.generation_quality", "--data", data, "--grids", assets / "generation",
                  "--json", results / "generation_quality.json"]  # fmt: skip
    if quick:
        quality += ["--images", "astronaut", "--sizes", "96",
                    "--methods", "telea-r3,ns-r3,biharmonic,fsr-fast,shiftmap,coarse-fill,"
                    "coarse+shiftmap-hf,mean-colour"]  # fmt: skip
        speed.append("--quick")
        throughput.append("--quick")
        parity.append("--quick")
        generation += ["--k", "1", "--samples", "64"]
    else:
        quality.append("--update-card")
        generation.append("--update-card")
    parts = {"quality": quality, "speed": speed, "parity": parity, "throughput": throughput}
    if (data / "captions.jsonl").is_file():
        parts["generation"] = generation
    return {stage: [sys.executable, "-m", *map(str, argv)] for stage, argv in parts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny subset; checks the harness")
    parser.add_argument("--only", help="comma-separated parts: " + ",".join(report.PARTS))
    parser.add_argument("--results", type=Path, help="JSON folder (default outputs/bench[-quick])")
    parser.add_argument("--out", type=Path, help="the page (default docs/benchmarks.md)")
    parser.add_argument("--data", type=Path, default=DATA, help="the emoji corpus (make emoji)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the parts' logs, not TensorFlow's
    results = args.results or Path("outputs/bench-quick" if args.quick else "outputs/bench")
    out = args.out or (results / "benchmarks.md" if args.quick else Path("docs/benchmarks.md"))
    assets = out.parent / "bench"
    results.mkdir(parents=True, exist_ok=True)
    assets.mkdir(parents=True, exist_ok=True)
    todo = commands(results, assets, args.quick, args.data)
    # The machine and the commit measured, recorded before any part runs (a full run updates
    # the model cards as it goes, which would make the tree look modified).
    now = {**report.machine(), "run": "quick" if args.quick else "full"}
    recorded = results / report.MACHINE
    if args.only and recorded.is_file():  # a part rerun later: say when, and on which commit
        info = json.loads(recorded.read_text())
        info["later reruns"] = [*info.get("later reruns", []),
                                f"{args.only} on {now['date']} at {now['commit']}"]  # fmt: skip
    else:
        info = now
    atomic_write_text(recorded, json.dumps(info, indent=1))
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - set(report.PARTS))
        if unknown:
            parser.error(f"unknown part(s): {', '.join(unknown)}")
        todo = {stage: cmd for stage, cmd in todo.items() if stage in wanted}
    if "generation" not in todo and (not args.only or "generation" in args.only):
        print(f"skipping generation: no corpus in {args.data} (make emoji)", file=sys.stderr)
    failed = []
    for stage, command in todo.items():
        print(f"== {stage}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        # A part that fails must not leave an older run's figures on the page.
        (results / report.PARTS[stage][0]).unlink(missing_ok=True)
        start = time.perf_counter()
        if subprocess.run(command).returncode != 0:
            failed.append(stage)
        print(f"== {stage}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    report.render(results, out)
    print(f"wrote {out}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
