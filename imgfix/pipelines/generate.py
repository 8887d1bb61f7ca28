"""Text-to-image generation: prompts -> condition vectors -> generator -> image files.

A text-conditioned generator's card names its text encoder and that encoder's sha256, so a
retrained encoder cannot silently feed a generator vectors it never saw. Each prompt is also
compared with the concepts the generator was trained on: a prompt far from all of them gets a
warning naming the nearest ones instead of silently returning noise.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from imgfix import runtime
from imgfix.errors import ImgfixError, InputError
from imgfix.pipelines.shard import Shard

DEFAULT_GENERATOR = "emoji-cgan"
SHOWCASE_PROMPTS = (
    "cat", "dog", "猫", "pizza", "rocket", "heart", "tree", "car", "sun", "fish", "apple", "house",
)  # fmt: skip
GENERATOR_BATCH = 256
ENCODER_BATCH = 1024
MAX_IMAGES = 1024
"""More images than this in one call is almost certainly a typo (-n 10000)."""
FAR_SIMILARITY = 0.6
"""A prompt whose cosine similarity to every known concept name is below this is 'unknown'.
Measured with the shipped prompt-encoder: 0.6 flags 46% of random letter strings and 17% of
the held-out (never trained on) real names of known concepts; the encoder separates the two
only loosely, so the warning names the nearest concepts and generation goes on."""


@dataclass
class PromptMatch:
    prompt: str
    nearest: list[tuple[str, float]]
    known: bool


@dataclass
class GenerateOptions:
    n: int = 1
    seed: int = 0
    size: int = 256
    temperature: float = 1.0
    grid: bool = False


@dataclass
class Generated:
    prompt: str
    images: np.ndarray  # (n, S, S, 3) uint8 at the model's own size
    match: PromptMatch | None = None
    paths: list[Path] = field(default_factory=list)


def slug(prompt: str) -> str:
    """A file-name stem for a prompt: letters and digits of any script, joined by '-'."""
    text = unicodedata.normalize("NFKC", prompt).casefold()
    words = re.findall(r"\w+", text, flags=re.UNICODE)
    return "-".join(words)[:60].strip("-_") or "prompt"


def check_prompts(prompts: list[str]) -> list[str]:
    cleaned = [p.strip() for p in prompts]
    if not cleaned:
        raise InputError("no prompt given: use --prompt TEXT or --prompts-file FILE")
    for p in cleaned:
        if not p:
            raise InputError("empty prompt: give some text, e.g. --prompt cat")
        if not any(ch.isalnum() for ch in p):
            raise InputError(f"prompt {p!r} has no letters or digits; describe it in words")
        if len(p) > 500:
            raise InputError(f"prompt of {len(p)} characters: keep prompts under 500")
    return cleaned


def read_prompts_file(path: str | os.PathLike) -> list[str]:
    """One prompt per line; blank lines and lines starting with '#' are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is not part of a prompt
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read prompts ({exc})") from None
    prompts = [line.strip() for line in text.splitlines()]
    prompts = [p for p in prompts if p and not p.startswith("#")]
    if not prompts:
        raise InputError(f"{path}: no prompts in the file")
    return prompts


def label_index(concepts: list[str], prompt: str) -> int:
    """The label a prompt names (case, spaces and punctuation ignored); an InputError naming
    the nearest labels when it names none. Needs no TensorFlow."""
    from imgfix.data.tokens import normalize

    keys = [normalize(c) for c in concepts]
    key = normalize(prompt)
    if key in keys:
        return keys.index(key)
    import difflib

    near = difflib.get_close_matches(key, keys, n=3, cutoff=0.0)
    names = ", ".join(concepts[keys.index(k)] for k in near)
    raise InputError(f"prompt {prompt!r}: this model knows fixed labels only; nearest: {names}")


def image_format(path: Path) -> str:
    """Pillow's format name for an output path, from its suffix; InputError if unknown."""
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown image format '{path.suffix}'; use .png, .jpg or .webp")
    return fmt


