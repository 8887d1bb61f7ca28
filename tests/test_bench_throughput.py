"""The training-throughput benchmark: the keras.io reference models as published (parameter
counts from the examples' summaries) and scaled to 48 px, one real training step of each, the
default configurations the harness times, and one quick end-to-end run of the harness."""

from __future__ import annotations

import inspect
import json
import math

import keras
import numpy as np
import pytest

from bench import keras_io
from bench import throughput as tp


def _fit_once(model, batch):
    """One training step by ``fit``, the way the harness runs the models; returns its logs."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensors(batch)
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    return {k: v[-1] for k, v in history.history.items()}


def _weights(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


# ------------------------------------------------------------------------- keras.io references


def test_dcgan_at_64_px_has_the_examples_parameter_counts():
    # "DCGAN to generate face images": the summaries print 404,801 and 3,979,651 params.
    assert keras_io.dcgan_discriminator(64).count_params() == 404_801
    generator = keras_io.dcgan_generator(64)
    assert generator.count_params() == 3_979_651
    assert generator.output_shape == (None, 64, 64, 3)


def test_vae_at_28_px_has_the_examples_parameter_counts():
    # "Variational AutoEncoder": the summaries print 69,076 and 65,089 params.
    assert keras_io.vae_encoder().count_params() == 69_076
    decoder = keras_io.vae_decoder()
    assert decoder.count_params() == 65_089
    assert decoder.output_shape == (None, 28, 28, 1)


def test_references_scaled_to_48_px_change_only_the_size():
    generator = keras_io.dcgan_generator(48)
    assert generator.input_shape == (None, 128)
    assert generator.layers[1].output.shape == (None, 6, 6, 128)  # 6 x 6 instead of 8 x 8
    assert generator.output_shape == (None, 48, 48, 3)
    # Same layers as at 64 px: only the dense seed shrinks with the starting grid.
    at_64 = keras_io.dcgan_generator(64)
    assert [type(a) for a in generator.layers] == [type(b) for b in at_64.layers]
    assert at_64.count_params() - generator.count_params() == 128 * (64 - 36) * (128 + 1)
    discriminator = keras_io.dcgan_discriminator(48)
    assert discriminator.input_shape == (None, 48, 48, 3)
    assert discriminator.output_shape == (None, 1)

    encoder = keras_io.vae_encoder(48, 3)
    assert encoder.input_shape == (None, 48, 48, 3)
    assert [tuple(o.shape) for o in encoder.outputs] == [(None, 2)] * 3
    decoder = keras_io.vae_decoder(48, 3)
    assert decoder.layers[2].output.shape == (None, 12, 12, 64)
    assert decoder.output_shape == (None, 48, 48, 3)
    with pytest.raises(ValueError):
        keras_io.dcgan_generator(50)


def test_one_dcgan_step_trains_both_networks_with_finite_losses():
    gan = keras_io.build_dcgan(48)
    images = np.random.default_rng(0).random((4, 48, 48, 3), dtype=np.float32)
    before_g, before_d = _weights(gan.generator), _weights(gan.discriminator)
    logs = _fit_once(gan, images)
    assert set(logs) == {"d_loss", "g_loss"}
    assert all(math.isfinite(v) and v > 0 for v in logs.values())
    for net, before in ((gan.generator, before_g), (gan.discriminator, before_d)):
        assert any(not np.array_equal(a, b) for a, b in zip(before, _weights(net), strict=True))


def test_one_vae_step_gives_a_summed_pixel_loss_and_updates_the_weights():
    vae = keras_io.build_vae(48, 3)
    images = np.random.default_rng(0).random((8, 48, 48, 3), dtype=np.float32)
    before = _weights(vae)
    logs = _fit_once(vae, images)
    assert all(math.isfinite(v) for v in logs.values())
    # Summed over 48 x 48 pixels: an untrained decoder near 0.5 costs about ln 2 per pixel.
    assert 0.5 * 48 * 48 * math.log(2) < logs["reconstruction_loss"] < 2 * 48 * 48 * math.log(2)
    assert logs["loss"] == pytest.approx(logs["reconstruction_loss"] + logs["kl_loss"], rel=1e-5)
    assert any(not np.array_equal(a, b) for a, b in zip(before, _weights(vae), strict=True))


# ----------------------------------------------------------------------------------- harness


def _cli_default(command, option: str):
    return inspect.signature(command).parameters[option].default.default


def test_cases_use_the_training_commands_defaults():
    from imgfix.cli import train as cli

    by_name = {c.name: c for c in tp.cases()}
    commands = {
        "photo-inpainter": cli.train_inpainter,
        "emoji-vae": cli.train_vae,
        "cgan-default": cli.train_cgan,
        "emoji-cgan": cli.train_cgan,
        "prompt-encoder": cli.train_text,
    }
    assert set(by_name) == set(commands)
    for name, command in commands.items():
        assert by_name[name].batch_size == _cli_default(command, "batch_size"), name
        assert by_name[name].image_size == _cli_default(command, "image_size"), name
    assert by_name["cgan-default"].reference == by_name["emoji-cgan"].reference
    assert "DCGAN" in by_name["cgan-default"].reference
    assert "VAE" in by_name["emoji-vae"].reference


def _trainable(*models) -> int:
    return sum(int(np.prod(w.shape)) for m in models for w in m.trainable_weights)


def test_the_default_cgan_has_no_encoder_and_the_shipped_one_keeps_the_vaes():
    from imgfix.cli import train as cli

    plain = tp.build_cgan()
    assert plain.encoder is None
    assert plain.z_dim == _cli_default(cli.train_cgan, "z_dim")
    # The EMA copy of the generator is not trained, so it is not counted.
    assert tp.trained_params(plain) == _trainable(plain.generator, plain.discriminator)
    shipped = tp.build_cgan(init_from_vae=True)
    assert shipped.encoder is not None and shipped.z_dim == 16  # make train-vae --z-dim 16
    assert tp.trained_params(shipped) == _trainable(
        shipped.generator, shipped.discriminator, shipped.encoder
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "throughput.json"
    # one backend, in this process; without --backend, each backend runs this same command
    # with --backend in a child (the table: test_backend_table_puts_the_backends_side_by_side)
    return tp.main(["--quick", "--backend", "tensorflow", "--json", str(path)]), path


def test_quick_run_measures_ours_and_the_reference(quick):
    results, path = quick
    assert json.loads(path.read_text()) == results
    settings = results["settings"]
    assert settings["steps"] == 2 and settings["backend"] == "tensorflow"
    assert settings["command"].startswith("python -m bench.throughput --quick")
    assert "by_backend" not in results  # one backend asked for: no children
    (row,) = results["models"]
    assert row["name"] == tp.QUICK and row["batch_size"] == 64 and row["image_size"] == 48
    assert row["images_per_s"] > 0 and row["reference_images_per_s"] > 0
    # Both rounded to 2 decimals and the ratio to 3, from the same unrounded timings.
    assert row["images_per_s"] == pytest.approx(row["batch_size"] / row["step_s"], rel=1e-3)
    assert row["ratio"] == pytest.approx(
        row["images_per_s"] / row["reference_images_per_s"], rel=1e-3, abs=5e-4
    )
    assert row["params"] == tp.trained_params(tp.build_vae())
    reference = (
        keras_io.vae_encoder(48, 3).count_params() + keras_io.vae_decoder(48, 3).count_params()
    )
    assert row["reference_params"] == reference


def test_backend_table_puts_the_backends_side_by_side(quick):
    results, _ = quick
    row = results["models"][0]
    jax = {"settings": {**results["settings"], "backend": "jax"}}
    jax["models"] = [{**row, "images_per_s": 2 * row["images_per_s"]}]
    merged = {**results, "by_backend": {"tensorflow": results, "jax": jax}}
    table = tp.backend_markdown(merged["by_backend"])
    ours = row["images_per_s"]
    assert f"| {tp.QUICK} | {ours:.1f} | {2 * ours:.1f} | 2.00 |" in table.splitlines()
    assert table.splitlines()[0].startswith("| model | tensorflow images/s | jax images/s")
    assert table in tp.markdown(merged)  # the page shows it under the main table


def test_markdown_has_a_row_per_model_and_the_method(quick):
    results, _ = quick
    second = {**results["models"][0], "name": "other", "reference": None, "ratio": None}
    second["reference_images_per_s"] = None
    text = tp.markdown({**results, "models": [*results["models"], second]})
    lines = text.splitlines()
    assert lines[0].startswith("| model | image size | batch | params | images/s | reference")
    row = next(line for line in lines if line.startswith(f"| **{tp.QUICK}**"))
    assert f"{results['models'][0]['ratio']:.2f}" in row
    assert "keras.io VAE" in row
    other = next(line for line in lines if line.startswith("| **other**"))
    assert other.endswith("| - | - | - |")
    assert "2 timed steps" in text


def test_headline_quotes_only_models_with_a_reference(quick):
    results, _ = quick
    row = results["models"][0]
    other = {**row, "name": "other", "reference": None, "ratio": None}
    (line,) = tp.headline({**results, "models": [row, other]})
    assert f"{tp.QUICK} {row['images_per_s']:.1f} images/s against " in line
    assert f"{row['reference_images_per_s']:.1f} for the keras.io VAE" in line
    assert f"ratio {row['ratio']:.2f}" in line and "other" not in line
    assert tp.headline({**results, "models": [other]}) == []


def test_the_page_section_plots_ours_beside_the_reference(quick, tmp_path):
    from bench import report

    results, _ = quick
    text = report.section("throughput", results, tmp_path, "")
    assert text.startswith(tp.markdown(results))
    assert "![training throughput against keras.io](training-throughput.png)" in text
    assert (tmp_path / "training-throughput.png").read_bytes()[:4] == b"\x89PNG"


def test_the_page_says_when_no_gpu_was_used(quick):
    results, _ = quick
    gpu = {**results, "settings": {**results["settings"], "device": "cuda:0"}}
    cpu = {**results, "settings": {**results["settings"], "device": "CPU"}}
    assert "No GPU was available" in tp.markdown(cpu)
    assert "No GPU was available" not in tp.markdown(gpu)
    # One backend on a GPU is enough for the page not to claim there was none.
    mixed = {**cpu, "by_backend": {"tensorflow": cpu, "jax": gpu}}
    assert "No GPU was available" not in tp.markdown(mixed)
