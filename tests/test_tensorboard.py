"""TensorBoard: every checkpoint's log line and sample grid also land in event files."""

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from conftest import write_photos
from PIL import Image

from imgfix.training.inpainter import train_inpainter


def read_events(folder: Path) -> tuple[dict, dict]:
    """``{tag: {step: value}}`` for the scalars and ``{step: (width, height, png)}`` for the
    "samples" images of every event file in ``folder``."""
    import tensorflow as tf

    scalars, images, plugins = {}, {}, {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                plugins[value.tag] = plugin or plugins.get(value.tag)
                data = tf.make_ndarray(value.tensor)
                if plugins[value.tag] == "scalars":
                    scalars.setdefault(value.tag, {})[event.step] = float(data)
                elif plugins[value.tag] == "images":
                    assert value.tag == "samples"
                    images[event.step] = (int(data[0]), int(data[1]), data[2])
    return scalars, images


def test_training_writes_losses_validation_figures_and_grids_at_each_checkpoint(
    tmp_path, monkeypatch
):
    # The zoo export (tested in test_train.py) is most of a tiny run's time: the LiteRT convert.
    exported = []
    monkeypatch.setattr("imgfix.zoo.save_model", lambda model, name, card, zoo: exported.append(1))
    photos = write_photos(tmp_path / "photos", 4, 48, 64, ".jpg")
    run = tmp_path / "run"
    train_inpainter(
        photos, "tiny", image_size=32, epochs=2, steps=1, batch_size=2, filters=4, quiet=True,
        logdir=run, zoo=tmp_path / "zoo", command="imgfix train inpainter ...",
    )  # fmt: skip

    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2] and len(exported) == 2  # scheduled, then final
    scalars, images = read_events(run / "tensorboard")
    for name in ("d_loss", "psnr", "rec", "val_hole_psnr", "val_gradient_ratio", "val_gradient_w1"):
        assert scalars[name] == {e["step"]: np.float32(e[name]) for e in log}, name
    assert set(scalars) == set(log[0]) - {"step", "time"}
    assert sorted(images) == [1, 2]
    width, height, png = images[2]
    grid = np.asarray(Image.open(io.BytesIO(png)))
    assert grid.shape == (height, width, 3) == (8 * 32, 4 * 32, 3)
    np.testing.assert_array_equal(grid, np.asarray(Image.open(run / "samples" / "latest.png")))


def test_checkpointer_writes_events_on_the_jax_backend_and_after_a_resume(tmp_path):
    """tf.summary needs TensorFlow installed, not TensorFlow as the Keras backend. A resumed run
    (a new Checkpointer on the same folder) adds its own event file beside the first."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path

        import keras
        import numpy as np

        from imgfix.training.checkpoints import Checkpointer

        assert keras.backend.backend() == "jax"
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        grid = np.zeros((8, 4, 3), np.uint8)
        for run in range(2):
            model.fit(np.ones((4, 3)), np.zeros((4, 1)), batch_size=2, verbose=0)
            validate = lambda: ({"val_x": 0.5 + run}, grid)
            saver = Checkpointer(model, Path(sys.argv[1]), validate, lambda step, figures: None)
            saver.save({"loss": 0.25})
            saver.close()
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    scalars, images = read_events(tmp_path / "tensorboard")
    assert scalars == {"loss": {2: 0.25, 4: 0.25}, "val_x": {2: 0.5, 4: 1.5}}
    assert sorted(images) == [2, 4] and images[4][:2] == (4, 8)
