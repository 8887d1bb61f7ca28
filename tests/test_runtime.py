"""The inference runtime: which runtime runs when, the LiteRT wrapper, and the .tflite export.

The tiny zoo model (conftest) is converted by ``zoo.save_model`` like every other model, so
these tests exercise the same export and runtime that ship, on a model that builds in seconds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY

from imgfix import export, runtime, zoo
from imgfix.errors import ImgfixError, InputError
from imgfix.runtime import Choice, KerasModel, LiteRTModel, Settings


def _batch(height: int, width: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = (rng.random((1, height, width, 1)) < 0.3).astype(np.float32)
    image = rng.random((1, height, width, 3)).astype(np.float32) * (1.0 - mask)
    return {"image": image, "mask": mask}


# --- choosing -----------------------------------------------------------------------------------


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(runtime, "gpu_device", lambda: None)


def test_cpu_runs_litert_and_a_gpu_runs_tensorflow(monkeypatch, no_gpu):
    assert runtime.choose(Settings()) == Choice(
        "litert", "no GPU found: LiteRT runs the .tflite files on the CPU"
    )
    assert runtime.choose(Settings(device="cpu")).runtime == "litert"
    assert runtime.choose(Settings(device="gpu")).runtime == "tensorflow"
    assert runtime.choose(Settings(runtime="tensorflow")).reason == "--runtime tensorflow"
    monkeypatch.setattr(runtime, "gpu_device", lambda: "/dev/nvidia0")
    found = runtime.choose(Settings())
    assert found.runtime == "tensorflow" and "/dev/nvidia0" in found.reason
    # A GPU in the machine does not override an explicit CPU choice.
    assert runtime.choose(Settings(device="cpu")).runtime == "litert"
    assert runtime.choose(Settings(runtime="litert")).runtime == "litert"


def test_bad_combinations_are_usage_errors(no_gpu):
    with pytest.raises(InputError, match="--runtime litert runs on the CPU only"):
        runtime.choose(Settings(device="gpu", runtime="litert"))
    with pytest.raises(InputError, match="--device tpu"):
        runtime.choose(Settings(device="tpu"))
    with pytest.raises(InputError, match="--runtime onnx"):
        runtime.choose(Settings(runtime="onnx"))
    with pytest.raises(InputError, match="--threads 0"):
        runtime.threads(Settings(threads=0))


def test_without_a_litert_wheel_tensorflow_runs(monkeypatch, no_gpu):
    monkeypatch.setattr(runtime, "litert_installed", lambda: False)
    fallback = runtime.choose(Settings())
    assert fallback.runtime == "tensorflow" and "ai-edge-litert is not installed" in fallback.reason
    with pytest.raises(ImgfixError, match="ai-edge-litert is not installed"):
        runtime.choose(Settings(runtime="litert"))


def test_gpu_detection_reads_device_nodes_and_respects_cuda_visible_devices(monkeypatch):
    monkeypatch.setattr(runtime.glob, "glob", lambda pattern: ["/dev/nvidia1", "/dev/nvidia0"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert runtime.gpu_device() == "/dev/nvidia0"
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert runtime.gpu_device() is None
    monkeypatch.setattr(runtime.glob, "glob", lambda pattern: [])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert runtime.gpu_device() is None


def test_threads_follow_the_cpus_unless_given():
    assert runtime.threads(Settings()) == runtime.cpu_count() >= 1
    assert runtime.threads(Settings(threads=3)) == 3


# --- the LiteRT model ---------------------------------------------------------------------------


def test_litert_matches_keras_and_resizes_between_shapes(tiny_zoo, tiny_model):
    path = zoo.runtime_file(TINY, tiny_zoo)
    lite = LiteRTModel(path, num_threads=2)
    keras_model = KerasModel(tiny_model[0])
    assert sorted(lite.input_names) == sorted(keras_model.input_names) == ["image", "mask"]
    allocations = []
    real = lite.interpreter.allocate_tensors
    lite.interpreter.allocate_tensors = lambda: allocations.append(1) or real()
    for height, width in ((32, 48), (64, 64), (64, 64), (16, 160)):
        batch = _batch(height, width)
        got, want = lite(**batch), keras_model(**batch)
        assert got.shape == (1, height, width, 3)
        np.testing.assert_allclose(got, want, atol=1e-5)
    assert len(allocations) == 3  # the repeated shape reuses the plan
    lite.release()
    np.testing.assert_allclose(lite(**_batch(32, 32)), keras_model(**_batch(32, 32)), atol=1e-5)


def test_inputs_go_in_the_keras_order_or_by_name(tiny_zoo, tiny_model):
    card = zoo.read_card(TINY, tiny_zoo)
    assert card["runtime"]["inputs"] == ["image", "mask"]
    lite = LiteRTModel(zoo.runtime_file(TINY, tiny_zoo), 1, card["runtime"]["inputs"])
    batch = _batch(16, 32)
    np.testing.assert_array_equal(lite(batch["image"], batch["mask"]), lite(**batch))
    keras_model = KerasModel(tiny_model[0])
    np.testing.assert_allclose(keras_model(batch["image"], batch["mask"]), lite(**batch), atol=1e-5)
    with pytest.raises(ValueError, match="the model takes"):
        lite(image=np.zeros((1, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="1 inputs; the model takes"):
        lite(batch["image"])
    with pytest.raises(ValueError, match="in order or by name, not both"):
        lite(batch["image"], mask=batch["mask"])
    with pytest.raises(ImgfixError, match="card: "):
        LiteRTModel(zoo.runtime_file(TINY, tiny_zoo), 1, ["image", "hole"])


def test_height_and_width_stay_dynamic(tiny_zoo):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(zoo.runtime_file(TINY, tiny_zoo)))
    details = interpreter.get_signature_runner().get_input_details()
    assert list(details["image"]["shape_signature"]) == [-1, -1, -1, 3]
    assert list(details["mask"]["shape_signature"]) == [-1, -1, -1, 1]


def test_batched_calls_in_slices():
    calls = []

    def model(x, y):
        calls.append(len(x))
        return x * 2 + y

    out = runtime.batched(model, 4, np.arange(10), np.ones(10))
    np.testing.assert_array_equal(out, np.arange(10) * 2 + 1)
    assert calls == [4, 4, 2]


def test_load_picks_the_file_and_falls_back_once(tiny_zoo, no_gpu, capsys, monkeypatch):
    model, card = runtime.load(TINY, tiny_zoo, "inpainter")
    assert isinstance(model, LiteRTModel) and card["name"] == TINY
    model, _ = runtime.load(TINY, tiny_zoo, "inpainter", Settings(runtime="tensorflow"))
    assert isinstance(model, KerasModel)
    assert capsys.readouterr().err == ""

    # An entry from before the runtime: no .tflite on the card.
    card_path = tiny_zoo / f"{TINY}.json"
    text = card_path.read_text()
    import json

    old = json.loads(text)
    del old["runtime"]
    card_path.write_text(json.dumps(old))
    monkeypatch.setattr(runtime, "_warned", set())
    for _ in range(2):
        model, _ = runtime.load(TINY, tiny_zoo, "inpainter")
        assert isinstance(model, KerasModel)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runs on TensorFlow" in err[0] and "export-runtime tiny" in err[0]
    with pytest.raises(ImgfixError, match="--runtime litert: model 'tiny' cannot run on LiteRT"):
        runtime.load(TINY, tiny_zoo, "inpainter", Settings(runtime="litert"))


def test_a_tampered_or_missing_tflite_is_refused(tiny_zoo):
    path = tiny_zoo / f"{TINY}.tflite"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ImgfixError, match=f"{TINY}.tflite sha256 mismatch"):
        runtime.load(TINY, tiny_zoo, "inpainter", Settings(device="cpu"))
    with pytest.raises(ImgfixError, match="sha256 mismatch"):
        zoo.verify(TINY, tiny_zoo)
    path.unlink()
    with pytest.raises(ImgfixError, match="is missing .*export-runtime"):
        runtime.load(TINY, tiny_zoo, "inpainter", Settings(device="cpu"))


# --- the export ---------------------------------------------------------------------------------


def test_export_rebuilds_the_tflite_and_the_card(tiny_zoo):
    before = zoo.read_card(TINY, tiny_zoo)
    (tiny_zoo / f"{TINY}.tflite").unlink()
    card = zoo.export_runtime(TINY, tiny_zoo, "float16")
    entry = card["runtime"]
    assert entry["file"] == f"{TINY}.tflite" and entry["weights"] == "float16"
    assert entry["builtin_ops_only"] is True and entry["sha256"] != before["runtime"]["sha256"]
    assert card["sha256"] == before["sha256"]  # the .keras, the source of truth, is untouched
    assert zoo.read_card(TINY, tiny_zoo)["runtime"] == entry
    zoo.verify(TINY, tiny_zoo)


def test_weight_storage_follows_the_model_size(tiny_model, monkeypatch):
    model = tiny_model[0]
    assert export.storage(model) == "float32"
    assert export.storage(model, "float16") == "float16"
    monkeypatch.setattr(export, "FLOAT16_PARAMS", model.count_params() - 1)
    assert export.storage(model) == "float16"
    with pytest.raises(ValueError, match="weights must be one of"):
        export.storage(model, "int8")


def test_an_op_that_needs_flex_fails_at_export(tmp_path):
    import keras
    from keras import ops

    class Erfinv(keras.layers.Layer):
        def call(self, x):
            return ops.erfinv(ops.clip(x, -0.5, 0.5))

    x = keras.Input((4,), name="x")
    model = keras.Model(x, Erfinv()(x))
    with pytest.raises(export.ExportError, match="tf.Erfinv is not a LiteRT builtin op"):
        export.to_litert(model, tmp_path / "bad.tflite")


def test_a_float16_table_exports_through_a_float32_copy(tmp_path):
    """The compact prompt encoder keeps its table in float16; LiteRT has no float16 gather."""
    from imgfix.data.tokens import tokenize
    from imgfix.models.text import build_text_encoder, compact

    encoder = compact(build_text_encoder("ngram", 16, 32))
    path = tmp_path / "enc.tflite"
    assert export.to_litert(encoder, path) == "float16"
    ids = tokenize(["cat", "Katze", "猫", "a red car"], "ngram").astype(np.int32)
    got = LiteRTModel(path, 1)(ids=ids)
    np.testing.assert_allclose(got, KerasModel(encoder)(ids=ids), atol=2e-3)


def test_xnnpack_check_and_the_interpreter_without_it(tmp_path, tiny_zoo, tiny_model):
    """``export.xnnpack_agrees`` samples fixed-size models only; a card that says XNNPACK runs
    its model wrongly gets an interpreter without the delegate, with the same outputs."""
    from imgfix.models.cgan import build_generator

    generator = build_generator(24, 4, 8, 8)
    path = tmp_path / "g.tflite"
    export.to_litert(generator, path, "float16")
    assert export.xnnpack_agrees(generator, path) is True
    assert export.xnnpack_agrees(tiny_model[0], zoo.runtime_file(TINY, tiny_zoo)) is None

    z = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    c = np.random.default_rng(1).standard_normal((6, 8)).astype(np.float32)
    plain = LiteRTModel(path, 1, ["z", "condition"], xnnpack=False)
    assert plain.xnnpack is False
    np.testing.assert_allclose(
        plain(z, c), LiteRTModel(path, 1, ["z", "condition"])(z, c), atol=1e-5
    )
    np.testing.assert_allclose(plain(z, c), KerasModel(generator)(z, c), atol=2e-3)

    card = zoo.read_card(TINY, tiny_zoo)
    card["runtime"]["xnnpack"] = False
    (tiny_zoo / f"{TINY}.json").write_text(json.dumps(card))
    model, _ = runtime.load(TINY, tiny_zoo, "inpainter", Settings(runtime="litert"))
    assert model.xnnpack is False
