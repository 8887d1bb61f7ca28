"""``docs/benchmarks.md`` from the JSON files one benchmark run leaves in a folder.

    python -m bench.report --results outputs/bench --out docs/benchmarks.md

Each part of the page is rendered by the module that measured it; this one adds the machine,
the headline figures and the commands that reproduce them. A missing part is named, not hidden.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MACHINE = "machine.json"  # written by bench.run when a run starts

# stage name -> (JSON file, section title)
PARTS = {
    "quality": ("inpaint_quality.json", "Inpainting quality"),
    "speed": ("speed.json", "Speed and memory"),
    "parity": ("runtime_parity.json", "LiteRT against TensorFlow"),
    "throughput": ("throughput.json", "Training throughput"),
    "generation": ("generation_quality.json", "Generation quality"),
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


# What the figures depend on; the cards and docs a run itself rewrites are left out.
CODE = (
    "imgfix",
    "bench",
    "pyproject.toml",
    "models_zoo/*.keras",
    "models_zoo/*.tflite",
    "examples",
)


def _commit() -> str:
    """The commit measured, marked when the code differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
        changed = subprocess.run(["git", "status", "--porcelain", "--", *CODE], cwd=REPO,
                                 capture_output=True, text=True).stdout.strip()  # fmt: skip
    except OSError:
        return "unknown"
    if not head:
        return "unknown"
    return f"{head} with uncommitted code changes" if changed else head


OPENCV = "opencv-contrib-python-headless"  # the bench extra: cv2 with xphoto


