"""The model zoo: cards, hashes, safe loading, names that cannot escape the folder."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from imgfix import zoo
from imgfix.errors import ImgfixError, InputError

TINY = "tiny"  # the model in the tiny_zoo fixture
BAD_NAMES = ["", ".", "..", "../x", "a/b", "a\\b", "x\0y", ".hidden", "a..b", "/abs", "C:\\x"]


def _card(folder: Path, name: str = TINY) -> dict:
    return json.loads((folder / f"{name}.json").read_text())


def _write_card(folder: Path, card: dict, name: str = TINY) -> None:
    (folder / f"{name}.json").write_text(json.dumps(card))


def _hidden(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_round_trip_gives_the_same_model_and_a_full_card(tiny_zoo, tiny_model):
    model, card = zoo.load_model(TINY, tiny_zoo, kind="inpainter")
    original, _ = tiny_model
    rng = np.random.default_rng(0)
    image = rng.random((1, 64, 64, 3), dtype=np.float32)
    mask = np.zeros((1, 64, 64, 1), np.float32)
    mask[:, 16:40, 20:48] = 1
    np.testing.assert_allclose(model([image, mask]), original([image, mask]), atol=1e-6)

    assert card["name"] == TINY and card["file"] == f"{TINY}.keras"
    assert card["kind"] == "inpainter" and card["image_size"] == 64 and card["multiple"] == 16
    assert card["description"].startswith("8-filter")
    assert card["metrics"] == {"hole_psnr": 20.5}
    assert card["params"] == original.count_params()
    assert len(card["sha256"]) == 64 and int(card["sha256"], 16) >= 0
    assert card["tensorflow"] and card["keras"]
    assert datetime.fromisoformat(card["created"]).utcoffset().total_seconds() == 0


def test_save_is_clean_and_readable(tiny_zoo):
    assert _hidden(tiny_zoo) == []
    umask = os.umask(0)
    os.umask(umask)
    mode = stat.S_IMODE((tiny_zoo / f"{TINY}.keras").stat().st_mode)
    assert mode == 0o666 & ~umask


def test_tampered_file_is_refused(tiny_zoo):
    path = tiny_zoo / f"{TINY}.keras"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    for call in (lambda: zoo.verify(TINY, tiny_zoo), lambda: zoo.load_model(TINY, tiny_zoo)):
        with pytest.raises(ImgfixError) as info:
            call()
        assert not isinstance(info.value, InputError)
        assert str(info.value) == (
            f"model '{TINY}': {TINY}.keras sha256 mismatch, file is corrupt or was modified"
        )


def test_truncated_file_fails_in_one_line_even_with_a_matching_hash(tiny_zoo):
    path = tiny_zoo / f"{TINY}.keras"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ImgfixError, match="sha256 mismatch"):
        zoo.load_model(TINY, tiny_zoo)

    card = _card(tiny_zoo)
    card["sha256"] = zoo._sha256(path)
    _write_card(tiny_zoo, card)
    with pytest.raises(ImgfixError) as info:
        zoo.load_model(TINY, tiny_zoo)
    message = str(info.value)
    assert message.startswith(f"model '{TINY}': cannot load {TINY}.keras (")
    assert "\n" not in message


def test_card_without_hash_is_refused(tiny_zoo):
    card = _card(tiny_zoo)
    del card["sha256"]
    _write_card(tiny_zoo, card)
    with pytest.raises(ImgfixError, match="no sha256"):
        zoo.load_model(TINY, tiny_zoo)


ENTRY = [f"{TINY}.json", f"{TINY}.keras", f"{TINY}.tflite"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(tiny_zoo, tiny_model, name):
    with pytest.raises(InputError, match="invalid model name"):
        zoo.check_name(name)
    for call in (zoo.read_card, zoo.verify, zoo.load_model, zoo.remove):
        with pytest.raises(InputError, match="invalid model name"):
            call(name, tiny_zoo)
    with pytest.raises(InputError, match="invalid model name"):
        zoo.save_model(tiny_model[0], name, {}, tiny_zoo)
    assert sorted(p.name for p in tiny_zoo.iterdir()) == ENTRY


def test_unknown_model_names_the_available_ones(tiny_zoo, tmp_path):
    (tiny_zoo / "orphan.json").write_text("{}")  # no .keras: not available
    with pytest.raises(InputError) as info:
        zoo.load_model("nope", tiny_zoo)
    assert str(info.value) == f"unknown model 'nope' (available: {TINY})"
    with pytest.raises(InputError, match=r"orphan\.keras is missing; available: tiny\)"):
        zoo.load_model("orphan", tiny_zoo)
    with pytest.raises(InputError, match="no models in"):
        zoo.read_card("nope", tmp_path / "empty")


def test_kind_mismatch(tiny_zoo):
    card = _card(tiny_zoo)
    card["kind"] = "cgan"
    _write_card(tiny_zoo, card)
    with pytest.raises(InputError) as info:
        zoo.load_model(TINY, tiny_zoo, kind="inpainter")
    assert str(info.value) == f"'{TINY}' is a cgan model, not an inpainter"
    with pytest.raises(InputError, match="is a cgan model, not an inpainter"):
        zoo.read_card(TINY, tiny_zoo, kind="inpainter")


def test_broken_card(tiny_zoo):
    (tiny_zoo / f"{TINY}.json").write_text("{not json")
    with pytest.raises(ImgfixError, match=r"card tiny\.json is not valid JSON \(line 1\)"):
        zoo.read_card(TINY, tiny_zoo)
    [listed] = zoo.list_cards(tiny_zoo)
    assert listed["name"] == TINY and "not valid JSON" in listed["error"]


def test_export_import_list_remove(tiny_zoo, tmp_path):
    exported = zoo.export_model(TINY, tmp_path / "out", tiny_zoo)
    assert exported == tmp_path / "out" / f"{TINY}.keras"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ENTRY
    assert _card(tmp_path / "out") == _card(tiny_zoo)
    with pytest.raises(InputError, match="already exists"):
        zoo.export_model(TINY, tmp_path / "out", tiny_zoo)

    with pytest.raises(InputError, match="already in the zoo"):
        zoo.import_model(exported, zoo=tiny_zoo)
    imported = zoo.import_model(exported, name="b-copy", zoo=tiny_zoo)  # card found next to it
    assert imported["name"] == "b-copy" and imported["kind"] == "inpainter"
    assert imported["sha256"] == _card(tiny_zoo)["sha256"]
    # The .tflite that came with it is copied, not converted again.
    assert imported["runtime"] == {**_card(tiny_zoo)["runtime"], "file": "b-copy.tflite"}
    assert (
        zoo.runtime_file("b-copy", tiny_zoo).read_bytes()
        == (tiny_zoo / f"{TINY}.tflite").read_bytes()
    )
    zoo.import_model(exported, name="a-copy", card={"kind": "inpainter"}, zoo=tiny_zoo)
    assert [c["name"] for c in zoo.list_cards(tiny_zoo)] == ["a-copy", "b-copy", TINY]
    assert zoo.verify("a-copy", tiny_zoo)["keras"]  # filled from the archive's metadata

    zoo.remove("b-copy", tiny_zoo)
    assert not any(tiny_zoo.glob("b-copy.*"))
    with pytest.raises(InputError, match="unknown model 'b-copy'"):
        zoo.remove("b-copy", tiny_zoo)
    assert _hidden(tiny_zoo) == []


def test_import_converts_a_lone_keras_file(tiny_zoo, tmp_path):
    lone = tmp_path / "lone.keras"
    lone.write_bytes((tiny_zoo / f"{TINY}.keras").read_bytes())
    card = zoo.import_model(lone, card={"kind": "inpainter", "multiple": 16}, zoo=tiny_zoo)
    assert card["runtime"]["file"] == "lone.tflite" and card["runtime"]["weights"] == "float32"
    zoo.verify("lone", tiny_zoo)


def test_import_keeps_a_model_that_does_not_convert(tiny_zoo, tmp_path, monkeypatch):
    from imgfix import export

    def refuse(model, path, weights="auto"):
        raise export.ExportError("tf.Erfinv is not a LiteRT builtin op")

    monkeypatch.setattr(export, "to_litert", refuse)
    lone = tmp_path / "odd.keras"
    lone.write_bytes((tiny_zoo / f"{TINY}.keras").read_bytes())
    card = zoo.import_model(lone, card={"kind": "inpainter"}, zoo=tiny_zoo)
    assert card["runtime"] == {"error": "no LiteRT file: tf.Erfinv is not a LiteRT builtin op"}
    assert zoo.runtime_file("odd", tiny_zoo) is None and not (tiny_zoo / "odd.tflite").exists()
    zoo.verify("odd", tiny_zoo)


def test_import_refuses_damaged_or_foreign_files(tiny_zoo, tmp_path):
    exported = zoo.export_model(TINY, tmp_path / "out", tiny_zoo)
    card = _card(tmp_path / "out")
    card["sha256"] = "0" * 64
    (tmp_path / "out" / f"{TINY}.json").write_text(json.dumps(card))
    with pytest.raises(ImgfixError, match="sha256 mismatch with its card"):
        zoo.import_model(exported, name="damaged", zoo=tiny_zoo)
    # A .tflite that does not match its card is refused too, and nothing is left behind.
    card = _card(tiny_zoo)
    card["runtime"]["sha256"] = "0" * 64
    (tmp_path / "out" / f"{TINY}.json").write_text(json.dumps(card))
    with pytest.raises(ImgfixError, match=r"tiny\.tflite: sha256 mismatch with its card"):
        zoo.import_model(exported, name="damaged", zoo=tiny_zoo)
    assert not any(tiny_zoo.glob("damaged*"))

    not_zip = tmp_path / "fake.keras"
    not_zip.write_bytes(b"hello")
    with pytest.raises(InputError, match="not a Keras model archive"):
        zoo.import_model(not_zip, zoo=tiny_zoo)
    other_zip = tmp_path / "other.keras"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(InputError, match="no config.json"):
        zoo.import_model(other_zip, zoo=tiny_zoo)
    with pytest.raises(InputError, match="expected a .keras file"):
        zoo.import_model(tmp_path / "out" / f"{TINY}.json", zoo=tiny_zoo)
    assert sorted(p.name for p in tiny_zoo.iterdir()) == ENTRY


def test_zoo_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(zoo.ENV_VAR, raising=False)
    assert zoo.zoo_dir() == zoo.REPO_ZOO
    assert Path(__file__).resolve().parent.parent / "models_zoo" == zoo.REPO_ZOO
    monkeypatch.setenv(zoo.ENV_VAR, str(tmp_path / "env"))
    assert zoo.zoo_dir() == tmp_path / "env"
    assert zoo.zoo_dir(tmp_path / "flag") == tmp_path / "flag"


def test_cli_zoo_flag_beats_environment(tiny_zoo, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    env = {**os.environ, zoo.ENV_VAR: str(other)}

    def names(*args: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-m", "imgfix", *args, "--json", "zoo", "list"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return [card["name"] for card in json.loads(done.stdout)]

    assert names() == []
    assert names("--zoo", str(tiny_zoo)) == [TINY]
