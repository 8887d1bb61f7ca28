"""Speed and memory of the real command line and of the pipelines in process, each figure next
to a reference measured in the same run.

    python -m bench.speed [--repeat 5] [--model photo-inpainter] [--json PATH] [--markdown PATH]
    python -m bench.speed --quick    # one run of everything on small inputs: checks the harness

Every timing is the median over ``--repeat`` runs (at least 5) after one warm-up run, so the disk
cache is warm and TensorFlow has traced its graphs; a figure and its reference run in turn, round
after round, so both see the same machine load. Cold figures start a fresh process each run;
in-process figures load the model once and call the pipeline. Peak RSS comes from ``getrusage``
of the finished child process (one run each).

- start-up: ``imgfix --help`` against ``python -c pass``;
- cold: ``imgfix inpaint`` on a 512x512 photo against OpenCV Telea in a cold process, and against
  ``python -c "import tensorflow"``, the floor any TensorFlow program pays;
- latency: ``Inpainter.fill`` per image at 256, 512 and 1024 px against ``cv2.inpaint`` (Telea)
  on the same input;
- batch: ``inpaint_batch`` over a folder of 50 photos against a Telea loop over the same files;
- memory: peak RSS of ``imgfix inpaint`` on a 4000x3000 photo with a 2% and a 30% hole against
  a cold Telea process on the same files;
- generation: cold ``imgfix generate --prompt cat`` against ``import tensorflow``, and the time per
  image in process at ``-n 1`` and ``-n 64`` against the generator network alone.

The photos are the held-out evaluation images (``bench.eval_images``) with ``medium`` random masks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from bench import eval_images
from imgfix import io, masks

REPO = Path(__file__).resolve().parent.parent
MIN_REPEAT = 5
COLD_PHOTO = "astronaut"  # the 512x512 photo of the cold and in-process runs
COLD_SIZE = 512
LATENCY_SIZES = (256, 512, 1024)
BATCH_PHOTOS = 50
BATCH_SIZE = 512
MASK_FAMILY = "medium"
PROMPT = "cat"
GENERATE_COUNTS = (1, 64)
TELEA_RADIUS = 3
# A cold OpenCV Telea process: read image and mask, fill, write. argv: image mask output.
TELEA_SCRIPT = (
    "import sys, cv2; im = cv2.imread(sys.argv[1], cv2.IMREAD_COLOR); "
    "m = cv2.imread(sys.argv[2], cv2.IMREAD_GRAYSCALE); "
    "cv2.imwrite(sys.argv[3], cv2.inpaint(im, (m > 127).astype('uint8') * 255, "
    f"{TELEA_RADIUS}, cv2.INPAINT_TELEA))"
)


# --- measuring --------------------------------------------------------------------------------


def run(command: list[str]) -> float:
    """Wall seconds of one child process; fails loudly if the command fails."""
    start = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {proc.stderr.decode()[-500:]}")
    return seconds


def interleaved(
    calls: dict[str, Callable[[], Any]], repeat: int, warmup: int = 1
) -> dict[str, float]:
    """Median wall seconds of each call over ``repeat`` rounds after ``warmup`` rounds.

    Each round runs every call once in turn, so a figure and its reference share the machine's
    load: on a shared machine, timing one after the other can flip their order.
    """
    for _ in range(warmup):
        for call in calls.values():
            call()
    seconds: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(repeat):
        for key, call in calls.items():
            start = time.perf_counter()
            call()
            seconds[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in seconds.items()}


def clocked(call: Callable[[], Any], repeat: int, warmup: int = 1) -> float:
    """Median wall seconds of ``repeat`` calls of ``call`` in this process after ``warmup``."""
    return interleaved({"call": call}, repeat, warmup)["call"]


def timed(command: list[str], repeat: int, warmup: int = 1) -> float:
    """Median wall time of ``repeat`` runs of a child process after ``warmup`` runs."""
    return clocked(partial(run, command), repeat, warmup)


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


def telea_command(image: Path, mask: Path, output: Path) -> list[str]:
    """The cold OpenCV Telea reference for one image and mask file."""
    return [sys.executable, "-c", TELEA_SCRIPT, str(image), str(mask), str(output)]


# --- inputs -----------------------------------------------------------------------------------


def square_photo(name: str, size: int, variant: int = 0) -> np.ndarray:
    """A ``size`` x ``size`` RGB crop of the evaluation image ``name``.

    Variant 0 is the centre crop at short side ``size``; variant k zooms in by k quarters, takes
    its crop from another place and mirrors odd variants, so every variant is another photo.
    """
    image = eval_images.at_size(eval_images.load(name), round(size * (1 + variant / 4)))
    h, w = image.shape[:2]
    fy, fx = ((0.5, 0.5), (0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0))[variant % 5]
    top, left = round((h - size) * fy), round((w - size) * fx)
    crop = image[top : top + size, left : left + size]
    return np.ascontiguousarray(crop[:, ::-1] if variant % 2 else crop)


def medium_mask(size: int, seed: int = 0) -> np.ndarray:
    """The fixed ``medium`` random hole of a ``size``-px square photo for ``seed``."""
    return masks.random_mask(size, size, MASK_FAMILY, np.random.default_rng(seed))


def save_pair(rgb: np.ndarray, hole: np.ndarray, image: Path, mask: Path) -> None:
    """Write a photo and its mask (white = hole) through the package's own writer."""
    io.save_image(io.Picture(rgb), image)
    io.save_image(io.Picture(hole.astype(np.uint8) * 255), mask)


