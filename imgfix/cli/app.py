"""The ``imgfix`` command line.

Only typer, rich and the standard library are imported here: TensorFlow takes seconds to start,
so ``--help``, usage errors and missing-file errors must not wait for it. Each command imports
what it needs, checks the user's files and names first, and starts TensorFlow last.

Errors: ``ImgfixError`` exits 1, ``InputError`` (and Typer's usage errors) exit 2, each reported
as one line on stderr. Results go to stdout (``--json``: one JSON document), everything else
(progress, warnings, messages) to stderr.
"""

from __future__ import annotations

import sys
import traceback
from enum import Enum
from pathlib import Path

import typer

from imgfix.cli import data, generate, info, inpaint, train, zoo
from imgfix.cli.common import Globals, group, last_options, remember
from imgfix.errors import ImgfixError, InputError

app = group("Repair (inpaint) and generate images with deep learning.")
app.command("inpaint")(inpaint.inpaint)
app.command("generate")(generate.generate)
app.add_typer(train.app, name="train")
app.add_typer(zoo.app, name="zoo")
app.add_typer(data.app, name="data")
app.command("info")(info.info)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"


class Runtime(str, Enum):
    auto = "auto"
    litert = "litert"
    tensorflow = "tensorflow"


class Backend(str, Enum):
    tensorflow = "tensorflow"
    jax = "jax"


def _version_callback(value: bool) -> None:
    if value:
        from imgfix import __version__

        print(f"imgfix {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    device: Device = typer.Option(
        Device.auto,
        "--device",
        case_sensitive=False,
        help="Where models run: auto uses a GPU when there is one (NVIDIA), else the CPU.",
    ),
    runtime: Runtime = typer.Option(
        Runtime.auto,
        "--runtime",
        case_sensitive=False,
        help="Inference runtime: auto runs LiteRT on the CPU and TensorFlow on a GPU.",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        max=256,
        help="CPU threads for LiteRT [one per CPU].",
        show_default=False,
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed every random generator."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress bars or messages; warnings and errors only."
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print the results as JSON on stdout (no progress bars)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors."),
    zoo: Path | None = typer.Option(
        None,
        "--zoo",
        help="Model zoo folder (default: $IMGFIX_ZOO, else models_zoo in the repository).",
    ),
    backend: Backend | None = typer.Option(
        None,
        "--backend",
        case_sensitive=False,
        help="Keras backend for training [$KERAS_BACKEND, else tensorflow]. "
        "Inference runs LiteRT or TensorFlow whatever this is.",
        show_default=False,
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """Repair (inpaint) and generate images with deep learning."""
    if seed is not None and not 0 <= seed < 2**32:
        raise InputError(f"--seed {seed}: choose between 0 and {2**32 - 1}")
    if backend is not None:
        from imgfix.runtime import choose_backend

        choose_backend(backend.value)
    options = Globals(
        device=device.value,
        seed=seed,
        quiet=quiet,
        json=json_output,
        debug=debug,
        zoo=zoo,
        runtime=runtime.value,
        threads=threads,
    )
    remember(options)
    ctx.obj = options


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; errors become one line on stderr and an exit code (1 runtime, 2 usage)."""
    try:
        app(args=argv, prog_name="imgfix", standalone_mode=True)
    except ImgfixError as exc:
        if last_options().debug:
            traceback.print_exc()
        print(f"imgfix: error: {_first_line(exc)}", file=sys.stderr, flush=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("imgfix: interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    except Exception as exc:
        if last_options().debug:
            traceback.print_exc()
            hint = ""
        else:
            hint = " (run with --debug for the traceback)"
        message = _first_line(exc)
        detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        print(f"imgfix: error: {detail}{hint}", file=sys.stderr, flush=True)
        sys.exit(1)
