"""Text-to-image end to end: a tiny corpus of coloured shapes, a prompt encoder, a text VAE (by
the ``train vae`` command), a VAE-GAN started from it and a label VAE, all trained for a step or
two into a throw-away zoo once per module; then ``imgfix generate`` as users run it.

Commands that load a model run in this process through ``main()`` (TensorFlow is started once);
the errors that must come before TensorFlow run in one subprocess that checks it never started.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from test_cli import HEAVY, assert_error

from imgfix.errors import InputError
from imgfix.pipelines import generate as pipeline
from imgfix.training.prompt import split_texts

SIZE = 24  # the generators' side
ENCODER, VAE, CGAN, LABELS, CONCEPTS_VAE = "enc", "vae", "cgan", "labels", "concepts"
SHAPES = {
    "red circle": ((220, 30, 30), "ellipse"),
    "blue square": ((30, 60, 220), "rectangle"),
    "green triangle": ((30, 180, 60), "triangle"),
    "yellow circle": ((230, 200, 20), "ellipse"),
    "black square": ((20, 20, 20), "rectangle"),
    "purple triangle": ((140, 40, 170), "triangle"),
}
CONCEPTS = sorted(SHAPES)
TEXTS = {
    "red circle": ["red ball", "círculo rojo", "roter kreis", "赤い丸", "красный круг"],
    "blue square": ["blue box", "cuadrado azul", "blaues quadrat", "青い四角", "синий квадрат"],
    "green triangle": ["green wedge", "triángulo verde", "grünes dreieck", "緑の三角"],
    "yellow circle": ["yellow ball", "círculo amarillo", "gelber kreis", "黄色い丸"],
    "black square": ["black box", "cuadrado negro", "schwarzes quadrat", "黒い四角"],
    "purple triangle": ["purple wedge", "triángulo morado", "фиолетовый треугольник"],
}
KEYWORDS = {concept: concept.split() for concept in SHAPES}  # "red", "circle": shared words
TRAIN = ["--image-size", SIZE, "--batch-size", 4, "--filters", 8, "--checkpoint-minutes", 600]


# --- helpers ----------------------------------------------------------------------------------


def cli(*args) -> subprocess.CompletedProcess:
    """``imgfix ARGS`` in this process, as the console script runs it (TensorFlow has started
    already, so a command costs only its own work): exit code, stdout and stderr."""
    from imgfix import runtime
    from imgfix.cli import main

    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["imgfix", *argv])  # what cards record as training_command
        mp.setattr(runtime, "_configured", "auto")  # TensorFlow picks its device once
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


BATCH = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from imgfix.cli import main
    results = []
    for argv in json.loads(sys.argv[1]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code
        results.append([argv, code, out.getvalue(), err.getvalue()])
    heavy = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
    print(json.dumps({"results": results, "heavy": heavy}))
    """
)


