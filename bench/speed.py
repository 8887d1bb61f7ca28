"""Start-up time, cold inpainting time and peak memory of the real command line, each next to a
reference measured in the same run.

    python -m bench.speed [--repeat 5] [--model photo-inpainter]

Every figure is the median over ``--repeat`` runs of a fresh process (after one warm-up run, so
the disk cache is warm). Peak RSS comes from ``getrusage`` of the finished child process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent


def run(command: list[str]) -> float:
    """Wall seconds of one child process; fails loudly if the command fails."""
    start = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {proc.stderr.decode()[-500:]}")
    return seconds


def timed(command: list[str], repeat: int) -> float:
    """Median wall time of ``repeat`` runs after one warm-up run."""
    run(command)
    return statistics.median(run(command) for _ in range(repeat))


def peak_rss(command: list[str]) -> float:
    """Peak RSS in MiB of one run, measured in a fresh helper process so earlier, larger
    children do not mask it."""
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-500:])
    return float(out.stdout.strip())


def big_photo(folder: Path, hole_fraction: float) -> tuple[Path, Path]:
    """A 4000x3000 photo (the example, upscaled) and a mask covering about ``hole_fraction``."""
    photo = folder / "big.jpg"
    if not photo.exists():
        Image.open(REPO / "examples" / "sunset.jpg").resize((4000, 3000), Image.BICUBIC).save(
            photo, quality=92
        )
    mask = Image.new("L", (4000, 3000), 0)
    draw = ImageDraw.Draw(mask)
    rng = np.random.default_rng(0)
    while np.asarray(mask).mean() / 255 < hole_fraction:
        x, y = int(rng.integers(0, 3800)), int(rng.integers(0, 2800))
        r = int(rng.integers(40, 200))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    path = folder / f"mask-{int(hole_fraction * 100)}.png"
    mask.save(path)
    return photo, path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--model", default="photo-inpainter")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    imgfix = [sys.executable, "-m", "imgfix"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results["python_pass_s"] = timed([sys.executable, "-c", "pass"], args.repeat)
        results["imgfix_help_s"] = timed([*imgfix, "--help"], args.repeat)
        example = [
            *imgfix, "inpaint", str(REPO / "examples" / "sunset.jpg"),
            "--mask", str(REPO / "examples" / "sunset-mask.png"), "--dilate", "4",
            "--model", args.model, "-o", str(folder / "out.jpg"), "--overwrite",
        ]  # fmt: skip
        results["cold_inpaint_example_s"] = timed(example, args.repeat)
        telea = (
            "import cv2, numpy as np; from PIL import Image; "
            f"im = np.asarray(Image.open('{REPO / 'examples' / 'sunset.jpg'}')); "
            f"m = (np.asarray(Image.open('{REPO / 'examples' / 'sunset-mask.png'}')) > 127); "
            "out = cv2.inpaint(im, m.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA); "
            f"Image.fromarray(out).save('{folder / 'telea.jpg'}', quality=95)"
        )
        results["cold_telea_example_s"] = timed([sys.executable, "-c", telea], args.repeat)
        for fraction in (0.02, 0.30):
            photo, mask = big_photo(folder, fraction)
            command = [
                *imgfix, "inpaint", str(photo), "--mask", str(mask), "--model", args.model,
                "-o", str(folder / "big-out.jpg"), "--overwrite",
            ]  # fmt: skip
            start = time.perf_counter()
            results[f"rss_4000x3000_{int(fraction * 100)}pct_mib"] = peak_rss(command)
            results[f"time_4000x3000_{int(fraction * 100)}pct_s"] = time.perf_counter() - start
    results = {k: round(v, 3) for k, v in results.items()}
    print(json.dumps(results, indent=1))
    if args.json:
        from imgfix.io import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
