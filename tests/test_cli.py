"""The command line as users run it: help without TensorFlow, exit codes, one-line errors.

Every error path checked here except ``--device gpu`` fails before TensorFlow starts; the
``light`` runner asserts that, which keeps these tests (and the user's wait) short. The few runs
that load a model are started in parallel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image

from imgfix.cli import app
from imgfix.errors import InputError

TINY = "tiny"  # the model in the tiny_zoo fixture
HELP_ARGS = [
    ["--help"],
    ["inpaint", "--help"],
    ["train", "--help"],
    ["train", "inpainter", "--help"],
    *[["train", command, "--help"] for command in ("text", "vae", "cgan")],
    ["generate", "--help"],
    ["zoo", "--help"],
    *[
        ["zoo", command, "--help"]
        for command in ("list", "show", "verify", "rm", "import", "export", "export-runtime")
    ],
    ["data", "--help"],
    ["data", "photos", "--help"],
    ["data", "emoji", "--help"],
    ["info", "--help"],
    ["--version"],
]
HEAVY = ("tensorflow", "keras", "numpy", "PIL", "imgfix.zoo", "imgfix.io", "imgfix.pipelines")

# Runs main() like the console script, then records whether TensorFlow was imported.
LIGHT = textwrap.dedent(
    """
    import sys
    from imgfix.cli import main
    try:
        main(sys.argv[2:])
    finally:
        with open(sys.argv[1], "w") as handle:
            handle.write(str("tensorflow" in sys.modules))
    """
)


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "imgfix", *map(str, args)]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(*args),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def light(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the CLI and assert it finished without importing TensorFlow."""
    marker = tmp_path / "tf-imported"
    done = subprocess.run(
        [sys.executable, "-c", LIGHT, str(marker), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert marker.read_text() == "False", done.stderr
    return done


def assert_error(done: subprocess.CompletedProcess, code: int, *fragments: str) -> None:
    """Exit ``code`` and exactly one line on stderr: ``imgfix: error: ...``."""
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("imgfix: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """photo.png (96x80), mask.png (a box), empty.png (no hole), small.png, garbage.png."""
    folder = tmp_path / "files"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (80, 96, 3), np.uint8)).save(folder / "photo.png")
    mask = np.zeros((80, 96), np.uint8)
    mask[20:50, 30:70] = 255
    Image.fromarray(mask).save(folder / "mask.png")
    Image.fromarray(np.zeros((80, 96), np.uint8)).save(folder / "empty.png")
    Image.fromarray(mask[:40, :40]).save(folder / "small.png")
    (folder / "garbage.png").write_bytes(b"this is not an image\n" * 10)
    return folder


# --- no TensorFlow ----------------------------------------------------------------------------


def test_help_does_not_import_heavy_modules():
    script = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from imgfix.cli import app
        codes = []
        for args in {HELP_ARGS!r}:
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    app(args=args, prog_name="imgfix", standalone_mode=True)
                except SystemExit as exc:
                    codes.append(exc.code)
        print(codes)
        print([m for m in {HEAVY!r} if m in sys.modules])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    codes, loaded = done.stdout.strip().splitlines()
    assert codes == str([0] * len(HELP_ARGS))
    assert loaded == "[]"


def test_top_level_help_and_version():
    done = run("--help")
    assert done.returncode == 0
    for command in ("inpaint", "generate", "train", "zoo", "data", "info"):
        assert command in done.stdout
    assert sorted(typer.main.get_command(app).commands) == [
        "data",
        "generate",
        "info",
        "inpaint",
        "train",
        "zoo",
    ]
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("imgfix 0.")


def test_usage_errors_exit_2(tmp_path, files):
    for args in (
        ["inpaint", files / "photo.png", "--bogus"],
        ["--device", "tpu", "info"],
        ["inpaint", files / "photo.png"],  # --mask is required
        [
            "inpaint",
            files / "photo.png",
            files / "photo.png",
            "-m",
            files / "mask.png",
            "-o",
            "x.png",
        ],
        ["inpaint", files / "photo.png", "-m", files / "mask.png", "--quality", "0"],
        ["nosuchcommand"],
    ):
        done = light(tmp_path, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_missing_input_file(tmp_path, files, tiny_zoo):
    done = light(
        tmp_path, "--zoo", tiny_zoo, "inpaint", files / "nope.png", "-m", files / "mask.png"
    )
    assert_error(done, 2, "nope.png: no such file or directory")
    done = light(
        tmp_path, "--zoo", tiny_zoo, "inpaint", files / "photo.png", "-m", files / "no.png"
    )
    assert_error(done, 2, "no.png: no such file or directory")


def test_unreadable_image(tmp_path, files, tiny_zoo):
    done = light(
        tmp_path, "--zoo", tiny_zoo, "inpaint", files / "garbage.png", "-m", files / "mask.png"
    )
    assert_error(done, 2, "garbage.png: cannot read image")


def test_mask_size_mismatch(tmp_path, files, tiny_zoo):
    done = light(
        tmp_path, "--zoo", tiny_zoo, "inpaint", files / "photo.png", "-m", files / "small.png"
    )
    assert_error(done, 2, "small.png", "--resize-mask")


def test_unknown_model(tmp_path, files, tiny_zoo):
    args = ["inpaint", files / "photo.png", "-m", files / "mask.png", "--model", "nope"]
    done = light(tmp_path, "--zoo", tiny_zoo, *args)
    assert_error(done, 2, f"unknown model 'nope' (available: {TINY})")
    done = light(tmp_path, "--zoo", tiny_zoo, *args[:-1], "../evil")
    assert_error(done, 2, "invalid model name '../evil'")


def test_outputs_are_not_overwritten(tmp_path, files, tiny_zoo):
    photo = files / "photo.png"
    done = light(
        tmp_path, "--zoo", tiny_zoo, "inpaint", photo, "-m", files / "mask.png", "-o", photo
    )
    assert_error(done, 2, "output is the input image; use --overwrite")
    (files / "photo.inpainted.png").write_bytes(b"precious")
    done = light(tmp_path, "--zoo", tiny_zoo, "inpaint", photo, "-m", files / "mask.png")
    assert_error(done, 2, "photo.inpainted.png: output exists")
    assert (files / "photo.inpainted.png").read_bytes() == b"precious"


def test_zoo_commands(tmp_path, tiny_zoo):
    zoo_args = ("--zoo", tiny_zoo)
    listed = light(tmp_path, *zoo_args, "zoo", "list")
    assert listed.returncode == 0 and TINY in listed.stdout and "inpainter" in listed.stdout
    cards = json.loads(light(tmp_path, *zoo_args, "--json", "zoo", "list").stdout)
    assert [c["name"] for c in cards] == [TINY]
    shown = json.loads(light(tmp_path, *zoo_args, "--json", "zoo", "show", TINY).stdout)
    assert shown["kind"] == "inpainter" and shown["image_size"] == 64
    assert light(tmp_path, *zoo_args, "zoo", "verify", TINY).returncode == 0

    exported = light(tmp_path, *zoo_args, "zoo", "export", TINY, tmp_path / "out")
    assert exported.returncode == 0, exported.stderr
    keras_file = tmp_path / "out" / f"{TINY}.keras"
    imported = light(tmp_path, *zoo_args, "--json", "zoo", "import", keras_file, "--name", "copy")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["sha256"] == shown["sha256"]

    refused = light(tmp_path, *zoo_args, "zoo", "rm", "copy")  # stdin is not a terminal
    assert_error(refused, 2, "--yes")
    assert light(tmp_path, *zoo_args, "zoo", "rm", "copy", "--yes").returncode == 0
    assert_error(light(tmp_path, *zoo_args, "zoo", "rm", "copy", "--yes"), 2, "unknown model")

    data = bytearray(keras_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tiny_zoo / f"{TINY}.keras").write_bytes(bytes(data))
    assert_error(light(tmp_path, *zoo_args, "zoo", "verify", TINY), 1, "sha256 mismatch")
    every = light(tmp_path, *zoo_args, "--json", "zoo", "verify")
    assert every.returncode == 1
    assert json.loads(every.stdout)["failed"] == 1
    assert "imgfix: failed: model 'tiny': tiny.keras sha256 mismatch" in every.stderr


# --- with TensorFlow (started in parallel) ----------------------------------------------------


def test_runs_that_load_tensorflow(tmp_path, files, tiny_zoo):
    masks = tmp_path / "masks"
    masks.mkdir()
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("a", "b"):
        (batch / f"{name}.png").write_bytes((files / "photo.png").read_bytes())
    (batch / "c.png").write_bytes((files / "garbage.png").read_bytes())
    (masks / "a.png").write_bytes((files / "mask.png").read_bytes())
    (masks / "b.png").write_bytes((files / "empty.png").read_bytes())
    (masks / "c.png").write_bytes((files / "mask.png").read_bytes())
    out = tmp_path / "out"
    commands = {
        "single": ["--zoo", tiny_zoo, "--device", "cpu", "--runtime", "tensorflow", "--seed",
                   "1", "inpaint", files / "photo.png", "-m", files / "mask.png", "--model",
                   TINY],
        "batch": ["--zoo", tiny_zoo, "--json", "inpaint", batch, "-m", masks,
                  "--out-dir", out, "--model", TINY],
    }  # fmt: skip
    gpu = os.path.exists("/dev/nvidia0") or os.path.exists("/dev/dxg")
    if not gpu:
        commands["gpu"] = ["--device", "gpu", "info"]
    running = {
        key: subprocess.Popen(
            _command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for key, args in commands.items()
    }
    done = {}
    for key, process in running.items():
        stdout, stderr = process.communicate(timeout=180)
        done[key] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    single = done["single"]
    assert single.returncode == 0, single.stderr
    assert single.stdout == "" and "Traceback" not in single.stderr
    with Image.open(files / "photo.inpainted.png") as result:
        assert result.size == (96, 80)

    result = done["batch"]
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == 1
    by_name = {Path(r["input"]).name: r for r in report["results"]}
    assert by_name["a.png"]["ok"] and (out / "a.inpainted.png").is_file()
    assert by_name["b.png"]["ok"] and "mask is empty" in by_name["b.png"]["warning"]
    assert not by_name["c.png"]["ok"] and "cannot read image" in by_name["c.png"]["message"]
    assert "imgfix: failed: " in result.stderr and "Traceback" not in result.stderr
    assert "absl::InitializeLog" not in result.stderr and "oneDNN" not in result.stderr

    if not gpu:
        assert_error(done["gpu"], 1, "--device gpu: TensorFlow sees no GPU")


# Runs main() like the console script, then lists the heavy modules it imported.
IMPORTED = textwrap.dedent(
    """
    import json, sys
    from imgfix.cli import main
    try:
        main(sys.argv[2:])
    finally:
        # pydantic: typer 0.29 imports it to parse arguments, 100-150 ms of a cold command.
        heavy = ("tensorflow", "keras", "jax", "torch", "pydantic")
        with open(sys.argv[1], "w") as handle:
            json.dump(sorted(m for m in sys.modules if m.split(".")[0] in heavy), handle)
    """
)


def test_inpaint_and_generate_on_litert_never_import_tensorflow(tmp_path, files):
    """The shipped models, as a user runs them on a CPU: LiteRT only."""
    runs = {
        "inpaint": ["inpaint", files / "photo.png", "-m", files / "mask.png",
                    "-o", tmp_path / "filled.png", "--texture", "1.5"],
        "batch": ["inpaint", files / "photo.png", files / "small.png", "-m", files / "mask.png",
                  "--out-dir", tmp_path / "batch"],
        "generate": ["--device", "cpu", "generate", "-p", "cat", "-p", "Katze", "-n", "2",
                     "--out-dir", tmp_path / "cats"],
    }  # fmt: skip
    for key, args in runs.items():
        marker = tmp_path / f"{key}.json"
        done = subprocess.run(
            [sys.executable, "-c", IMPORTED, str(marker), *map(str, args)],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert json.loads(marker.read_text()) == [], key
        assert "XNNPACK" not in done.stderr and "Traceback" not in done.stderr
        if key != "batch":  # small.png has another size than the mask: one failure
            assert done.returncode == 0, done.stderr
    assert (tmp_path / "filled.png").is_file() and len(list((tmp_path / "cats").iterdir())) == 4


def test_device_info(tiny_zoo, tiny_model):
    """In-process (TensorFlow is already loaded for the tiny model), so it costs nothing."""
    import keras

    from imgfix import runtime

    details = runtime.device_info(tiny_zoo, runtime.Settings(device="cpu"))
    assert details["zoo"] == str(tiny_zoo) and details["device"]
    assert details["inference_runtime"] == "litert" and details["litert"]
    assert details["threads"] == runtime.cpu_count()
    assert details["tensorflow"] and details["keras"] and details["imgfix"]
    assert any("CPU" in device for device in details["devices"])
    training = details["training"]  # what `imgfix train` runs on: this process's Keras
    assert training["backend"] == "tensorflow" and training["precision"] == "float32"
    assert any("CPU" in device for device in training["devices"])
    keras.config.set_dtype_policy("mixed_bfloat16")  # as --precision mixed sets it
    try:
        assert runtime.training_info()["precision"] == "mixed_bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")
    with pytest.raises(InputError, match="--device tpu"):
        runtime.setup("tpu")