def light_batch(*commands: list, heavy=("tensorflow", "keras")) -> list:
    """Run several commands in one fresh process and check none of them imported ``heavy``
    modules (TensorFlow, by default); returns a CompletedProcess per command."""
    argvs = [[str(a) for a in command] for command in commands]
    done = subprocess.run(
        [sys.executable, "-c", BATCH, json.dumps(argvs), json.dumps(list(heavy))],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["heavy"] == [], report
    return [subprocess.CompletedProcess(*result) for result in report["results"]]


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def card(zoo: Path, name: str) -> dict:
    return json.loads((zoo / f"{name}.json").read_text())


def _draw(path: Path, colour, shape: str, inset: int) -> None:
    im = Image.new("RGB", (32, 32), "white")
    draw = ImageDraw.Draw(im)
    lo, hi = inset, 31 - inset
    if shape == "triangle":
        draw.polygon([(16, lo), (hi, hi), (lo, hi)], fill=colour)
    else:
        getattr(draw, shape)((lo, lo, hi, hi), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def make_corpora(root: Path) -> tuple[Path, Path]:
    """Two layouts of the same 12 images: class folders (labels only) and a captions.jsonl
    with captions in several languages."""
    folders, captioned = root / "shapes", root / "captioned"
    captioned.mkdir(parents=True)
    lines = []
    for concept, (colour, shape) in SHAPES.items():
        for k in range(2):
            rel = f"{concept.replace(' ', '_')}/{k}.png"
            _draw(folders / rel, colour, shape, inset=4 + 3 * k)
            texts = [concept, *TEXTS[concept]]
            lines.append(
                {"file": f"../shapes/{rel}", "concept": concept, "texts": texts,
                 "keywords": KEYWORDS[concept]}
            )  # fmt: skip
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    (captioned / "captions.jsonl").write_text(text, encoding="utf-8")
    return folders, captioned


# --- the trained zoo --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    from imgfix.training.generators import train_generator
    from imgfix.training.prompt import train_text_encoder

    root = tmp_path_factory.mktemp("generate")
    folders, captioned = make_corpora(root)
    zoo, runs = root / "zoo", root / "runs"
    _, held = split_texts({c: [c, *TEXTS[c], *KEYWORDS[c]] for c in SHAPES})
    assert any(held.values())  # the encoder's held-out check has captions to check

    small = dict(image_size=SIZE, batch_size=4, zoo=zoo, quiet=True, checkpoint_minutes=600)
    text = train_text_encoder(captioned, ENCODER, dim=16, steps=1, logdir=runs / ENCODER, **small)
    vae_args = ["--zoo", zoo, "--seed", 0, "--json", "train", "vae", "--data", captioned,
                "--name", VAE, "--text-encoder", ENCODER, "--steps", 2, "--z-dim", 8,
                "--logdir", runs / VAE, *TRAIN]  # fmt: skip
    vae = cli(*vae_args)
    assert vae.returncode == 0, vae.stderr
    cgan = train_generator(
        "cgan", captioned, CGAN, text_encoder=ENCODER, steps=1, filters=8,
        init=str(runs / VAE / "checkpoint.keras"), logdir=runs / CGAN, mismatch_weight=0.25,
        **small,
    )  # fmt: skip
    labels = train_generator(
        "vae", folders, LABELS, condition="label", steps=1, filters=8, z_dim=8,
        logdir=runs / LABELS, **small,
    )  # fmt: skip
    concept = train_generator(
        "vae", captioned, CONCEPTS_VAE, condition="concept", text_encoder=ENCODER, steps=1,
        filters=8, z_dim=8, logdir=runs / CONCEPTS_VAE, **small,
    )  # fmt: skip
    return {
        "root": root, "zoo": zoo, "runs": runs, "folders": folders, "captioned": captioned,
        "held": sum(map(len, held.values())), "text": text, "vae": vae, "vae_args": vae_args,
        "cgan": cgan, "labels": labels, "concept": concept,
    }  # fmt: skip


@pytest.fixture
def zoo(trained) -> Path:
    return trained["zoo"]


# --- training ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_text_encoder_is_exported_with_its_card(trained, zoo):
    held = trained["held"]
    assert trained["text"]["steps"] == 1 and trained["text"]["heldout_captions"] == held
    enc = card(zoo, ENCODER)
    assert enc["kind"] == "text-encoder" and enc["tokenizer"] == "ngram" and enc["dim"] == 16
    assert enc["steps"] == 1 and enc["concepts"] == CONCEPTS
    assert enc["data"]["concepts"] == len(SHAPES) and enc["data"]["images"] == 12
    assert enc["data"]["layout"] == "captions.jsonl"
    # Captions and keywords both train the encoder.
    assert enc["data"]["captions"] == sum(1 + len(TEXTS[c]) + len(KEYWORDS[c]) for c in SHAPES)
    figures = enc["metrics"]["validation"]
    assert figures["heldout_captions"] == held
    for key in ("heldout_text_to_concept", "heldout_text_to_image", "typo_name_to_concept"):
        assert 0.0 <= figures[key]["top1"] <= figures[key]["top5"] <= 1.0
    log = (trained["runs"] / ENCODER / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [1]

    import keras

    from imgfix import zoo as zoo_mod

    model, _ = zoo_mod.load_model(ENCODER, zoo, kind="text-encoder")  # compact: a float16 table
    table = model.get_layer("ngram_embedding").embeddings
    assert keras.backend.standardize_dtype(table.dtype) == "float16"


@pytest.mark.slow
def test_train_vae_command_exports_a_text_generator(trained, zoo):
    summary = json.loads(trained["vae"].stdout)
    assert summary["name"] == VAE and summary["family"] == "vae"
    assert summary["steps"] == 2 and summary["steps_this_run"] == 2
    vae = card(zoo, VAE)
    assert vae["kind"] == "generator" and vae["family"] == "vae" and vae["condition"] == "text"
    assert vae["image_size"] == SIZE and vae["z_dim"] == 8 and vae["steps"] == 2
    assert vae["concepts"] == CONCEPTS
    # Generators condition on captions only, less those held out from the encoder.
    train, _ = split_texts({c: [c, *TEXTS[c]] for c in SHAPES})
    assert vae["data"]["images"] == 12
    assert vae["data"]["captions"] == sum(map(len, train.values()))
    enc = card(zoo, ENCODER)
    assert vae["text_encoder"] == {"name": ENCODER, "sha256": enc["sha256"], "tokenizer": "ngram"}
    assert vae["training_command"] == "imgfix " + shlex.join(map(str, trained["vae_args"]))
    run = trained["runs"] / VAE
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2]
    grid = pixels(run / "samples" / "latest.png")  # showcase prompts x 6 noise draws
    assert grid.shape == (len(pipeline.SHOWCASE_PROMPTS) * SIZE, 6 * SIZE, 3)


@pytest.mark.slow
def test_cgan_starts_from_the_vae_checkpoint(trained, zoo):
    summary = trained["cgan"]
    assert summary["family"] == "cgan" and summary["steps"] == 1
    assert {"rec_l1", "kl", "d_loss", "g_adv"} <= set(summary)  # the VAE-GAN path ran
    # The critic's health is logged: the share of reals, fakes and mismatches it gets right.
    for key in ("d_real_acc", "d_fake_acc", "d_mismatch_acc"):
        assert 0.0 <= summary[key] <= 1.0
    gan = card(zoo, CGAN)
    assert gan["family"] == "cgan" and "VAE-GAN" in gan["description"]
    assert gan["training"]["init"] == str(trained["runs"] / VAE / "checkpoint.keras")
    assert gan["z_dim"] == 8  # the VAE's latent size, not the default
    assert gan["text_encoder"] == card(zoo, VAE)["text_encoder"]
    assert gan["training"]["mismatch_weight"] == 0.25


@pytest.mark.slow
def test_critic_probe_trains_only_the_critic(trained, zoo):
    from bench import critic_probe

    rows = list(
        critic_probe.probe(
            CGAN, trained["captioned"], steps=3, batch_size=4, filters=8, zoo=zoo, every=2
        )
    )
    assert [row["step"] for row in rows] == [2, 3]  # logged every 2 steps, and at the end
    for key in ("d_real_acc", "d_fake_acc", "d_mismatch_acc"):
        assert all(0.0 <= row[key] <= 1.0 for row in rows)
    assert all(np.isfinite(row["d_loss"]) and row["d_loss"] > 0 for row in rows)
    assert all(row["g_moved"] == 0.0 for row in rows)  # the critic trained, the generator not


@pytest.mark.slow
def test_label_vae_card(trained, zoo):
    labels = card(zoo, LABELS)
    assert labels["condition"] == "label" and "text_encoder" not in labels
    assert labels["concepts"] == CONCEPTS  # folder names, underscores as spaces
    grid = pixels(trained["runs"] / LABELS / "samples" / "latest.png")
    assert grid.shape == (len(SHAPES) * SIZE, 6 * SIZE, 3)


def _class_colours(images: np.ndarray) -> np.ndarray:
    """Mean colour of each image's ink (pixels darker than near-white), (n, 3)."""
    ink = images.astype(np.float32).min(axis=-1, keepdims=True) < 200
    return (images * ink).sum(axis=(1, 2)) / ink.sum(axis=(1, 2)).clip(1)


@pytest.mark.slow
def test_label_models_learn_what_each_class_looks_like(trained, tmp_path):
    """On a user's class folders (--condition label), the VAE and then the VAE-GAN started from
    it draw each class in its own colour: the output depends on the label, not only on z."""
    from imgfix.training.generators import train_generator

    zoo, runs = tmp_path / "zoo", tmp_path / "runs"
    small = dict(
        image_size=SIZE, batch_size=12, zoo=zoo, quiet=True, checkpoint_minutes=600,
        checkpoints=1, condition="label", filters=8,
    )  # fmt: skip
    folders = trained["folders"]
    train_generator("vae", folders, "lv", steps=150, z_dim=8, kl_weight=1.0, warmup_steps=20,
                    logdir=runs / "lv", **small)  # fmt: skip
    train_generator("cgan", folders, "lg", steps=40, init=str(runs / "lv" / "checkpoint.keras"),
                    logdir=runs / "lg", **small)  # fmt: skip
    # A GAN resumes (its optimizers live in its config) and may take new learning rates.
    resumed = train_generator("cgan", folders, "lg", steps=42, resume=True, lr=5e-5, d_lr=2e-4,
                              logdir=runs / "lg", **small)  # fmt: skip
    assert resumed["steps"] == 42 and resumed["steps_this_run"] == 2
    training = card(zoo, "lg")["training"]
    assert training["lr"] == pytest.approx(5e-5) and training["d_lr"] == pytest.approx(2e-4)
    truth = np.array([SHAPES[c][0] for c in CONCEPTS], np.float32)
    for name in ("lv", "lg"):
        generator = pipeline.load_generator(name, zoo)
        right = 0
        for index, concept in enumerate(CONCEPTS):
            out = generator.sample(concept, pipeline.GenerateOptions(n=4, seed=index)).images
            colour = _class_colours(out).mean(axis=0)
            right += int(np.argmin(np.abs(truth - colour).sum(axis=1)) == index)
        assert right >= 5, (name, right)


@pytest.mark.slow
def test_resume_continues_the_step_count(trained, tmp_path):
    zoo, run = tmp_path / "zoo", tmp_path / "run"
    shutil.copytree(trained["zoo"], zoo)
    shutil.copytree(trained["runs"] / VAE, run)
    before = card(zoo, VAE)
    args = ["--zoo", zoo, "--seed", 0, "--json", "train", "vae", "--data", trained["captioned"],
            "--name", VAE, "--text-encoder", ENCODER, "--z-dim", 8, "--logdir", run,
            *TRAIN]  # fmt: skip

    done = cli(*args, "--steps", 3, "--resume")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["steps"] == 3 and summary["steps_this_run"] == 1
    after = card(zoo, VAE)
    assert after["steps"] == 3 and after["sha256"] != before["sha256"]
    assert after["training"]["seconds"] >= before["training"]["seconds"]
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]

    checkpoint = (run / "checkpoint.keras").read_bytes()
    refused = cli(*args, "--steps", 5)
    assert_error(refused, 2, "a checkpoint exists; pass --resume")
    assert (run / "checkpoint.keras").read_bytes() == checkpoint
    assert card(zoo, VAE)["steps"] == 3

    done = cli(*args, "--steps", 3, "--resume")  # already there: nothing more to train
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps_this_run"] == 0


@pytest.mark.slow
def test_training_argument_errors(trained, tmp_path):
    common = ["--zoo", trained["zoo"], "train"]
    data = ["--data", trained["captioned"], "--text-encoder", ENCODER]
    logdir = ["--logdir", tmp_path / "run"]
    done = cli(*common, "vae", *data, "--name", "x", *logdir, "--image-size", 30)
    assert_error(done, 2, "--image-size 30: choose 24, 48 or 96")
    done = cli(*common, "text", "--data", trained["captioned"], "--name", "x", *logdir,
               "--batch-size", 8, "--image-size", SIZE)  # fmt: skip
    assert_error(done, 2, "--batch-size 8: the corpus has only 6 concepts")


@pytest.mark.slow
def test_text_encoder_trains_on_class_folders(trained, tmp_path):
    from imgfix.training.prompt import train_text_encoder

    summary = train_text_encoder(
        trained["folders"], "enc-folders", dim=8, image_size=SIZE, steps=1, batch_size=4,
        logdir=tmp_path / "run", zoo=tmp_path / "zoo", quiet=True,
    )  # fmt: skip
    assert summary["steps"] == 1 and summary["heldout_captions"] == 0


# --- generate: pixels -------------------------------------------------------------------------


def generate(zoo: Path, *args) -> subprocess.CompletedProcess:
    done = cli("--zoo", zoo, "generate", "--model", CGAN, *args)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
def test_same_seed_same_pixels(zoo, tmp_path):
    two = ["--model", CGAN, "-p", "red circle", "-p", "blue square", "-n", 2, "--size", SIZE]
    global_seed = cli("--zoo", zoo, "--seed", 3, "generate", *two, "--out-dir", tmp_path / "a")
    assert global_seed.returncode == 0, global_seed.stderr
    generate(zoo, "-p", "red circle", "-n", 2, "--size", SIZE, "--seed", 3, "--out-dir",
             tmp_path / "b")  # fmt: skip
    generate(zoo, *two[2:], "--seed", 4, "--out-dir", tmp_path / "c")

    a = {name: pixels(tmp_path / "a" / f"{name}.png") for name in ("red-circle-1", "red-circle-2")}
    assert a["red-circle-1"].shape == (SIZE, SIZE, 3)
    for name, image in a.items():
        # The global --seed or generate's own, and whatever else the call generated.
        assert np.array_equal(image, pixels(tmp_path / "b" / f"{name}.png"))
        assert not np.array_equal(image, pixels(tmp_path / "c" / f"{name}.png"))
    assert not np.array_equal(a["red-circle-1"], a["red-circle-2"])  # noise differs per image
    blue = pixels(tmp_path / "a" / "blue-square-1.png")
    assert not np.array_equal(a["red-circle-1"], blue)  # the prompt matters


@pytest.mark.slow
def test_zero_temperature_draws_the_same_image(zoo, tmp_path):
    generate(zoo, "-p", "green triangle", "-n", 3, "--temperature", 0, "--size", SIZE,
             "--out-dir", tmp_path)  # fmt: skip
    images = [pixels(tmp_path / f"green-triangle-{k}.png") for k in (1, 2, 3)]
    assert np.array_equal(images[0], images[1]) and np.array_equal(images[0], images[2])


@pytest.mark.slow
def test_json_files_sizes_and_grid(zoo, tmp_path):
    args = ["-p", "red circle", "-p", "Blue Square!", "-n", 3, "--size", 64, "--seed", 5]
    done = generate(zoo, *args, "--json", "--out-dir", tmp_path / "files")
    report = json.loads(done.stdout)
    assert report["model"] == CGAN and report["seed"] == 5
    paths = [Path(p) for p in report["paths"]]
    assert [p.name for p in paths] == [f"{s}-{k}.png" for s in ("red-circle", "blue-square")
                                       for k in (1, 2, 3)]  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == sorted(p.name for p in paths)
    for path in paths:
        with Image.open(path) as im:
            assert im.size == (64, 64) and im.mode == "RGB"
    red, blue = report["prompts"]
    assert red["prompt"] == "red circle" and [Path(p) for p in red["paths"]] == paths[:3]
    assert red["known"] is True
    assert red["nearest"][0] == {"concept": "red circle", "similarity": 1.0}
    assert blue["nearest"][0]["concept"] == "blue square"  # case and punctuation folded
    assert len(red["nearest"]) == 3

    grid_file = tmp_path / "grid.png"
    done = generate(zoo, *args, "--grid", "-o", grid_file, "--json")
    assert json.loads(done.stdout)["paths"] == [str(grid_file)]
    grid = pixels(grid_file)
    pad = 2
    assert grid.shape == (2 * (64 + pad) + pad, 3 * (64 + pad) + pad, 3)  # rows: prompts
    for r in range(2):
        for c in range(3):
            top, left = pad + r * (64 + pad), pad + c * (64 + pad)
            cell = grid[top : top + 64, left : left + 64]
            assert np.array_equal(cell, pixels(paths[3 * r + c]))


@pytest.mark.slow
def test_prompts_file_and_numbered_output(zoo, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(
        "# shapes to draw\n\nred circle\n   \n  # an indented comment\n黄色い丸\n",
        encoding="utf-8",
    )
    taken = tmp_path / "out-2.png"
    taken.write_bytes(b"precious")
    args = ["--prompts-file", prompts, "-p", "black box", "--size", 32, "-o", tmp_path / "out.png"]
    refused = cli("--zoo", zoo, "generate", "--model", CGAN, *args)
    assert_error(refused, 2, "out-2.png: exists; use --overwrite")
    assert taken.read_bytes() == b"precious" and not (tmp_path / "out-1.png").exists()

    report = json.loads(generate(zoo, *args, "--json", "--overwrite").stdout)
    assert [p["prompt"] for p in report["prompts"]] == ["black box", "red circle", "黄色い丸"]
    assert [Path(p).name for p in report["paths"]] == ["out-1.png", "out-2.png", "out-3.png"]
    for path in report["paths"]:
        assert pixels(Path(path)).shape == (32, 32, 3)


# --- generate: prompts near and far -----------------------------------------------------------


@pytest.mark.slow
def test_far_prompt_warning(zoo, tmp_path, monkeypatch):
    generator = pipeline.load_generator(CGAN, zoo)
    near = generator.match("red circle")
    assert near.nearest[0] == ("red circle", 1.0) and near.known
    gibberish = "qqqq zzzz xxxx"
    far = generator.match(gibberish)
    similarity = far.nearest[0][1]
    assert similarity < 0.999
    # The threshold between the two: only the gibberish prompt is 'far'.
    monkeypatch.setattr(pipeline, "FAR_SIMILARITY", (similarity + 1.0) / 2)
    done = generate(zoo, "-p", "red circle", "-p", gibberish, "--json", "--out-dir", tmp_path)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"imgfix: warning: prompt '{gibberish}' is far from everything")
    for concept, _ in far.nearest:
        assert concept in lines[0]
    known = {p["prompt"]: p["known"] for p in json.loads(done.stdout)["prompts"]}
    assert known == {"red circle": True, gibberish: False}
    assert (tmp_path / "qqqq-zzzz-xxxx.png").is_file()  # a warning, not an error


class _Encoder:
    """Stands in for a trained text tower: a fixed unit vector for each known text."""

    def __init__(self, vectors: dict[str, list[float]]):
        from imgfix.models.text import tokenize

        self.table = {tokenize(t)[0].tobytes(): np.array(v, np.float32) for t, v in vectors.items()}

    def __call__(self, ids):
        return np.stack([self.table[row.tobytes()] for row in ids])


def test_match_ranks_concepts_and_flags_far_prompts(monkeypatch):
    s = np.sqrt(0.5)
    encoder = _Encoder({
        "cat": [1, 0, 0], "dog": [0, 1, 0], "car": [0, 0, 1],
        "kitten": [0.8, 0.6, 0], "spoon": [0.4, 0.3, -np.sqrt(0.75)], "pet": [s, s, 0],
    })  # fmt: skip
    card = {"concepts": ["cat", "dog", "car"], "z_dim": 4, "text_encoder": {"tokenizer": "ngram"}}
    generator = pipeline.Generator(None, card, encoder)

    kitten = generator.match("kitten")
    assert [c for c, _ in kitten.nearest] == ["cat", "dog", "car"]
    assert [s for _, s in kitten.nearest] == pytest.approx([0.8, 0.6, 0.0], abs=1e-3)
    assert kitten.known and generator.match("Cat").known
    spoon = generator.match("spoon", top=2)
    assert [c for c, _ in spoon.nearest] == ["cat", "dog"] and not spoon.known
    assert generator.match("pet").nearest[0][1] == pytest.approx(s, abs=1e-3)
    monkeypatch.setattr(pipeline, "FAR_SIMILARITY", 0.35)
    assert generator.match("spoon").known
    monkeypatch.setattr(pipeline, "FAR_SIMILARITY", 0.9)
    assert not generator.match("kitten").known and generator.match("cat").known
    np.testing.assert_allclose(generator.conditions(["kitten"]), [[0.8, 0.6, 0.0]])


def test_label_generator_matches_exact_labels_only():
    card = {"concepts": ["blue square", "red circle"], "z_dim": 4, "condition": "label"}
    generator = pipeline.Generator(None, card)
    for prompt in ("red circle", "RED CIRCLE", "Red_Circle", " red  circle! "):
        match = generator.match(prompt)
        assert match.known and match.nearest == [("red circle", 1.0)]
    close = generator.match("red circel")
    assert not close.known and close.nearest[0][0] == "red circle"
    assert generator.conditions(["Blue Square", "red circle"]).tolist() == [[1, 0], [0, 1]]
    with pytest.raises(InputError, match="'green': this model knows fixed labels only; nearest"):
        generator.conditions(["green"])


@pytest.mark.slow
def test_label_model_takes_exact_labels(zoo, tmp_path):
    done = cli("--zoo", zoo, "--json", "generate", "--model", LABELS, "-p", "RED CIRCLE",
               "-p", "black_square", "--size", SIZE, "--out-dir", tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [p["known"] for p in report["prompts"]] == [True, True]
    assert [p["nearest"][0]["concept"] for p in report["prompts"]] == [
        "red circle",
        "black square",
    ]
    assert all(Path(p).is_file() for p in report["paths"])

    refused = cli("--zoo", zoo, "generate", "--model", LABELS, "-p", "purple hexagon",
                  "--out-dir", tmp_path / "none")  # fmt: skip
    assert_error(refused, 2, "'purple hexagon': this model knows fixed labels only", "nearest: ")
    assert "purple triangle" in refused.stderr
    assert not (tmp_path / "none").exists()


def test_concept_model_reaches_its_concepts_by_caption_and_by_encoder(zoo, tmp_path):
    """A concept generator: every caption, in any language, names its concept exactly, and
    gives the same pixels as the concept's name; a paraphrase goes through the encoder."""
    concept = card(zoo, CONCEPTS_VAE)
    assert concept["condition"] == "concept" and concept["concepts"] == CONCEPTS
    assert concept["text_encoder"]["name"] == ENCODER
    from imgfix.data import concepts

    table, bank = concepts.unpack(concept["concept_lookup"])
    red = CONCEPTS.index("red circle")
    assert table["roter kreis"] == red and table["赤い丸"] == red
    assert bank.shape == (len(CONCEPTS), 16)
    shown = cli("--zoo", zoo, "zoo", "show", CONCEPTS_VAE).stdout
    assert f"{len(table)} captions of {len(CONCEPTS)} concepts, 16-d centroids" in shown
    assert concept["concept_lookup"]["bank"][:40] not in shown

    prompts = ["red circle", "Roter Kreis!", "赤い丸", "black box", "a purple wedge shape"]
    args = [a for p in prompts for a in ("-p", p)]
    done = cli("--zoo", zoo, "--json", "generate", "--model", CONCEPTS_VAE, *args,
               "--seed", 3, "--size", SIZE, "--out-dir", tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["prompts"]
    first = [p["nearest"][0] for p in report]
    assert [f["concept"] for f in first[:4]] == ["red circle"] * 3 + ["black square"]
    assert [f["similarity"] for f in first[:4]] == [1.0] * 4
    assert first[4]["similarity"] < 1.0 and len(report[4]["nearest"]) == 3
    images = [pixels(Path(p["paths"][0])) for p in report]
    assert np.array_equal(images[0], images[1]) and np.array_equal(images[0], images[2])
    assert not np.array_equal(images[0], images[3])


# --- generate: models and errors --------------------------------------------------------------


@pytest.mark.slow
def test_zoo_show_lists_the_concepts(zoo):
    shown = cli("--zoo", zoo, "zoo", "show", CGAN)
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())  # the table may wrap long values
    assert "concepts" in text
    for concept in CONCEPTS:
        assert concept in text
    shown = cli("--zoo", zoo, "--json", "zoo", "show", LABELS)
    assert json.loads(shown.stdout)["concepts"] == CONCEPTS


@pytest.mark.slow
def test_replaced_text_encoder_is_refused(trained, tmp_path):
    import keras

    from imgfix import zoo as zoo_mod
    from imgfix.models.text import build_text_encoder

    zoo = tmp_path / "zoo"
    shutil.copytree(trained["zoo"], zoo)
    old = card(zoo, ENCODER)
    keras.utils.set_random_seed(1)
    zoo_mod.save_model(build_text_encoder("ngram", 16), ENCODER, {**old, "steps": 99}, zoo)
    assert card(zoo, ENCODER)["sha256"] != old["sha256"]
    done = cli("--zoo", zoo, "generate", "--model", CGAN, "-p", "red circle",
               "--out-dir", tmp_path / "out")  # fmt: skip
    assert_error(done, 1, f"'{CGAN}' was trained with another version of text encoder '{ENCODER}'")
    assert old["sha256"][:12] in done.stderr
    assert not (tmp_path / "out").exists()

    for suffix in (".json", ".keras"):
        (zoo / f"{ENCODER}{suffix}").unlink()
    done = cli("--zoo", zoo, "generate", "--model", CGAN, "-p", "red circle",
               "--out-dir", tmp_path / "out")  # fmt: skip
    assert_error(done, 2, f"unknown model '{ENCODER}'")


def test_help_does_not_import_tensorflow():
    helps = [["generate", "--help"], ["train", "text", "--help"], ["train", "vae", "--help"],
             ["train", "cgan", "--help"], ["data", "emoji", "--help"]]  # fmt: skip
    results = light_batch(*helps, heavy=HEAVY)
    assert [r.returncode for r in results] == [0] * len(helps)
    assert "--prompts-file" in results[0].stdout and "--temperature" in results[0].stdout


@pytest.fixture
def card_zoo(tmp_path) -> Path:
    """Cards and empty model files: enough for every check made before TensorFlow starts."""
    folder = tmp_path / "cards"
    folder.mkdir()
    for name, kind in (("gen", "generator"), ("enc", "text-encoder")):
        (folder / f"{name}.json").write_text(json.dumps({"name": name, "kind": kind}))
        (folder / f"{name}.keras").write_bytes(b"")
    return folder


def test_generate_errors_come_before_tensorflow(card_zoo, tmp_path):
    from imgfix.zoo import REPO_ZOO

    existing = tmp_path / "taken.png"
    existing.write_bytes(b"precious")
    comments = tmp_path / "comments.txt"
    comments.write_text("# nothing\n\n   \n")
    generate = ["--zoo", card_zoo, "generate"]
    cases = [
        ([*generate, "-p", ""], "empty prompt"),
        ([*generate, "-p", "   "], "empty prompt"),
        ([*generate, "--model", "gen"], "no prompt given"),
        ([*generate, "-p", "x" * 501], "prompt of 501 characters"),
        ([*generate, "-p", "cat", "-n", 0], "-n 0: choose between 1 and 1024"),
        ([*generate, "-p", "cat", "-n", 100000], "-n 100000: choose between 1 and 1024"),
        ([*generate, "-p", "a", "-p", "b", "-n", 600], "2 prompts x 600 images: at most 1024"),
        ([*generate, "-p", "cat", "--size", 4], "--size 4"),
        ([*generate, "-p", "cat", "--temperature", -1], "--temperature -1"),
        ([*generate, "-p", "cat", "-o", "a.png", "--out-dir", tmp_path], "either -o"),
        ([*generate, "--prompts-file", comments], "comments.txt: no prompts in the file"),
        ([*generate, "--prompts-file", tmp_path / "no.txt"], "no.txt: no such file"),
        ([*generate, "-p", "cat", "--model", "nope"], "unknown model 'nope' (available: enc, gen)"),
        ([*generate, "-p", "cat"], "unknown model 'emoji-cgan'"),
        ([*generate, "-p", "cat", "--model", "enc"],
         "'enc' is a text-encoder model, not a generator"),
        (["--zoo", REPO_ZOO, "generate", "-p", "cat", "--model", "photo-inpainter"],
         "'photo-inpainter' is an inpainter model, not a generator"),
        ([*generate, "-p", "cat", "--model", "gen", "-o", existing],
         "taken.png: exists; use --overwrite"),
        ([*generate, "-p", "cat", "--model", "../gen"], "invalid model name"),
    ]  # fmt: skip
    results = light_batch(*(args for args, _ in cases))
    for (_, message), done in zip(cases, results, strict=True):
        assert_error(done, 2, message)
    assert existing.read_bytes() == b"precious"
    assert not (tmp_path / "a.png").exists()


@pytest.mark.slow
def test_negative_seed_is_a_usage_error(zoo, tmp_path):
    done = cli("--zoo", zoo, "generate", "--model", CGAN, "-p", "red circle", "--seed", -1,
               "--out-dir", tmp_path)  # fmt: skip
    assert_error(done, 2, "--seed -1")


def test_training_errors_come_before_tensorflow(card_zoo, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    train = ["--zoo", card_zoo, "train"]
    cases = [
        ([*train, "vae", "--data", tmp_path / "nope", "--name", "v"], "nope: no such folder"),
        ([*train, "vae", "--data", data, "--name", "v", "--text-encoder", "missing"],
         "unknown model 'missing'"),
        ([*train, "vae", "--data", data, "--name", "v", "--text-encoder", "gen"],
         "'gen' is a generator model, not a text-encoder"),
        ([*train, "cgan", "--data", data, "--name", "g", "--text-encoder", "enc",
          "--init", tmp_path / "none.keras"], "none.keras: no such checkpoint file"),
        ([*train, "text", "--data", data, "--name", "../x"], "invalid model name"),
    ]  # fmt: skip
    results = light_batch(*(args for args, _ in cases))
    for (_, message), done in zip(cases, results, strict=True):
        assert_error(done, 2, message)
    usage = light_batch(
        [*train, "text", "--data", data, "--batch-size", 1],
        [*train, "vae", "--data", data, "--name", "v", "--condition", "words"],
    )
    assert [u.returncode for u in usage] == [2, 2]


# --- file names -------------------------------------------------------------------------------


def test_slug():
    assert pipeline.slug("  Red Circle! ") == "red-circle"
    assert pipeline.slug("赤い 丸") == "赤い-丸"
    assert pipeline.slug("!!!") == "prompt"
    assert pipeline.slug("../../etc/passwd") == "etc-passwd"
    assert len(pipeline.slug("word " * 40)) <= 60


def test_output_paths():
    out = Path("out")
    assert pipeline.output_paths(["cat"], 1, None, out, False) == [[out / "cat.png"]]
    assert pipeline.output_paths(["cat"], 2, None, None, False) == [
        [Path("cat-1.png"), Path("cat-2.png")]
    ]
    # Prompts with the same slug get distinct files.
    paths = pipeline.output_paths(["cat", "CAT!", "cat"], 1, None, out, False)
    flat = [p for row in paths for p in row]
    assert flat[0] == out / "cat.png" and len(set(flat)) == 3
    numbered = pipeline.output_paths(["a", "b"], 2, Path("x/pic.jpg"), None, False)
    assert numbered == [[Path("x/pic-1.jpg"), Path("x/pic-2.jpg")],
                        [Path("x/pic-3.jpg"), Path("x/pic-4.jpg")]]  # fmt: skip
    assert pipeline.output_paths(["a"], 1, Path("one.webp"), None, False) == [[Path("one.webp")]]
    assert pipeline.output_paths(["Big cat"], 4, None, out, True) == out / "big-cat-grid.png"
    assert pipeline.output_paths(["a"], 4, Path("g.jpg"), None, True) == Path("g.jpg")


def test_read_prompts_file(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("# title\n\n  cat  \n#dog\n  # indented\n猫\n", encoding="utf-8")
    assert pipeline.read_prompts_file(path) == ["cat", "猫"]
    with pytest.raises(InputError, match="no such file"):
        pipeline.read_prompts_file(tmp_path / "missing.txt")
    path.write_bytes(b"\xff\xfe bad")
    with pytest.raises(InputError, match="cannot read prompts"):
        pipeline.read_prompts_file(path)


def test_prompts_file_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("# my prompts\ncat\n", encoding="utf-8-sig")
    assert pipeline.read_prompts_file(path) == ["cat"]


def test_a_text_table_critic_needs_concepts(tmp_path):
    from imgfix.training.generators import train_generator

    with pytest.raises(InputError, match="--d-condition text: needs --condition concept"):
        train_generator("cgan", tmp_path, "x", condition="label", d_condition="text")
    with pytest.raises(InputError, match="--d-condition bogus"):
        train_generator("cgan", tmp_path, "x", condition="concept", d_condition="bogus")