class Generator:
    """A zoo generator with its condition: the text encoder, its list of labels, or its
    concepts with their caption table and concept bank (``data.concepts``).

    ``model`` and ``text_encoder`` are called with named NumPy inputs (``z`` and
    ``condition``; ``ids``), as ``runtime.LiteRTModel`` and ``runtime.KerasModel`` are, so
    generation is the same code on either runtime. A concept generator loads its text encoder
    (``load_encoder``) only for a prompt that is not one of its captions."""

    def __init__(self, model, card: dict, text_encoder=None, load_encoder=None):
        self.model, self.card, self.text_encoder = model, card, text_encoder
        self._load_encoder = load_encoder
        self.concepts: list[str] = list(card.get("concepts", []))
        self.condition: str = card.get("condition", "text")
        self.z_dim = int(card["z_dim"])
        self._bank: np.ndarray | None = None
        self._resolved: dict[str, list[tuple[int, float]]] = {}
        if self.condition == "concept":
            from imgfix.data import concepts

            self._table, self._bank = concepts.unpack(card["concept_lookup"])

    @property
    def tokenizer(self) -> str:
        return self.card["text_encoder"]["tokenizer"]

    def _embed(self, texts: list[str]) -> np.ndarray:
        from imgfix.data.tokens import tokenize

        if self.text_encoder is None and self._load_encoder is not None:
            self.text_encoder = self._load_encoder()
        ids = tokenize(texts, self.tokenizer)
        return runtime.batched(self.text_encoder, ENCODER_BATCH, ids)

    def concept_matches(self, prompts: list[str]) -> list[list[tuple[int, float]]]:
        """A concept generator's ``data.concepts.resolve`` of each prompt, remembered."""
        from imgfix.data import concepts

        new = [p for p in dict.fromkeys(prompts) if p not in self._resolved]
        if new:
            found = concepts.resolve(self._table, self._bank, new, self._embed)
            self._resolved.update(zip(new, found, strict=True))
        return [self._resolved[p] for p in prompts]

    def match(self, prompt: str, top: int = 3) -> PromptMatch:
        """The concepts nearest to ``prompt`` and whether it is near enough to any of them."""
        if self.condition == "concept":
            hits = self.concept_matches([prompt])[0][:top]
            nearest = [(self.concepts[i], s) for i, s in hits]
            return PromptMatch(prompt, nearest, nearest[0][1] >= FAR_SIMILARITY)
        if self.text_encoder is None:
            from imgfix.data.tokens import normalize

            key = normalize(prompt)
            hits = [c for c in self.concepts if normalize(c) == key]
            if hits:
                return PromptMatch(prompt, [(hits[0], 1.0)], True)
            import difflib

            close = difflib.get_close_matches(key, self.concepts, n=top, cutoff=0.0)
            return PromptMatch(prompt, [(c, 0.0) for c in close], False)
        if self._bank is None:
            self._bank = self._embed(self.concepts)
        sims = self._bank @ self._embed([prompt])[0]
        order = np.argsort(-sims)[:top]
        nearest = [(self.concepts[i], round(float(sims[i]), 3)) for i in order]
        return PromptMatch(prompt, nearest, nearest[0][1] >= FAR_SIMILARITY)

    def conditions(self, prompts: list[str]) -> np.ndarray:
        if self.condition == "concept":
            indices = [hits[0][0] for hits in self.concept_matches(prompts)]
        elif self.text_encoder is not None:
            return self._embed(prompts)
        else:
            indices = [label_index(self.concepts, p) for p in prompts]
        # One-hot rows, without building the concepts x concepts identity on every call.
        rows = np.zeros((len(indices), len(self.concepts)), np.float32)
        rows[np.arange(len(indices)), indices] = 1.0
        return rows

    def network(self, z: np.ndarray, condition: np.ndarray) -> np.ndarray:
        """The generator alone: noise and condition vectors to float images (clip to [0, 1])."""
        return runtime.batched(self.model, GENERATOR_BATCH, z, condition)

    def sample(self, prompt: str, options: GenerateOptions) -> Generated:
        """``options.n`` images of one prompt. The noise depends only on the seed, so the same
        seed and prompt give the same pixels, whatever else is generated in the same call."""
        rng = np.random.default_rng(options.seed)
        z = rng.standard_normal((options.n, self.z_dim)).astype(np.float32)
        z *= options.temperature
        cond = np.repeat(self.conditions([prompt]), options.n, axis=0)
        out = self.network(z, cond)
        images = (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return Generated(prompt, images, self.match(prompt))


def load_generator(
    name: str, zoo: str | os.PathLike | None = None, settings: runtime.Settings | None = None
) -> Generator:
    """The generator ``name`` and, for a text- or concept-conditioned one, the text encoder it
    was trained with (checked against the sha256 its card recorded; a concept generator loads it
    on first need), on the runtime ``settings`` select."""
    from imgfix import zoo as zoo_mod

    card = zoo_mod.read_card(name, zoo, kind="generator")
    encoder = load_encoder = None
    if card.get("condition", "text") in ("text", "concept"):
        wanted = card["text_encoder"]
        encoder_card = zoo_mod.read_card(wanted["name"], zoo, kind="text-encoder")
        if encoder_card.get("sha256") != wanted["sha256"]:
            raise ImgfixError(
                f"'{name}' was trained with another version of text encoder '{wanted['name']}' "
                f"(sha256 {wanted['sha256'][:12]}..., found {encoder_card.get('sha256', '')[:12]}"
                "...); retrain the generator or restore that encoder"
            )

        def load_encoder():
            return runtime.load(wanted["name"], zoo, "text-encoder", settings)[0]

        if card.get("condition", "text") == "text":
            encoder, load_encoder = load_encoder(), None
    model, card = runtime.load(name, zoo, "generator", settings)
    return Generator(model, card, encoder, load_encoder)


def upscale(image: np.ndarray, size: int) -> Image.Image:
    """For viewing: Lanczos up to ``size`` px (a no-op at the model's own size)."""
    im = Image.fromarray(image)
    if size != im.width:
        im = im.resize((size, size), Image.Resampling.LANCZOS)
    return im


GRID_PAD = 2


def check_grid(rows: int, cols: int, size: int, pad: int = GRID_PAD) -> None:
    """Refuse, before any work, a grid canvas over ``io.MAX_PIXELS`` (the limit images have)."""
    from imgfix import io

    width, height = cols * (size + pad) + pad, rows * (size + pad) + pad
    if width * height > io.MAX_PIXELS:
        raise InputError(
            f"--grid of {rows} x {cols} images at --size {size}: a {width}x{height} canvas "
            f"({width * height / 1e6:.0f} MP) is over the {io.MAX_PIXELS / 1e6:.0f} MP limit; "
            "use a smaller --size or -n, or drop --grid"
        )


def make_grid(rows: list[np.ndarray], size: int, pad: int = GRID_PAD) -> Image.Image:
    """Rows of upscaled images (one row per prompt) on a white background."""
    cols = max(len(r) for r in rows)
    grid = Image.new("RGB", (cols * (size + pad) + pad, len(rows) * (size + pad) + pad), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            grid.paste(upscale(image, size), (pad + c * (size + pad), pad + r * (size + pad)))
    return grid


def output_paths(
    prompts: list[str], n: int, output: Path | None, out_dir: Path | None, grid: bool
) -> list[list[Path]] | Path:
    """Where each image goes: one grid file, or a file per image. ``-o`` with several images
    numbers them (``cat.png`` -> ``cat-1.png``...); otherwise names come from the prompts."""
    suffix = output.suffix if output else ".png"
    if grid:
        return output or (out_dir or Path(".")) / f"{slug(prompts[0])}-grid{suffix}"
    total = len(prompts) * n
    if output and total == 1:
        return [[output]]
    paths, used = [], set()
    for p, prompt in enumerate(prompts):
        row = []
        for k in range(n):
            if output:
                path = output.with_name(f"{output.stem}-{p * n + k + 1}{suffix}")
            else:
                stem = slug(prompt) + (f"-{k + 1}" if n > 1 else "")
                path = (out_dir or Path(".")) / f"{stem}{suffix}"
                while path in used:
                    path = path.with_name(f"{path.stem}-{p + 1}{suffix}")
            used.add(path)
            row.append(path)
        paths.append(row)
    return paths


def shard_targets(targets: list[list[Path]] | Path, shard: Shard) -> list[list[Path]]:
    """The rows of ``output_paths`` that ``shard``'s prompts write, named as in the whole run;
    an InputError for a grid, one image of every prompt."""
    if isinstance(targets, Path):
        raise InputError(f"--shard {shard}: not with --grid, one image of every prompt")
    return shard.select(targets)


def save_picture(im: Image.Image, path: Path) -> None:
    from imgfix.io import atomic_path

    fmt = image_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        im.save(tmp, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))


def generate(
    generator: Generator,
    prompts: list[str],
    options: GenerateOptions,
    output: Path | None = None,
    out_dir: Path | None = None,
    on_result: Callable[[Generated], None] | None = None,
    shard: Shard | None = None,
) -> tuple[list[Generated], list[Path]]:
    """Generate ``options.n`` images per prompt and write them; returns results and paths.

    ``shard``: only its share of ``prompts`` (``pipelines.shard``). Names come from every
    prompt's place among all of them and the noise from the seed alone, so each file is the one
    the whole run writes."""
    targets = output_paths(prompts, options.n, output, out_dir, options.grid)
    if shard is not None:
        targets, prompts = shard_targets(targets, shard), shard.select(prompts)
    results = []
    for prompt in prompts:
        result = generator.sample(prompt, options)
        results.append(result)
        if on_result:
            on_result(result)
    if options.grid:
        save_picture(make_grid([r.images for r in results], options.size), targets)
        for r in results:
            r.paths = [targets]
        return results, [targets]
    written = []
    for result, row in zip(results, targets, strict=True):
        for image, path in zip(result.images, row, strict=True):
            save_picture(upscale(image, options.size), path)
            written.append(path)
        result.paths = list(row)
    return results, written
