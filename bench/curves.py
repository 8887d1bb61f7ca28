"""Training curves: the validation figures of one or more runs against the step count.

Each run's ``log.jsonl`` (written by ``imgfix.training.checkpoints.Checkpointer``, a line per
checkpoint) gives one line per figure. Runs resumed many times keep one log, so a campaign's whole
history is one curve.

    python -m bench.curves runs/texture-inpainter runs/texture-inpainter-w15 \
        --figures val_hole_psnr,val_gradient_ratio,val_gradient_w1 -o docs/bench/curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_FIGURES = ("val_hole_psnr", "val_gradient_ratio", "val_gradient_w1")


def read_log(run: Path) -> list[dict]:
    """The checkpoints of a run (a folder with ``log.jsonl``, or the file), by step; a step
    logged twice (a run resumed from an older checkpoint) keeps its last entry."""
    path = run / "log.jsonl" if run.is_dir() else run
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            entries[entry["step"]] = entry
    return [entries[step] for step in sorted(entries)]


def plot(runs: list[Path], figures: tuple[str, ...], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imgfix.io import atomic_path

    fig, axes = plt.subplots(1, len(figures), figsize=(4.2 * len(figures), 3.4), squeeze=False)
    for run in runs:
        log = read_log(run)
        for ax, figure in zip(axes[0], figures, strict=True):
            points = [(e["step"], e[figure]) for e in log if figure in e]
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", label=run.name)
    for ax, figure in zip(axes[0], figures, strict=True):
        ax.set_xlabel("step")
        ax.set_title(figure)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or log.jsonl files)")
    parser.add_argument("--figures", default=",".join(DEFAULT_FIGURES))
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    plot(args.runs, tuple(args.figures.split(",")), args.output)


if __name__ == "__main__":
    main()