def machine() -> dict:
    """What the figures were measured on; versions come from package metadata, so this does
    not import TensorFlow."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": cores,
        "memory_gib": _memory_gib(),
        "gpu": "none used: inference on LiteRT (and TensorFlow rows), training on TensorFlow, CPU",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **{p: _version(p) for p in ("ai-edge-litert", "tensorflow", "keras", "numpy", OPENCV)},
        "scikit-image": _version("scikit-image"),
        "commit": _commit(),
    }


def load(results: Path) -> dict[str, dict]:
    """The parts present in ``results``: stage name -> parsed JSON."""
    found = {}
    for stage, (filename, _) in PARTS.items():
        path = results / filename
        if path.is_file():
            found[stage] = json.loads(path.read_text())
    return found


def _machine_table(info: dict) -> str:
    rows = ["| | |", "|---|---|"]
    for key, value in info.items():
        shown = "; ".join(value) if isinstance(value, list) else value
        rows.append(f"| {key} | {shown} |")
    return "\n".join(rows)


TEXTURE_KEYS = {"model_grad_ratio", "model_grad_w1", "best_grad_ratio", "best_grad_w1"}


def headline(parts: dict[str, dict]) -> list[str]:
    """The figures an issue or a release note quotes, each beside its reference."""
    from bench import runtime_parity, speed, throughput

    lines = []
    if "quality" in parts:
        for model, entries in parts["quality"]["headline"].items():
            gains = ", ".join(
                f"{e['family']} @{e['size']} {e['psnr_gain']:+.2f} dB vs {e['best_classical']}"
                for e in sorted(entries, key=lambda e: e["size"], reverse=True)
            )
            lines.append(f"- **{model} vs the best classical method, PSNR:** {gains}.")
            texture = ", ".join(
                f"{e['family']} @{e['size']} {e['model_grad_ratio']:.2f} / "
                f"{e['model_grad_w1']:.2f} ({e['best_classical']} {e['best_grad_ratio']:.2f} / "
                f"{e['best_grad_w1']:.2f})"
                for e in sorted(entries, key=lambda e: e["size"], reverse=True)
                if set(e) >= TEXTURE_KEYS
            )
            if texture:
                lines.append(
                    f"- **{model} texture, gradient ratio / gradient-W1** (1 / 0 is the truth's "
                    f"texture): {texture}."
                )
    if "speed" in parts:
        lines += speed.headline(parts["speed"])
    if "parity" in parts:
        lines += runtime_parity.headline(parts["parity"])
    if "throughput" in parts:
        lines += throughput.headline(parts["throughput"])
    if "generation" in parts:
        g = parts["generation"]
        for name, r in g["models"].items():
            fonts = g["ceiling"].get("fd_fonts")
            lines.append(
                f"- **{name}:** prompt top-1 {100 * r['top1']:.1f}% (chance "
                f"{100 / g['settings']['concepts']:.2f}%, real-image ceiling "
                + " / ".join(f"{100 * c['top1']:.1f}%" for c in g["ceiling"]["fonts"].values())
                + f"), FD {r['fd']:.2f}"
                + (f" (real font against real font {fonts['fd']:.2f})." if fonts else ".")
            )
    return lines


def paired_bars(pairs: list[tuple[str, float, str, float]], path: Path, xlabel: str) -> None:
    """Horizontal bars on a log axis: each of our figures right above its reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imgfix.io import atomic_path

    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.7 * len(pairs)))
    for i, (label, ours, ref_label, ref) in enumerate(reversed(pairs)):
        y = 2 * i
        ax.barh(y + 0.4, ours, 0.8, color="tab:blue", label="imgfix" if i == 0 else None)
        ax.barh(y - 0.4, ref, 0.8, color="tab:gray", label="reference" if i == 0 else None)
        ax.text(ours, y + 0.4, f" {label}: {ours:.3g}", va="center", fontsize=7)
        ax.text(ref, y - 0.4, f" {ref_label}: {ref:.3g}", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_yticks([])
    ax.set_xlabel(xlabel)
    lo = min(min(p[1], p[3]) for p in pairs)
    hi = max(max(p[1], p[3]) for p in pairs)
    ax.set_xlim(lo / 2, hi * 60)  # room for the labels
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _cold_pairs(part: dict) -> list[tuple[str, float, str, float]]:
    pairs = []
    if "startup" in part:
        st = part["startup"]
        pairs.append(("imgfix --help", st["imgfix_help_s"], "python -c pass", st["python_pass_s"]))
    if "cold" in part:
        c = part["cold"]
        pairs.append(("cold imgfix inpaint", c["imgfix_inpaint_s"], "cold Telea", c["telea_s"]))
        if "imgfix_inpaint_tf_s" in c:
            pairs.append(("cold inpaint, TensorFlow", c["imgfix_inpaint_tf_s"],
                          "import tensorflow", c["import_tensorflow_s"]))  # fmt: skip
    gen = part.get("generation") or {}
    if "cold_generate_s" in gen:
        pairs.append(("cold imgfix generate", gen["cold_generate_s"], "import tensorflow",
                      gen["import_tensorflow_s"]))  # fmt: skip
    return pairs


def section(stage: str, part: dict, assets: Path, prefix: str) -> str:
    from bench import generation_quality, inpaint_quality, runtime_parity, speed, throughput

    if stage == "parity":
        return runtime_parity.markdown(part)
    if stage == "quality":
        return inpaint_quality.section(part, assets, prefix)
    if stage == "speed":
        pairs = _cold_pairs(part)
        if not pairs:
            return speed.markdown(part)
        paired_bars(pairs, assets / "cold-start.png", "wall seconds, log scale")
        return speed.markdown(part) + f"\n![cold start against references]({prefix}cold-start.png)"
    if stage == "throughput":
        pairs = [(r["name"], r["images_per_s"], r["reference"].split(",")[0],
                  r["reference_images_per_s"]) for r in part["models"] if r["ratio"]]  # fmt: skip
        if not pairs:
            return throughput.markdown(part)
        paired_bars(pairs, assets / "training-throughput.png", "training images/s, log scale")
        return (
            throughput.markdown(part)
            + f"\n\n![training throughput against keras.io]({prefix}training-throughput.png)"
        )
    s = part["settings"]
    text = generation_quality.markdown(
        part["models"], part["ceiling"], s["concepts"], s["fd_samples"]
    )
    grids = [
        f"![{name}: the first {s['images_per_concept']} samples of 12 concepts]"
        f"({prefix}generation/{name}.png)"
        for name in part["models"]
        if (assets / "generation" / f"{name}.png").is_file()
    ]
    return "\n\n".join([text, *grids])


def render(results: Path, out: Path, info: dict | None = None) -> str:
    """Write the page ``out`` (and its plots next to it, under ``bench/``) from ``results``.

    The machine is the one ``bench.run`` recorded when the run started (``machine.json``), so
    the commit shown is the code that was measured; failing that, this machine now."""
    from imgfix.io import atomic_write_text

    parts = load(results)
    assets = out.parent / "bench"
    assets.mkdir(parents=True, exist_ok=True)
    recorded = results / MACHINE
    if info is None:
        info = json.loads(recorded.read_text()) if recorded.is_file() else machine()
    quick = str(info.get("run", "")).startswith("quick")
    page = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m bench.run`); do not edit by hand. Every figure "
        "sits beside a reference measured in the same run on the same machine, and every "
        "timing is a median after a warm-up. Commands to rerun one part are at the end.",
        "",
        *(
            [
                "**A quick run** (`make bench-quick`): tiny inputs, one run per timing and no "
                "warm-up. It shows that the harness works; do not quote these figures.",
                "",
            ]
            if quick
            else []
        ),  # fmt: skip
        "## Machine",
        "",
        _machine_table(info),
        "",
        "## Headline",
        "",
        *headline(parts),
    ]
    for stage, (_, title) in PARTS.items():
        page += ["", f"## {title}", ""]
        if stage in parts:
            text = section(stage, parts[stage], assets, "bench/")
            page.append(text)
            command = parts[stage].get("settings", {}).get("command")
            if command and command not in text:
                page += ["", f"Measured with `{command}`."]
        else:
            page.append(f"Not measured in this run (no `{PARTS[stage][0]}`).")
    page += [
        "",
        "## Reproduce",
        "",
        "- Everything: `make bench` (about 14 minutes on 2 cores; it renders the emoji corpus "
        "first if `data/emoji` is missing).",
        "- The harness alone, in under 2 minutes: `make bench-quick` (writes "
        "`outputs/bench-quick/benchmarks.md`, checks no thresholds).",
        "- One part: `python -m bench.run --only quality` (or `speed`, `parity`, `throughput`, "
        "`generation`) reruns it and re-renders this page from every part's latest JSON in "
        "`outputs/bench`; the Machine table lists such later reruns. `python -m bench.report` "
        "only re-renders.",
    ]
    text = "\n".join(page) + "\n"
    atomic_write_text(out, text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("outputs/bench"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    render(args.results, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
