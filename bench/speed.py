"""Speed and memory of the real command line and of the pipelines in process, each figure next
to a reference measured in the same run.

    python -m bench.speed [--repeat 5] [--model photo-inpainter] [--json PATH] [--markdown PATH]
    python -m bench.speed --quick    # one run of everything on small inputs: checks the harness

Every timing is the median over ``--repeat`` runs (at least 5) after one warm-up run, so the disk
cache is warm and TensorFlow has traced its graphs; a figure and its reference run in turn, round
after round, so both see the same machine load. Cold figures start a fresh process each run;
in-process figures load the model once and call the pipeline. Peak RSS comes from ``getrusage``
of the finished child process (one run each).

Inference runs on LiteRT by default on the CPU; every imgfix figure is also measured on the
TensorFlow path (``--runtime tensorflow``), which a GPU uses, as a row of its own:

- start-up: ``imgfix --help`` against ``python -c pass``;
- cold: ``imgfix inpaint`` on a 512x512 photo against OpenCV Telea in a cold process, against
  ``python -c "import tensorflow"``, and against the same command on TensorFlow;
- latency: ``Inpainter.fill`` per image at 256, 512 and 1024 px against ``cv2.inpaint`` (Telea)
  on the same input, and LiteRT against TensorFlow;
- batch: ``inpaint_batch`` over a folder of 50 photos against a Telea loop over the same files;
- memory: peak RSS of ``imgfix inpaint`` on a 4000x3000 photo with a 2% and a 30% hole against
  a cold Telea process on the same files, and the floors of importing each runtime;
- generation: cold ``imgfix generate --prompt cat`` against ``import tensorflow``, and the time per
  image in process at ``-n 1`` and ``-n 64`` against the generator network alone.

``TARGETS`` are the fast-runtime issue's bars; the page says which are met.

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
TEXTURE_STRENGTH = 1.5  # the latency of `imgfix inpaint --texture 1.5`, the benchmarked setting
RUNTIMES = {"litert": "LiteRT", "tensorflow": "TensorFlow"}
TF_FLAG = ["--runtime", "tensorflow"]
LITERT_IMPORT = "from ai_edge_litert.interpreter import Interpreter"
# The fast-runtime issue's bars: (label, figure, limit) read by ``targets``.
BATCH_BEFORE = 2.15  # images/s of the TensorFlow-only release, docs/benchmarks.md at 6c42556
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
    """Cold ``imgfix inpaint`` of the 512x512 photo (LiteRT, then TensorFlow), a cold Telea on
    it, a bare TensorFlow import and a cold ``imgfix generate --prompt cat`` (both runtimes),
    in turn."""
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
        "imgfix_inpaint_tf_s": [*imgfix, *TF_FLAG, *command[len(imgfix) :]],
        "telea_s": telea_command(image, mask, folder / "photo-512-telea.png"),
        "import_tensorflow_s": [sys.executable, "-c", "import tensorflow"],
        "imgfix_generate_s": generate,
        "imgfix_generate_tf_s": [*imgfix, *TF_FLAG, *generate[len(imgfix) :]],
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
            ("imgfix_tf", [*imgfix, *TF_FLAG, *command[len(imgfix) :]]),
            ("telea", telea_command(photo, mask, folder / "t.jpg")),
        ):
            start = time.perf_counter()
            row[f"{key}_rss_mib"] = peak_rss(cmd)
            row[f"{key}_s"] = time.perf_counter() - start
        rows.append(row)
    # How much of a peak is the runtime itself, whatever the photo.
    return {
        "photo": "4000x3000 JPEG (examples/sunset.jpg upscaled)",
        "runs": rows,
        "import_tensorflow_rss_mib": peak_rss([sys.executable, "-c", "import tensorflow"]),
        "import_litert_rss_mib": peak_rss([sys.executable, "-c", LITERT_IMPORT]),
    }


def latency(
    inpainters: dict[str, Any],
    sizes: tuple[int, ...],
    repeat: int,
    warmup: int = 1,
    textured: Any | None = None,
) -> list[dict]:
    """Seconds per ``Inpainter.fill`` on each runtime and per ``cv2.inpaint`` (Telea) on the
    same square crop of the evaluation photo with the same ``medium`` hole, for each size;
    ``textured``: also an inpainter with the detail stage (``imgfix inpaint --texture``)."""
    import cv2

    rows = []
    for size in sizes:
        rgb, hole = square_photo(COLD_PHOTO, size), medium_mask(size)
        hole8 = hole.astype(np.uint8) * 255
        calls = {
            **{
                _key("imgfix", rt, "s"): partial(filler.fill, rgb, hole)
                for rt, filler in inpainters.items()
            },
            "telea_s": partial(cv2.inpaint, rgb, hole8, TELEA_RADIUS, cv2.INPAINT_TELEA),
        }
        if textured is not None:
            calls["imgfix_texture_s"] = partial(textured.fill, rgb, hole)
        rows.append(
            {
                "size": size,
                "hole_fraction": float(hole.mean()),
                **interleaved(calls, repeat, warmup),
            }
        )
    return rows


def _key(what: str, runtime: str, unit: str) -> str:
    """Result keys: ``imgfix_s`` for LiteRT (the default runtime), ``imgfix_tf_s`` for
    TensorFlow."""
    return f"{what}_tf_{unit}" if runtime == "tensorflow" else f"{what}_{unit}"


def batch(
    inpainters: dict[str, Any],
    folder: Path,
    count: int,
    repeat: int,
    warmup: int = 1,
    size: int = BATCH_SIZE,
) -> dict:
    """Images per second of ``inpaint_batch`` on each runtime over ``count`` photo files with a
    mask folder, and of a loop of OpenCV Telea over the same files (reading and writing PNGs
    too)."""
    import cv2

    from imgfix.pipelines.inpaint import InpaintOptions, inpaint_batch

    photos, mask_dir = photo_folder(folder, count, size)
    out_dir, telea_dir = folder / "imgfix-out", folder / "telea-out"
    telea_dir.mkdir(parents=True, exist_ok=True)
    options = InpaintOptions(overwrite=True)

    def imgfix_run(inpainter: Any) -> None:
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

    calls = {rt: partial(imgfix_run, filler) for rt, filler in inpainters.items()}
    medians = interleaved({**calls, "telea": telea_run}, repeat, warmup)
    result: dict[str, Any] = {"photos": count, "size": size}
    for key in (*inpainters, "telea"):
        what = "telea" if key == "telea" else "imgfix"
        result[_key(what, key, "s")] = medians[key]
        result[_key(what, key, "images_per_s")] = count / medians[key]
    return result


def generation(
    generators: dict[str, Any], counts: tuple[int, ...], folder: Path, repeat: int, warmup: int = 1
) -> list[dict]:
    """Seconds per image of ``generate`` (prompt to PNG files at the default 256 px) on each
    runtime for ``-n`` in ``counts``, and of the LiteRT generator network alone on the same
    noise and prompt vector."""
    from imgfix.pipelines import generate as pipeline

    first = next(iter(generators.values()))
    temperature = float(first.card.get("sampling", {}).get("temperature", 1.0))
    rows = []
    for n in counts:
        options = pipeline.GenerateOptions(n=n, seed=0, temperature=temperature)
        calls = {
            rt: partial(pipeline.generate, gen, [PROMPT], options, out_dir=folder / f"{rt}-{n}")
            for rt, gen in generators.items()
        }
        z = np.random.default_rng(0).standard_normal((n, first.z_dim)).astype(np.float32)
        cond = np.repeat(first.conditions([PROMPT]), n, axis=0)
        calls["network"] = partial(first.network, z * temperature, cond)
        medians = interleaved(calls, repeat, warmup)
        row: dict[str, Any] = {"n": n, "network_s_per_image": medians.pop("network") / n}
        for rt, seconds in medians.items():
            row[_key("imgfix", rt, "s_per_image")] = seconds / n
        rows.append(row)
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
    """(what, imgfix figure, unit, reference, reference figure) for one results group. Each
    LiteRT figure is followed by the same figure on TensorFlow, against the LiteRT one."""
    tf_floor = '`python -c "import tensorflow"`'
    on_tf = "`--runtime tensorflow`"
    if group == "startup":
        return [("`imgfix --help`", data["imgfix_help_s"], "s", "`python -c pass`",
                 data["python_pass_s"])]  # fmt: skip
    if group == "cold":
        what = f"cold `imgfix inpaint`, {data['photo']}, {data['hole_fraction']:.0%} hole (medium)"
        rows = [
            (f"{what}, LiteRT", data["imgfix_inpaint_s"], "s",
             f"OpenCV Telea r{TELEA_RADIUS} in a cold `python -c` (read, fill, write PNG)",
             data["telea_s"]),
            (f"{what}, LiteRT", data["imgfix_inpaint_s"], "s", tf_floor,
             data["import_tensorflow_s"]),
        ]  # fmt: skip
        if "imgfix_inpaint_tf_s" in data:
            rows.append((f"{what}, TensorFlow ({on_tf})", data["imgfix_inpaint_tf_s"], "s",
                         "the same on LiteRT", data["imgfix_inpaint_s"]))  # fmt: skip
        return rows
    if group == "latency":
        rows = []
        for r in data:
            what = f"`Inpainter.fill`, {r['size']}x{r['size']} px, {r['hole_fraction']:.0%} hole"
            ref = f"`cv2.inpaint` Telea r{TELEA_RADIUS}, same input"
            rows.append((f"{what}, LiteRT", r["imgfix_s"], "s", ref, r["telea_s"]))
            if "imgfix_tf_s" in r:
                rows.append((f"{what}, TensorFlow", r["imgfix_tf_s"], "s", "the same on LiteRT",
                             r["imgfix_s"]))  # fmt: skip
            if "imgfix_texture_s" in r:
                texture = f"{what}, LiteRT, `--texture {TEXTURE_STRENGTH}`"
                rows.append((texture, r["imgfix_texture_s"], "s", "without", r["imgfix_s"]))
        return rows
    if group == "batch":
        what = f"`inpaint_batch`, {data['photos']} photos of {data['size']} px, PNG in and out"
        ref = f"loop of OpenCV Telea r{TELEA_RADIUS}, same files, PNG in and out"
        rows = [
            (f"{what}, LiteRT", data["imgfix_images_per_s"], "img/s", ref,
             data["telea_images_per_s"]),
            (f"{what}, LiteRT: wall time", data["imgfix_s"], "s", ref, data["telea_s"]),
        ]  # fmt: skip
        if "imgfix_tf_images_per_s" in data:
            rows.append((f"{what}, TensorFlow", data["imgfix_tf_images_per_s"], "img/s",
                         "the same on LiteRT", data["imgfix_images_per_s"]))  # fmt: skip
        return rows
    if group == "memory":
        rows = []
        for r in data["runs"]:
            what = f"`imgfix inpaint`, {data['photo']}, {r['hole_percent']}% hole"
            ref = f"cold OpenCV Telea r{TELEA_RADIUS} process, same files"
            rows.append((f"peak RSS, {what}, LiteRT", r["imgfix_rss_mib"], "MiB", ref,
                         r["telea_rss_mib"]))  # fmt: skip
            if "imgfix_tf_rss_mib" in r:
                rows.append((f"peak RSS, {what}, TensorFlow", r["imgfix_tf_rss_mib"], "MiB",
                             "the same on LiteRT", r["imgfix_rss_mib"]))  # fmt: skip
            rows.append((f"wall time (one run), {what}, LiteRT", r["imgfix_s"], "s", ref,
                         r["telea_s"]))  # fmt: skip
        last = data["runs"][-1]
        for key, label, imgfix_key in (
            ("import_litert_rss_mib", f'`python -c "{LITERT_IMPORT}"`', "imgfix_rss_mib"),
            ("import_tensorflow_rss_mib", tf_floor, "imgfix_tf_rss_mib"),
        ):
            if key in data and imgfix_key in last:
                runtime = "LiteRT" if imgfix_key == "imgfix_rss_mib" else "TensorFlow"
                what = f"peak RSS, `imgfix inpaint`, {last['hole_percent']}% hole, {runtime}"
                rows.append((what, last[imgfix_key], "MiB", f"{label} (the runtime alone)",
                             data[key]))  # fmt: skip
        return rows
    if group == "generation":
        what = f"cold `imgfix generate --prompt {data['prompt']}`"
        rows = [(f"{what}, LiteRT", data["cold_generate_s"], "s", tf_floor,
                 data["import_tensorflow_s"])]  # fmt: skip
        if "cold_generate_tf_s" in data:
            rows.append((f"{what}, TensorFlow ({on_tf})", data["cold_generate_tf_s"], "s",
                         "the same on LiteRT", data["cold_generate_s"]))  # fmt: skip
        for r in data.get("per_image", []):
            what = f"`generate`, -n {r['n']}, per image (PNG files at 256 px)"
            network = "the generator network alone (LiteRT)"
            rows.append((f"{what}, LiteRT", r["imgfix_s_per_image"], "s", network,
                         r["network_s_per_image"]))  # fmt: skip
            if "imgfix_tf_s_per_image" in r:
                rows.append((f"{what}, TensorFlow", r["imgfix_tf_s_per_image"], "s",
                             "the same on LiteRT", r["imgfix_s_per_image"]))  # fmt: skip
        return rows
    raise KeyError(group)


def targets(results: dict) -> list[tuple[str, float, str, float, bool]]:
    """The fast-runtime issue's bars: (what, figure, unit, limit, met) for each figure the
    results hold."""
    rows = []
    cold = results.get("cold") or {}
    if "imgfix_inpaint_s" in cold:
        seconds = cold["imgfix_inpaint_s"]
        rows.append(("cold `imgfix inpaint`, 512 px", seconds, "s", 1.0, seconds <= 1.0))
        ratio = seconds / cold["telea_s"]
        rows.append(("the same / a cold Telea process", ratio, "x", 4.0, ratio <= 4.0))
    gen = results.get("generation") or {}
    if "cold_generate_s" in gen:
        seconds = gen["cold_generate_s"]
        rows.append(("cold `imgfix generate --prompt cat`", seconds, "s", 1.0, seconds <= 1.0))
    memory = results.get("memory") or {}
    for run in memory.get("runs", []):
        if run["hole_percent"] == 2:
            mib = run["imgfix_rss_mib"]
            rows.append(("peak RSS, 4000x3000, 2% hole", mib, "MiB", 400.0, mib <= 400.0))
    for r in results.get("latency") or []:
        if r["size"] == 512 and "imgfix_tf_s" in r:
            ratio = r["imgfix_s"] / r["imgfix_tf_s"]
            rows.append(("`fill` at 512 px, LiteRT / TensorFlow", ratio, "x", 1.0, ratio <= 1.0))
    batch_figures = results.get("batch") or {}
    if "imgfix_images_per_s" in batch_figures:
        rate = batch_figures["imgfix_images_per_s"]
        limit = 2 * BATCH_BEFORE
        rows.append(("batch throughput, 50 photos", rate, "img/s", limit, rate >= limit))
    return rows


def _targets_table(results: dict) -> list[str]:
    rows = targets(results)
    if not rows:
        return []
    lines = ["", "### Targets (the fast-runtime issue)", "", "| what | measured | target | met |",
             "|---|---|---|---|"]  # fmt: skip
    for what, value, unit, limit, met in rows:
        fmt = _UNITS.get(unit, lambda v: f"{v:.2f}x")
        bound = "≥" if unit == "img/s" else "≤"
        lines.append(f"| {what} | {fmt(value)} | {bound} {fmt(limit)} | {'yes' if met else 'no'} |")
    return lines


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
    lines += _targets_table(results)
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


def _tf(value: float | None, unit: Callable[[float], str] = _seconds) -> str:
    return "" if value is None else f"; on TensorFlow {unit(value)}"


def headline(results: dict) -> list[str]:
    """The cold-start, latency and memory figures a release note quotes, with references: each
    on LiteRT (the default on a CPU), with the TensorFlow path beside it."""
    mib = _UNITS["MiB"]
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
            f"{_seconds(c['telea_s'])} for a cold OpenCV Telea process"
            f"{_tf(c.get('imgfix_inpaint_tf_s'))}; importing TensorFlow "
            f"alone takes {_seconds(c['import_tensorflow_s'])}."
        )
    if results.get("generation") and "cold_generate_s" in results["generation"]:
        g = results["generation"]
        per = {r["n"]: r["imgfix_s_per_image"] for r in g.get("per_image", [])}
        lines.append(
            f"- **Cold generate** (`imgfix generate --prompt {g['prompt']}`): "
            f"{_seconds(g['cold_generate_s'])}{_tf(g.get('cold_generate_tf_s'))} "
            f"(TensorFlow import {_seconds(g['import_tensorflow_s'])})"
            + "".join(f"; in process {_seconds(v)} per image at -n {n}" for n, v in per.items())
            + "."
        )
    if results.get("latency"):
        lines.append(
            "- **In-process latency** (`Inpainter.fill` on LiteRT vs `cv2.inpaint` Telea"
            "; TensorFlow): "
            + ", ".join(
                f"{r['size']} px {_seconds(r['imgfix_s'])} vs {_seconds(r['telea_s'])}"
                + (f" ({_seconds(r['imgfix_tf_s'])})" if "imgfix_tf_s" in r else "")
                for r in results["latency"]
            )
            + "."
        )
    if results.get("batch") and "imgfix_images_per_s" in results["batch"]:
        b = results["batch"]
        rate = b.get("imgfix_tf_images_per_s")
        lines.append(
            f"- **Batch:** {b['imgfix_images_per_s']:.3g} images/s over {b['photos']} photos of "
            f"{b['size']} px{_tf(rate, _UNITS['img/s'])} "
            f"(an OpenCV Telea loop: {b['telea_images_per_s']:.3g} images/s)."
        )
    if results.get("memory") and results["memory"].get("runs"):
        m = results["memory"]
        lines.append(
            f"- **Peak RSS** ({m['photo']}): "
            + ", ".join(
                f"{r['hole_percent']}% hole {mib(r['imgfix_rss_mib'])}"
                + (
                    f" (TensorFlow {mib(r['imgfix_tf_rss_mib'])})"
                    if "imgfix_tf_rss_mib" in r
                    else ""
                )
                + f", Telea {mib(r['telea_rss_mib'])}"
                for r in m["runs"]
            )
            + (
                f"; importing TensorFlow alone peaks at {mib(m['import_tensorflow_rss_mib'])}"
                if "import_tensorflow_rss_mib" in m
                else ""
            )
            + (
                f", LiteRT at {mib(m['import_litert_rss_mib'])}"
                if "import_litert_rss_mib" in m
                else ""
            )
            + "."
        )
    met = targets(results)
    if met:
        lines.append(
            f"- **Targets:** {sum(row[-1] for row in met)} of {len(met)} met"
            + "".join(f"; missed: {row[0]}" for row in met if not row[-1])
            + "."
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
            "cold_generate_tf_s": results["cold"].pop("imgfix_generate_tf_s"),
            "import_tensorflow_s": results["cold"]["import_tensorflow_s"],
        }
        # Then the pipelines in this process, on both runtimes, taking turns.
        from imgfix import runtime
        from imgfix.pipelines.generate import load_generator
        from imgfix.pipelines.inpaint import load_inpainter
        from imgfix.pipelines.texture import texture_options

        tf = runtime.setup("cpu", 0)
        results["settings"]["machine"] += f", TensorFlow {tf.__version__}"
        chosen = {rt: runtime.Settings(device="cpu", runtime=rt) for rt in RUNTIMES}
        inpainters = {rt: load_inpainter(args.model, args.zoo, s) for rt, s in chosen.items()}
        textured = load_inpainter(
            args.model, args.zoo, chosen["litert"], texture_options(TEXTURE_STRENGTH)
        )
        results["latency"] = latency(inpainters, sizes, repeat, warmup, textured)
        results["batch"] = batch(inpainters, folder / "batch", photos, repeat, warmup)
        generators = {rt: load_generator(args.generator, args.zoo, s) for rt, s in chosen.items()}
        results["generation"]["per_image"] = generation(
            generators, GENERATE_COUNTS, folder / "generate", repeat, warmup
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
