"""Training: a few steps of a tiny inpainter, resume with optimizer state, clean stops."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import write_photos
from PIL import Image

from imgfix.errors import InputError
from imgfix.training.inpainter import train_inpainter


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"), 6, 96, 128, ".jpg")


@pytest.fixture(scope="module")
def _one_epoch(photos, tmp_path_factory):
    folder = tmp_path_factory.mktemp("one-epoch")
    tiny(photos, folder, epochs=1)
    return folder


@pytest.fixture
def one_epoch(_one_epoch, tmp_path):
    """``tiny(photos, tmp_path, epochs=1)`` already run: its run folder and its zoo entry "tiny"
    (the base of the texture and LaMa runs), trained once for the module."""
    for part in ("run", "zoo"):
        shutil.copytree(_one_epoch / part, tmp_path / part)
    return tmp_path


def tiny(photos, tmp_path, **kw):
    options = dict(
        image_size=32, epochs=2, steps=3, batch_size=2, filters=4, quiet=True,
        logdir=tmp_path / "run", zoo=tmp_path / "zoo", command="imgfix train inpainter ...",
    )  # fmt: skip
    return train_inpainter(photos, "tiny", **{**options, **kw})


def test_train_exports_to_zoo_and_resumes_at_the_right_step(photos, tmp_path):
    first = tiny(photos, tmp_path)
    assert first["steps"] == 6 and first["steps_this_run"] == 6
    card = json.loads((tmp_path / "zoo" / "tiny.json").read_text())
    assert card["kind"] == "inpainter" and card["steps"] == 6
    assert card["training_command"] == "imgfix train inpainter ..."
    assert (tmp_path / "run" / "samples" / "latest.png").is_file()
    grid = Image.open(tmp_path / "run" / "samples" / "latest.png")
    assert grid.size == (4 * 32, 8 * 32)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [3, 6]

    second = tiny(photos, tmp_path, epochs=3, resume=True)
    assert second["steps"] == 9 and second["steps_this_run"] == 3
    assert json.loads((tmp_path / "zoo" / "tiny.json").read_text())["steps"] == 9

    from imgfix import runtime, zoo

    model, card = zoo.load_model("tiny", tmp_path / "zoo", kind="inpainter")
    image = np.random.default_rng(1).random((1, 32, 32, 3), dtype=np.float32)
    mask = np.zeros((1, 32, 32, 1), np.float32)
    mask[:, 8:16, 8:16] = 1
    assert model([image, mask]).shape == (1, 32, 32, 3)
    # The trained model was converted at export, and LiteRT runs it like TensorFlow.
    assert card["runtime"]["weights"] == "float32"
    lite, _ = runtime.load("tiny", tmp_path / "zoo", "inpainter", runtime.Settings(device="cpu"))
    assert lite.runtime == "litert"
    np.testing.assert_allclose(
        lite(image=image * (1 - mask), mask=mask),
        runtime.KerasModel(model)(image=image * (1 - mask), mask=mask),
        atol=1e-5,
    )


def test_existing_checkpoint_is_never_overwritten_without_resume(photos, one_epoch):
    tmp_path = one_epoch
    before = (tmp_path / "run" / "checkpoint.keras").read_bytes()
    with pytest.raises(InputError, match="checkpoint exists"):
        tiny(photos, tmp_path, epochs=1)
    assert (tmp_path / "run" / "checkpoint.keras").read_bytes() == before


def test_bad_arguments_are_input_errors(photos, tmp_path):
    with pytest.raises(InputError, match="multiple of 16"):
        tiny(photos, tmp_path, image_size=30)
    with pytest.raises(InputError, match="no images"):
        tiny(tmp_path, tmp_path)


def test_sigterm_checkpoints_and_exits_cleanly(photos, tmp_path):
    logdir = tmp_path / "run"
    command = [
        sys.executable, "-m", "imgfix", "--quiet", "--zoo", str(tmp_path / "zoo"),
        "train", "inpainter", "--data", str(photos), "--name", "stopper", "--image-size", "32",
        "--steps", "100000", "--batch-size", "2", "--filters", "4", "--logdir", str(logdir),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not logdir.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    # The stop still compiles and takes a step, validates, saves and exports to LiteRT: 25 s
    # on 2 idle cores, 90 s beside the other test worker; the bound is for a hang, not speed.
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()[-2000:]  # stopped, not done
    assert (logdir / "checkpoint.keras").is_file()
    card = json.loads((tmp_path / "zoo" / "stopper.json").read_text())
    assert 1 <= card["steps"] < 100000
    assert os.path.getsize(tmp_path / "zoo" / "stopper.keras") > 0


def test_texture_model_trains_on_a_zoo_base_and_resumes_with_new_settings(photos, one_epoch):
    tmp_path = one_epoch  # the base: a context encoder named "tiny"
    texture = dict(arch="texture", base="tiny", texture_weight=3.0, logdir=tmp_path / "tex")
    first = tiny(photos, tmp_path, epochs=1, **texture)
    assert (
        first["steps"] == 3 and first["val_gradient_ratio"] >= 0 and first["val_gradient_w1"] >= 0
    )
    card = json.loads((tmp_path / "zoo" / "tiny.json").read_text())
    assert card["description"].startswith("Texture transfer")
    assert card["training"]["texture_weight"] == 3.0
    assert card["training"]["transfer"] == "blocks"
    assert "val_base_psnr" in card["metrics"]["validation"]

    texture.update(texture_weight=7.0, resume=True)
    second = tiny(photos, tmp_path, epochs=2, lr=1e-5, **texture)
    assert second["steps"] == 6
    card = json.loads((tmp_path / "zoo" / "tiny.json").read_text())
    assert card["training"]["texture_weight"] == 7.0
    assert card["training"]["lr"] == pytest.approx(1e-5)

    # A texture model as the base: its head is kept and copies by displacement from now on.
    offsets = dict(arch="texture", base="tiny", transfer="offsets", logdir=tmp_path / "offsets")
    third = tiny(photos, tmp_path, epochs=1, texture_weight=3.0, **offsets)
    assert third["steps"] == 3
    card = json.loads((tmp_path / "zoo" / "tiny.json").read_text())
    assert card["training"]["transfer"] == "offsets"


def test_lama_critic_starts_from_a_zoo_context_encoder_and_resumes(photos, one_epoch):
    tmp_path = one_epoch  # the base: a context encoder named "tiny"
    lama = dict(base="tiny", critic="lama", adv_weight=10.0, rec_loss="lowpass", fm_weight=30.0)
    first = tiny(photos, tmp_path, epochs=1, logdir=tmp_path / "lama", **lama)
    assert first["steps"] == 3
    card = json.loads((tmp_path / "zoo" / "tiny.json").read_text())
    assert card["description"].startswith("Context encoder")
    training = card["training"]
    assert (training["critic"], training["fm_weight"], training["rec_loss"]) == (
        "lama",
        30.0,
        "lowpass",
    )
    again = tiny(photos, tmp_path, epochs=2, logdir=tmp_path / "lama", resume=True)
    assert again["steps"] == 6
    assert json.loads((tmp_path / "zoo" / "tiny.json").read_text())["training"]["critic"] == "lama"


def test_a_diverged_run_stops_and_keeps_its_last_good_checkpoint(tmp_path):
    """A NaN loss (here a poisoned batch at step 8) stops the run with one error before the
    scheduled checkpoint of step 10 can overwrite the good one of step 5 with NaN weights."""
    import keras
    import tensorflow as tf

    from imgfix.errors import ImgfixError
    from imgfix.training.checkpoints import Checkpointer, load_checkpoint
    from imgfix.training.loop import StopFlag, fit_with_checkpoints

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    x = np.ones((30, 4, 3), np.float32)
    x[7, 0, 0] = np.nan  # the 8th batch
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros((30, 4, 1), np.float32)))
    exported = []
    checkpointer = Checkpointer(
        model, tmp_path, lambda: ({}, None), lambda step, figures: exported.append(step)
    )
    with StopFlag() as stop, pytest.raises(ImgfixError, match="diverged.*step 10.*step 5"):
        fit_with_checkpoints(
            model, data, 30, checkpointer, every_steps=5, minutes=600, stop=stop, quiet=True
        )
    assert exported == [5]
    kept = load_checkpoint(tmp_path / "checkpoint.keras")
    assert int(kept.optimizer.iterations) == 5
    assert all(np.isfinite(w).all() for w in kept.get_weights())