def photo_folder(folder: Path, count: int, size: int = BATCH_SIZE) -> tuple[list[Path], Path]:
    """``count`` distinct ``size``-px PNG photos cut from the evaluation images, in
    ``folder/photos``, each with a ``medium`` mask of the same name in ``folder/masks``."""
    photos, mask_dir = folder / "photos", folder / "masks"
    names = eval_images.ALL_IMAGES
    paths = []
    for i in range(count):
        name = names[i % len(names)]
        path = photos / f"{i:03d}-{name}.png"
        save_pair(square_photo(name, size, i // len(names)), medium_mask(size, i), path,
                  mask_dir / path.name)  # fmt: skip
        paths.append(path)
    return paths, mask_dir


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


# --- the groups -------------------------------------------------------------------------------


def startup(repeat: int, warmup: int = 1) -> dict:
    commands = {
        "imgfix_help_s": [sys.executable, "-m", "imgfix", "--help"],
        "python_pass_s": [sys.executable, "-c", "pass"],
    }
    return interleaved({k: partial(run, c) for k, c in commands.items()}, repeat, warmup)


def cold(
    imgfix: list[str], folder: Path, model: str, generator: str, repeat: int, warmup: int = 1
) -> dict:
    """Cold ``imgfix inpaint`` of the 512x512 photo, a cold Telea on it, a bare TensorFlow
    import and a cold ``imgfix generate --prompt cat``, in turn."""
    hole = medium_mask(COLD_SIZE)
    image, mask = folder / "photo-512.png", folder / "photo-512-mask.png"
    save_pair(square_photo(COLD_PHOTO, COLD_SIZE), hole, image, mask)
    command = [
        *imgfix, "inpaint", str(image), "--mask", str(mask), "--model", model,
        "-o", str(folder / "photo-512-out.png"), "--overwrite",
    ]  # fmt: skip
    generate = [
        *imgfix, "generate", "--prompt", PROMPT, "--model", generator,
        "-o", str(folder / "cold-cat.png"), "--overwrite",
    ]  # fmt: skip
    commands = {
        "imgfix_inpaint_s": command,
        "telea_s": telea_command(image, mask, folder / "photo-512-telea.png"),
        "import_tensorflow_s": [sys.executable, "-c", "import tensorflow"],
        "imgfix_generate_s": generate,
    }
    return {
        "photo": f"{COLD_PHOTO} {COLD_SIZE}x{COLD_SIZE} PNG",
        "hole_fraction": float(hole.mean()),
        **interleaved({k: partial(run, c) for k, c in commands.items()}, repeat, warmup),
    }


def memory(imgfix: list[str], folder: Path, model: str) -> dict:
    """Peak RSS and wall time (one run each) on a 4000x3000 photo, imgfix and a cold Telea."""
    rows = []
    for fraction in (0.02, 0.30):
        photo, mask = big_photo(folder, fraction)
        command = [
            *imgfix, "inpaint", str(photo), "--mask", str(mask), "--model", model,
            "-o", str(folder / "big-out.jpg"), "--overwrite",
        ]  # fmt: skip
        row: dict[str, Any] = {
            "hole_percent": round(fraction * 100),
            "hole_fraction": float(io.load_mask(mask, (4000, 3000)).mean()),
        }
        for key, cmd in (
            ("imgfix", command),
            ("telea", telea_command(photo, mask, folder / "t.jpg")),
        ):
            start = time.perf_counter()
            row[f"{key}_rss_mib"] = peak_rss(cmd)
            row[f"{key}_s"] = time.perf_counter() - start
        rows.append(row)
    # How much of imgfix's peak is the TensorFlow runtime itself, whatever the photo.
    tensorflow_rss = peak_rss([sys.executable, "-c", "import tensorflow"])
    return {
        "photo": "4000x3000 JPEG (examples/sunset.jpg upscaled)",
        "runs": rows,
        "import_tensorflow_rss_mib": tensorflow_rss,
    }


def latency(inpainter: Any, sizes: tuple[int, ...], repeat: int, warmup: int = 1) -> list[dict]:
    """Seconds per ``Inpainter.fill`` and per ``cv2.inpaint`` (Telea) on the same square crop of
    the evaluation photo with the same ``medium`` hole, for each size."""
    import cv2

    rows = []
    for size in sizes:
        rgb, hole = square_photo(COLD_PHOTO, size), medium_mask(size)
        hole8 = hole.astype(np.uint8) * 255
        calls = {
            "imgfix_s": partial(inpainter.fill, io.Picture(rgb).rgb(), hole),
            "telea_s": partial(cv2.inpaint, rgb, hole8, TELEA_RADIUS, cv2.INPAINT_TELEA),
        }
        rows.append(
            {
                "size": size,
                "hole_fraction": float(hole.mean()),
                **interleaved(calls, repeat, warmup),
            }
        )
    return rows


def batch(
    inpainter: Any,
    folder: Path,
    count: int,
    repeat: int,
    warmup: int = 1,
    size: int = BATCH_SIZE,
) -> dict:
    """Images per second of ``inpaint_batch`` over ``count`` photo files with a mask folder,
    and of a loop of OpenCV Telea over the same files (reading and writing PNGs too)."""
    import cv2

    from imgfix.pipelines.inpaint import InpaintOptions, inpaint_batch

    photos, mask_dir = photo_folder(folder, count, size)
    out_dir, telea_dir = folder / "imgfix-out", folder / "telea-out"
    telea_dir.mkdir(parents=True, exist_ok=True)
    options = InpaintOptions(overwrite=True)

    def imgfix_run() -> None:
        results = inpaint_batch(inpainter, photos, mask_dir, out_dir, options)
        failed = [r.message for r in results if not r.ok]
        if failed:
            raise RuntimeError(f"inpaint_batch failed: {failed[0]}")

    def telea_run() -> None:
        for photo in photos:
            image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
            hole = cv2.imread(str(mask_dir / photo.name), cv2.IMREAD_GRAYSCALE) > 127
            filled = cv2.inpaint(
                image, hole.astype(np.uint8) * 255, TELEA_RADIUS, cv2.INPAINT_TELEA
            )
            cv2.imwrite(str(telea_dir / photo.name), filled)

    medians = interleaved({"imgfix": imgfix_run, "telea": telea_run}, repeat, warmup)
    imgfix_s, telea_s = medians["imgfix"], medians["telea"]
    return {
        "photos": count,
        "size": size,
        "imgfix_s": imgfix_s,
        "imgfix_images_per_s": count / imgfix_s,
        "telea_s": telea_s,
        "telea_images_per_s": count / telea_s,
    }


def generation(
    generator: Any, counts: tuple[int, ...], folder: Path, repeat: int, warmup: int = 1
) -> list[dict]:
    """Seconds per image of ``generate`` (prompt to PNG files at the default 256 px) for ``-n``
    in ``counts``, and of the generator network alone on the same noise and prompt vector."""
    from imgfix.pipelines import generate as pipeline

    temperature = float(generator.card.get("sampling", {}).get("temperature", 1.0))
    rows = []
    for n in counts:
        options = pipeline.GenerateOptions(n=n, seed=0, temperature=temperature)
        run_pipeline = partial(
            pipeline.generate, generator, [PROMPT], options, out_dir=folder / f"generated-{n}"
        )
        z = np.random.default_rng(0).standard_normal((n, generator.z_dim)).astype(np.float32)
        cond = np.repeat(generator.conditions([PROMPT]), n, axis=0)
        network = partial(generator.model.predict, [z * temperature, cond], batch_size=256,
                          verbose=0)  # fmt: skip
        medians = interleaved({"imgfix": run_pipeline, "network": network}, repeat, warmup)
        rows.append(
            {
                "n": n,
                "imgfix_s_per_image": medians["imgfix"] / n,
                "network_s_per_image": medians["network"] / n,
            }
        )
    return rows


# --- report -----------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    return f"{value * 1000:.3g} ms" if value < 1 else f"{value:.3g} s"


_UNITS: dict[str, Callable[[float], str]] = {
    "s": _seconds,
    "MiB": lambda v: f"{v:,.0f} MiB",
    "img/s": lambda v: f"{v:.3g} images/s",
}


def _rows(group: str, data: Any) -> list[tuple[str, float, str, str, float]]:
    """(what, imgfix figure, unit, reference, reference figure) for one results group."""
    tf_floor = '`python -c "import tensorflow"`'
    if group == "startup":
        return [("`imgfix --help`", data["imgfix_help_s"], "s", "`python -c pass`",
                 data["python_pass_s"])]  # fmt: skip
    if group == "cold":
        what = f"cold `imgfix inpaint`, {data['photo']}, {data['hole_fraction']:.0%} hole (medium)"
        return [
            (what, data["imgfix_inpaint_s"], "s",
             f"OpenCV Telea r{TELEA_RADIUS} in a cold `python -c` (read, fill, write PNG)",
             data["telea_s"]),
            (what, data["imgfix_inpaint_s"], "s", tf_floor, data["import_tensorflow_s"]),
        ]  # fmt: skip
    if group == "latency":
        return [
            (f"`Inpainter.fill`, {r['size']}x{r['size']} px, {r['hole_fraction']:.0%} hole",
             r["imgfix_s"], "s", f"`cv2.inpaint` Telea r{TELEA_RADIUS}, same input", r["telea_s"])
            for r in data
        ]  # fmt: skip
    if group == "batch":
        what = f"`inpaint_batch`, {data['photos']} photos of {data['size']} px, PNG in and out"
        ref = f"loop of OpenCV Telea r{TELEA_RADIUS}, same files, PNG in and out"
        return [
            (what, data["imgfix_images_per_s"], "img/s", ref, data["telea_images_per_s"]),
            (f"{what}: wall time", data["imgfix_s"], "s", ref, data["telea_s"]),
        ]
    if group == "memory":
        rows = []
        for r in data["runs"]:
            what = f"`imgfix inpaint`, {data['photo']}, {r['hole_percent']}% hole"
            ref = f"cold OpenCV Telea r{TELEA_RADIUS} process, same files"
            rows.append((f"peak RSS, {what}", r["imgfix_rss_mib"], "MiB", ref, r["telea_rss_mib"]))
            rows.append((f"wall time (one run), {what}", r["imgfix_s"], "s", ref, r["telea_s"]))
        if "import_tensorflow_rss_mib" in data:
            last = data["runs"][-1]
            what = f"peak RSS, `imgfix inpaint`, {last['hole_percent']}% hole"
            floor = '`python -c "import tensorflow"` (the runtime alone)'
            rows.append(
                (what, last["imgfix_rss_mib"], "MiB", floor, data["import_tensorflow_rss_mib"])
            )
        return rows
    if group == "generation":
        rows = [(f"cold `imgfix generate --prompt {data['prompt']}`", data["cold_generate_s"],
                 "s", tf_floor, data["import_tensorflow_s"])]  # fmt: skip
        for r in data.get("per_image", []):
            rows.append(
                (f"`generate`, -n {r['n']}, per image (PNG files at 256 px)",
                 r["imgfix_s_per_image"], "s", "the generator network alone (`model.predict`)",
                 r["network_s_per_image"])
            )  # fmt: skip
        return rows
    raise KeyError(group)


TITLES = {
    "startup": "Start-up",
    "cold": "Cold inpaint",
    "latency": "In-process inpainting latency",
    "batch": "Batch throughput",
    "memory": "Peak memory",
    "generation": "Generation",
}


def markdown(results: dict) -> str:
    """Markdown tables, one per group, for a docs page: each figure next to its reference."""
    settings = results["settings"]
    if settings["warmup"]:
        how = f"the median of {settings['repeat']} runs after a warm-up"
    else:
        how = "from one run without a warm-up (quick mode: checks the harness; do not publish)"
    lines = [
        f"Each timing is {how}; every reference was measured in the same run "
        f"({settings['machine']}). Peak RSS and the wall times next to it are one run each.",
        "",
        f"Command: `{settings['command']}`",
    ]
    for group, title in TITLES.items():
        data = results.get(group)
        lines += ["", f"### {title}", ""]
        if not data or "skipped" in data:
            reason = data.get("skipped", "not run") if isinstance(data, dict) else "not run"
            lines.append(f"Skipped ({reason}).")
            continue
        lines.append("| what | imgfix | reference | reference figure | imgfix / reference |")
        lines.append("|---|---|---|---|---|")
        for what, value, unit, reference, ref_value in _rows(group, data):
            ratio = f"{value / ref_value:.2f}x" if ref_value else "-"
            fmt = _UNITS[unit]
            lines.append(f"| {what} | {fmt(value)} | {reference} | {fmt(ref_value)} | {ratio} |")
    return "\n".join(lines) + "\n"


def headline(results: dict) -> list[str]:
    """The cold-start, latency and memory figures a release note quotes, with references."""
    lines = []
    if "startup" in results:
        st = results["startup"]
        lines.append(
            f"- **Start-up:** `imgfix --help` {_seconds(st['imgfix_help_s'])} "
            f"(`python -c pass` {_seconds(st['python_pass_s'])})."
        )
    if "cold" in results:
        c = results["cold"]
        lines.append(
            f"- **Cold inpaint** ({c['photo']}): {_seconds(c['imgfix_inpaint_s'])}, against "
            f"{_seconds(c['telea_s'])} for a cold OpenCV Telea process; importing TensorFlow "
            f"alone takes {_seconds(c['import_tensorflow_s'])}."
        )
    if results.get("generation") and "cold_generate_s" in results["generation"]:
        g = results["generation"]
        per = {r["n"]: r["imgfix_s_per_image"] for r in g.get("per_image", [])}
        lines.append(
            f"- **Cold generate** (`imgfix generate --prompt {g['prompt']}`): "
            f"{_seconds(g['cold_generate_s'])} "
            f"(TensorFlow import {_seconds(g['import_tensorflow_s'])})"
            + "".join(f"; in process {_seconds(v)} per image at -n {n}" for n, v in per.items())
            + "."
        )
    if results.get("latency"):
        lines.append(
            "- **In-process latency** (`Inpainter.fill` vs `cv2.inpaint` Telea): "
            + ", ".join(
                f"{r['size']} px {_seconds(r['imgfix_s'])} vs {_seconds(r['telea_s'])}"
                for r in results["latency"]
            )
            + "."
        )
    if results.get("batch") and "imgfix_images_per_s" in results["batch"]:
        b = results["batch"]
        lines.append(
            f"- **Batch:** {b['imgfix_images_per_s']:.3g} images/s over {b['photos']} photos of "
            f"{b['size']} px (an OpenCV Telea loop: {b['telea_images_per_s']:.3g} images/s)."
        )
    if results.get("memory") and results["memory"].get("runs"):
        m = results["memory"]
        lines.append(
            f"- **Peak RSS** ({m['photo']}): "
            + ", ".join(
                f"{r['hole_percent']}% hole {r['imgfix_rss_mib']:,.0f} MiB "
                f"(Telea {r['telea_rss_mib']:,.0f} MiB)"
                for r in m["runs"]
            )
            + (
                f"; importing TensorFlow alone peaks at {m['import_tensorflow_rss_mib']:,.0f} MiB."
                if "import_tensorflow_rss_mib" in m
                else "."
            )
        )
    return lines


def _rounded(value: Any) -> Any:
    """Floats to 4 significant digits, through dicts and lists."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    from imgfix.pipelines.generate import DEFAULT_GENERATOR
    from imgfix.zoo import DEFAULT_INPAINTER

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=MIN_REPEAT, help="runs per median (>= 5)")
    parser.add_argument("--model", default=DEFAULT_INPAINTER)
    parser.add_argument("--generator", default=DEFAULT_GENERATOR)
    parser.add_argument("--zoo", type=Path, help="model zoo folder (default: imgfix's)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--markdown", type=Path, help="write the tables here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one run each, no warm-up, 5 batch photos, 256 px only, no 4000x3000 runs: "
        "checks that the harness works; the figures mean nothing",
    )
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.quick:
        repeat, warmup, sizes, photos = 1, 0, LATENCY_SIZES[:1], 5
    elif args.repeat < MIN_REPEAT:
        parser.error(f"--repeat {args.repeat}: medians need at least {MIN_REPEAT} runs")
    else:
        repeat, warmup, sizes, photos = args.repeat, 1, LATENCY_SIZES, BATCH_PHOTOS
    imgfix = [sys.executable, "-m", "imgfix", *(["--zoo", str(args.zoo)] if args.zoo else [])]
    began = time.perf_counter()
    results: dict[str, Any] = {
        "settings": {
            "repeat": repeat,
            "warmup": bool(warmup),
            "quick": args.quick,
            "model": args.model,
            "generator": args.generator,
            "command": shlex.join(["python", "-m", "bench.speed", *argv]),
            "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, "
            f"Python {platform.python_version()}",
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Cold processes first, while this process holds no TensorFlow.
        results["startup"] = startup(repeat, warmup)
        results["cold"] = cold(imgfix, folder, args.model, args.generator, repeat, warmup)
        results["latency"] = []
        results["batch"] = {}
        if args.quick:
            results["memory"] = {"skipped": "quick mode"}
        else:
            results["memory"] = memory(imgfix, folder, args.model)
        results["generation"] = {
            "prompt": PROMPT,
            "cold_generate_s": results["cold"].pop("imgfix_generate_s"),
            "import_tensorflow_s": results["cold"]["import_tensorflow_s"],
        }
        # Then the pipelines in this process.
        from imgfix import runtime
        from imgfix.pipelines.generate import load_generator
        from imgfix.pipelines.inpaint import load_inpainter

        tf = runtime.setup("auto", 0)
        results["settings"]["machine"] += f", TensorFlow {tf.__version__}"
        inpainter = load_inpainter(args.model, args.zoo)
        results["latency"] = latency(inpainter, sizes, repeat, warmup)
        results["batch"] = batch(inpainter, folder / "batch", photos, repeat, warmup)
        gen = load_generator(args.generator, args.zoo)
        results["generation"]["per_image"] = generation(
            gen, GENERATE_COUNTS, folder / "generate", repeat, warmup
        )
    results["settings"]["total_s"] = time.perf_counter() - began
    results = _rounded(results)
    text = json.dumps(results, indent=1, ensure_ascii=False)
    print(text)
    print(markdown(results))
    if args.json:
        io.atomic_write_text(args.json, text + "\n")
    if args.markdown:
        io.atomic_write_text(args.markdown, markdown(results))
    return results


if __name__ == "__main__":
    main()
