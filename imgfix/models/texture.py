"""Texture-transfer inpainter: a smooth fill plus high-frequency detail copied from the known
region, in the spirit of RETHINED (WACV 2025) and DeepFill's contextual attention.

A base inpainter (the context encoder) predicts the hole's low frequencies well and its texture
not at all. This model keeps it and adds what it lacks: every 8 x 8 block of the hole attends
over the blocks of the known region, matched on features of the smooth image, and takes a
blend of their *high-frequency* part (the block minus its Gaussian blur). A learned gate says
how much of it to add. The pasted detail is real texture from the same photo, so it cannot
drift into noise the way a generator's output can; what training learns is where to copy from.

Everything is convolutions, matrix products and ``space_to_depth``, so it traces with dynamic
height and width and runs on LiteRT's builtin ops.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from imgfix.models.layers import Composite, Upsample, float32_outputs, upsample2x

# Texture is copied in BLOCK x BLOCK blocks; attention runs at 1 / BLOCK resolution. Its memory
# grows as the fourth power of (crop side / BLOCK): 8 px blocks took 608 MB at 512 x 512 against
# 328 MB for the base alone, 16 px blocks take a sixteenth of the attention's share.
BLOCK = 16
DETAIL_SIGMA = 2.0  # the detail is the image minus its Gaussian blur at this sigma (pixels)


def gaussian_taps(sigma: float) -> np.ndarray:
    """A normalised 1-D Gaussian of radius ``3 * sigma``."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return (taps / taps.sum()).astype("float32")


def blur(x, sigma: float):
    """Separable Gaussian blur of ``x`` (B, H, W, C) with zero padding (see ``known_blur``)."""
    taps = gaussian_taps(sigma)
    channels = x.shape[-1]
    rows = ops.convert_to_tensor(np.tile(taps[:, None, None, None], (1, 1, channels, 1)), x.dtype)
    cols = ops.convert_to_tensor(np.tile(taps[None, :, None, None], (1, 1, channels, 1)), x.dtype)
    x = ops.depthwise_conv(x, rows, padding="same")
    return ops.depthwise_conv(x, cols, padding="same")


def known_blur(image, known, sigma: float):
    """Gaussian blur over the known pixels only (normalised convolution): a pixel next to the
    hole or the border averages its known neighbours, so no hole colour leaks into it."""
    weight = blur(known, sigma)
    return blur(image * known, sigma) / ops.maximum(weight, 1e-4)


@keras.saving.register_keras_serializable(package="imgfix")
class Detail(layers.Layer):
    """The high-frequency part of the known pixels: ``image - known_blur(image)``, zero in the
    hole. Inputs ``[image, mask]`` with ``mask == 1`` in the hole."""

    def __init__(self, sigma: float = DETAIL_SIGMA, **kwargs):
        kwargs.setdefault("dtype", "float32")  # exact under --precision mixed
        super().__init__(**kwargs)
        self.sigma = sigma

    def call(self, inputs):
        image, mask = inputs
        known = 1.0 - mask
        return (image - known_blur(image, known, self.sigma)) * known

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


@keras.saving.register_keras_serializable(package="imgfix")
class Blur(layers.Layer):
    """Gaussian blur (zero padding) at a fixed ``sigma``."""

    def __init__(self, sigma: float = DETAIL_SIGMA, **kwargs):
        kwargs.setdefault("dtype", "float32")  # exact under --precision mixed
        super().__init__(**kwargs)
        self.sigma = sigma

    def call(self, x):
        return blur(x, self.sigma)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


@keras.saving.register_keras_serializable(package="imgfix")
class SpaceToDepth(layers.Layer):
    """``block`` x ``block`` pixel blocks as channels (``ops.space_to_depth``)."""

    def __init__(self, block: int = BLOCK, **kwargs):
        kwargs.setdefault("dtype", "float32")  # exact under --precision mixed
        super().__init__(**kwargs)
        self.block = block

    def call(self, x):
        return ops.space_to_depth(x, self.block)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        shrink = [None if s is None else s // self.block for s in (h, w)]
        return (b, *shrink, c * self.block**2)

    def get_config(self):
        return {**super().get_config(), "block": self.block}


@keras.saving.register_keras_serializable(package="imgfix")
class TextureTransfer(layers.Layer):
    """Attention from the hole's blocks to the known blocks, pasting a blend of their detail.

    Inputs ``[queries (B, h, w, D), keys (B, h, w, D), detail (B, h*b, w*b, C), mask (B, h*b,
    w*b, 1)]`` where ``b`` is ``block``: one query and one key vector per block. A block is a
    source only if all of its pixels are known, so a hole block never copies itself. The score
    is the scaled dot product of query and key (unnormalised: the projections learn how sharp
    to make it, and a sharp choice is what keeps the copied texture from averaging out), minus
    a learned penalty on the squared distance between the blocks in units of ``reach`` blocks,
    so nearby texture is preferred unless a far one matches better.
    A source that many hole blocks want costs more (a learned price on the log of its use), so
    hole blocks copy different sources rather than all the same one.
    With ``coherence`` c > 0, the score mixes in, with a learned weight starting at c, the mean
    score of the 3 x 3 neighbourhoods around the two blocks (block ``b + n`` against source
    ``s + n``, DeepFill's patch matching): a source whose neighbours also match the hole
    block's neighbours wins, so neighbouring hole blocks copy neighbouring sources, a whole
    piece of texture rather than the same block over and over.
    Output: the pasted detail, (B, h*b, w*b, C).
    """

    def __init__(self, block: int = BLOCK, reach: float = 4.0, coherence: float = 0.0, **kwargs):
        kwargs.setdefault("dtype", "float32")  # exact under --precision mixed
        super().__init__(**kwargs)
        self.block = block
        self.reach = reach
        self.coherence = coherence

    def build(self, input_shape):
        # softplus(1) = 1.3 per reach^2 to start: each hole block looks near itself first, so
        # blocks around the hole copy different sources instead of all the one best match.
        self.distance = self.add_weight(
            name="distance", shape=(), initializer=keras.initializers.Constant(1.0)
        )
        # softplus(1) = 1.3: a source chosen by 10 blocks loses 3.1 in the second choice.
        self.sharing = self.add_weight(
            name="sharing", shape=(), initializer=keras.initializers.Constant(1.0)
        )
        # After the two above, so a model trained without coherence keeps its weight order.
        if self.coherence:
            c = min(max(self.coherence, 1e-3), 1 - 1e-3)
            self.coherence_logit = self.add_weight(
                name="coherence",
                shape=(),
                initializer=keras.initializers.Constant(np.log(c / (1 - c))),
            )
            # A fixed convolution that stacks each vector with its 8 neighbours (zero outside).
            depth = input_shape[0][-1]
            kernel = np.zeros((3, 3, depth, 9 * depth), np.float32)
            for n in range(9):
                kernel[n // 3, n % 3, np.arange(depth), n * depth + np.arange(depth)] = 1.0
            self.neighbourhood = kernel

    def call(self, inputs):
        queries, keys, detail, mask = inputs
        b = self.block
        values = ops.space_to_depth(detail, b)
        source = 1.0 - ops.max_pool(mask, b, strides=b, padding="valid")  # 1 = fully known
        shape = ops.shape(values)
        batch, height, width = shape[0], shape[1], shape[2]
        depth = queries.shape[-1]
        q = ops.reshape(queries, (batch, -1, depth))
        k = ops.reshape(keys, (batch, -1, depth))
        logits = ops.matmul(q, ops.transpose(k, (0, 2, 1))) / float(np.sqrt(depth))
        if self.coherence:
            stack = ops.convert_to_tensor(self.neighbourhood)
            qn = ops.reshape(ops.conv(queries, stack, padding="same"), (batch, -1, 9 * depth))
            kn = ops.reshape(ops.conv(keys, stack, padding="same"), (batch, -1, 9 * depth))
            around = ops.matmul(qn, ops.transpose(kn, (0, 2, 1))) / float(9 * np.sqrt(depth))
            c = ops.sigmoid(self.coherence_logit)
            logits = (1.0 - c) * logits + c * around
        # Squared distances between block centres, in units of `reach` blocks.
        rows = ops.cast(ops.arange(height), "float32") / self.reach
        cols = ops.cast(ops.arange(width), "float32") / self.reach
        yy = ops.reshape(ops.repeat(rows[:, None], width, axis=1), (1, -1, 1))
        xx = ops.reshape(ops.repeat(cols[None, :], height, axis=0), (1, -1, 1))
        dist2 = ops.square(yy - ops.transpose(yy, (0, 2, 1))) + ops.square(
            xx - ops.transpose(xx, (0, 2, 1))
        )
        logits = logits - ops.softplus(self.distance) * dist2
        keep = ops.reshape(source, (batch, 1, -1))
        logits = logits + (keep - 1.0) * 1e4
        # Choose twice: the second time, a source costs the log of how many hole blocks chose
        # it the first time. Without this, the hole blocks whose features look alike (those
        # deep inside a smooth fill) all copy the one best source, and its detail repeats
        # every `block` pixels as a visible lattice.
        wanting = ops.reshape(1.0 - source, (batch, -1, 1))  # the hole blocks' queries count
        usage = ops.sum(ops.softmax(logits, axis=-1) * wanting, axis=1, keepdims=True)
        logits = logits - ops.softplus(self.sharing) * ops.log(1.0 + usage)
        attention = ops.softmax(logits, axis=-1)
        pasted = ops.matmul(attention, ops.reshape(values, (batch, -1, values.shape[-1])))
        pasted = ops.reshape(pasted, shape)
        return ops.depth_to_space(pasted, b)

    def compute_output_shape(self, input_shape):
        return input_shape[2]

    def get_config(self):
        return {
            **super().get_config(),
            "block": self.block,
            "reach": self.reach,
            "coherence": self.coherence,
        }


OFFSET_STEPS = (-8, -6, -4, -3, -2, -1, 0, 1, 2, 3, 4, 6, 8)
"""Offsets (in blocks) that ``OffsetTransfer`` copies from along each axis: every block within
4, then every second one out to 8 (128 px at 16 px blocks)."""


def _shifted(padded, pad: int, dy: int, dx: int):
    """``x`` (B, H, W, C) moved by ``(dy, dx)`` pixels, ``out[i, j] = x[i + dy, j + dx]``, zero
    outside, cut from ``padded`` (``x`` zero-padded by ``pad`` on each side) with static bounds
    at both ends. Used for the small block-grid maps; the full-size detail is moved inside a
    loop instead (see ``OffsetTransfer.call``)."""

    def cut(axis_shift: int):
        end = pad - axis_shift
        return slice(pad + axis_shift, -end if end else None)

    return padded[:, cut(dy), cut(dx), :]


@keras.saving.register_keras_serializable(package="imgfix")
class OffsetTransfer(layers.Layer):
    """Copies detail by *offset*, as shift-map does, rather than by source block: each hole
    block scores a fixed set of displacements (``steps`` blocks along each axis) by the match
    of its query with the key of the block that far away, minus the learned distance penalty of
    ``TextureTransfer``; a displacement is allowed only onto a fully known block. The scores are
    averaged over each block's ``(2 coherence + 1)^2`` neighbourhood before the softmax, so
    neighbouring hole blocks take the same displacement and together copy one contiguous piece
    of texture: no block lattice and no one source repeated. The weights are upsampled
    bilinearly to 4 px cells, so a change of displacement blends rather than cuts.

    Inputs and output as ``TextureTransfer``; its weights (``distance``) carry over.
    """

    def __init__(
        self,
        block: int = BLOCK,
        reach: float = 4.0,
        steps: tuple[int, ...] = OFFSET_STEPS,
        coherence: int = 1,
        sharpness: float = 4.0,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")  # exact under --precision mixed
        super().__init__(**kwargs)
        self.block, self.reach, self.coherence = block, reach, coherence
        self.initial_sharpness = sharpness
        self.steps = tuple(steps)
        self.offsets = [(dy, dx) for dy in self.steps for dx in self.steps if dy or dx]

    def build(self, input_shape):
        self.distance = self.add_weight(
            name="distance", shape=(), initializer=keras.initializers.Constant(1.0)
        )
        # The scores are multiplied by exp(sharpness): a soft choice blends displacements and
        # averages their texture away; a sharp one copies one of them. Started at x4: from x1,
        # a run from the block model's weights gained only x1.12 in 500 steps at lr 5e-4 while
        # its gradient ratio fell from 0.31 to 0.23.
        self.sharpness = self.add_weight(
            name="sharpness",
            shape=(),
            initializer=keras.initializers.Constant(float(np.log(self.initial_sharpness))),
        )

    def call(self, inputs):
        queries, keys, detail, mask = inputs
        b, far = self.block, max(abs(s) for s in self.steps)
        depth = queries.shape[-1]
        source = 1.0 - ops.max_pool(mask, b, strides=b, padding="valid")
        grid = ((0, 0), (far, far), (far, far), (0, 0))
        keys_padded, source_padded = ops.pad(keys, grid), ops.pad(source, grid)
        price = ops.softplus(self.distance) / self.reach**2
        scores = []
        for dy, dx in self.offsets:
            k = _shifted(keys_padded, far, dy, dx)
            valid = _shifted(source_padded, far, dy, dx)
            score = ops.sum(queries * k, axis=-1, keepdims=True) / float(np.sqrt(depth))
            scores.append(score - price * float(dy * dy + dx * dx) + (valid - 1.0) * 1e4)
        scores = ops.concatenate(scores, axis=-1)
        if self.coherence:
            side = 2 * self.coherence + 1
            scores = ops.average_pool(scores, side, strides=1, padding="same")
        weights = ops.softmax(scores * ops.exp(self.sharpness), axis=-1)
        cell = 4
        for _ in range(int(np.log2(b // cell))):
            weights = upsample2x(weights)
        values = ops.space_to_depth(detail, cell)
        reach = far * (b // cell)
        values_padded = ops.pad(values, ((0, 0), (reach, reach), (reach, reach), (0, 0)))
        # One displacement at a time in a loop, so only one moved copy of the detail exists at
        # once: unrolled, LiteRT kept all 168 alive (1.45 GB at 512 x 512).
        table = ops.convert_to_tensor(
            np.array(
                [(reach + dy * b // cell, reach + dx * b // cell) for dy, dx in self.offsets],
                "int32",
            )
        )
        size = ops.shape(values)
        channels = values.shape[-1]

        def add(i, pasted):
            start = table[i]
            moved = ops.slice(
                values_padded, (0, start[0], start[1], 0), (size[0], size[1], size[2], channels)
            )
            weight = ops.expand_dims(ops.take(weights, i, axis=-1), -1)
            return pasted + weight * moved

        pasted = ops.fori_loop(0, len(self.offsets), add, ops.zeros_like(values))
        return ops.depth_to_space(pasted, cell)

    def compute_output_shape(self, input_shape):
        return input_shape[2]

    def get_config(self):
        return {
            **super().get_config(),
            "block": self.block,
            "reach": self.reach,
            "steps": list(self.steps),
            "coherence": self.coherence,
            "sharpness": self.initial_sharpness,
        }


def _conv(x, filters: int, name: str, *, strides: int = 1, kernel: int = 3):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", name=name)(x)
    return layers.LeakyReLU(0.2, name=f"{name}_act")(x)


def build_texture_head(
    filters: int = 32,
    key_dim: int = 32,
    block: int = BLOCK,
    coherence: float = 0.0,
    transfer: str = "blocks",
    name: str = "texture_head",
) -> keras.Model:
    """``[image, mask, smooth_fill] -> smooth_fill + gated detail``: the part of the texture
    inpainter that copies detail, everything but its base. Sides must be multiples of
    ``block``."""
    image = keras.Input((None, None, 3), name="image")
    mask = keras.Input((None, None, 1), name="mask")
    smooth_fill = keras.Input((None, None, 3), name="smooth_fill")
    # Match blocks on the smooth picture, where the hole (smooth fill) and the known region
    # (real photo) look alike; the detail then comes from the real photo only.
    smooth = Blur(name="smooth")(smooth_fill)
    x = layers.Concatenate(name="smooth_and_mask")([smooth, mask])
    x = layers.Rescaling(2.0, offset=-1.0, name="to_signed")(x)
    levels = int(np.log2(block))
    for i in range(levels):
        x = _conv(x, filters * 2 ** max(0, i - 1) // 2, f"match{i}", strides=2)
    x = _conv(x, filters * 2, f"match{levels}")
    # Each block is matched on its context (the convolutions) and on its own pixels, as in
    # RETHINED, so neighbouring blocks of the hole ask for different sources.
    pixels = SpaceToDepth(block, name="block_pixels")(smooth)
    described = layers.Concatenate(name="block_description")([x, pixels])
    queries = layers.Conv2D(key_dim, 1, name="queries")(described)
    keys = layers.Conv2D(key_dim, 1, name="keys")(described)
    detail = Detail(name="detail")([image, mask])
    if transfer == "offsets":
        layer = OffsetTransfer(block, name="transfer")
    else:
        layer = TextureTransfer(block, coherence=coherence, name="transfer")
    pasted = layer([queries, keys, detail, mask])
    # How much detail to add, per block, upsampled smoothly to pixels.
    gate = layers.Conv2D(1, 1, activation="sigmoid", name="gate")(x)
    for i in range(levels):
        gate = Upsample(name=f"gate_up{i}")(gate)
    textured = layers.Add(name="textured")([smooth_fill, layers.Multiply()([gate, pasted])])
    return keras.Model([image, mask, smooth_fill], float32_outputs(textured), name=name)


def build_texture_inpainter(
    base: keras.Model,
    filters: int = 32,
    key_dim: int = 32,
    train_base: bool = False,
    block: int = BLOCK,
    coherence: float = 0.0,
    transfer: str = "blocks",
    name: str = "generator",
) -> keras.Model:
    """The texture-transfer inpainter: ``base`` (an inpainter taking ``[image, mask]``, such
    as ``build_context_encoder``; frozen unless ``train_base``) then ``build_texture_head``
    (``coherence``: see ``TextureTransfer``).
    Inputs and output are those of the base; sides must be multiples of the base's and of
    ``block``.
    """
    base.trainable = train_base
    base.name = "base"  # the layer training's validation compares against
    image = keras.Input((None, None, 3), name="image")
    mask = keras.Input((None, None, 1), name="mask")
    smooth_fill = base([image, mask])
    head = build_texture_head(filters, key_dim, block, coherence, transfer)
    output = Composite(name="composite")([image, head([image, mask, smooth_fill]), mask])
    return keras.Model([image, mask], float32_outputs(output), name=name)


def rebuild_texture_inpainter(
    model: keras.Model, coherence: float | None = None, transfer: str | None = None
) -> keras.Model:
    """``model``, a texture inpainter, rebuilt by ``build_texture_inpainter`` with the same
    weights: one saved before the head was a sub-model (all its layers in one graph) gets its
    head nested; ``coherence`` turns neighbourhood matching on (its weight starts at that
    value); ``transfer="offsets"`` copies by displacement (``OffsetTransfer``). Every weight
    whose layer and name the new model shares is kept."""
    nested = any(layer.name == "texture_head" for layer in model.layers)
    old = model.get_layer("texture_head") if nested else model
    if nested and coherence is None and transfer is None:
        return model
    was = old.get_layer("transfer")
    new = build_texture_inpainter(
        model.get_layer("base"),
        filters=old.get_layer("match0").filters * 2,
        key_dim=old.get_layer("queries").filters,
        block=was.block,
        coherence=getattr(was, "coherence", 0.0) if coherence is None else coherence,
        transfer=transfer or ("offsets" if isinstance(was, OffsetTransfer) else "blocks"),
    )
    for layer in new.get_layer("texture_head").layers:
        kept = {w.name: w for w in old.get_layer(layer.name).weights} if layer.weights else {}
        for weight in layer.weights:
            if weight.name in kept:
                weight.assign(kept[weight.name])
    return new


def detail_amplitude(x, sigma: float = DETAIL_SIGMA, window: float = 4.0):
    """Local amplitude of ``x``'s detail: the root of the mean squared ``x - blur(x)`` over a
    Gaussian window, (B, H, W, 1)."""
    energy = ops.mean(ops.square(x - blur(x, sigma)), axis=-1, keepdims=True)
    return ops.sqrt(blur(energy, window) + 1e-6)


def texture_loss(truth, prediction, mask):
    """How far the hole's local detail amplitude is from the truth's, per image relative to the
    truth's, then averaged: about 1 for a smooth fill, 0 for a fill with the right amount of
    texture in the right places, whatever its phase. A pixel loss alone rewards the smooth fill
    (PSNR rewards blur); this term prices the missing texture without asking for the exact
    pixels, which no fill can know."""
    truth_amp, fill_amp = detail_amplitude(truth), detail_amplitude(prediction)
    area = ops.maximum(ops.sum(mask, axis=(1, 2, 3)), 1.0)
    miss = ops.sum(ops.abs(fill_amp - truth_amp) * mask, axis=(1, 2, 3))
    scale = ops.maximum(ops.sum(truth_amp * mask, axis=(1, 2, 3)), 1e-2 * area)
    return ops.mean(miss / scale)


@keras.saving.register_keras_serializable(package="imgfix")
class ShiftPad(layers.Layer):
    """Pads by reflection, ``before`` pixels above and left and ``total - before`` below and
    right. A mask is padded the same way, so a hole at the border stays a hole in the padding
    rather than letting its unknown pixels pass for known ones."""

    def __init__(self, before: tuple[int, int], total: int, **kwargs):
        kwargs.setdefault("dtype", "float32")  # exact under --precision mixed
        super().__init__(**kwargs)
        self.before, self.total = tuple(before), total

    def call(self, x):
        (dy, dx), t = self.before, self.total
        return ops.pad(x, ((0, 0), (dy, t - dy), (dx, t - dx), (0, 0)), mode="reflect")

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else h + self.total, None if w is None else w + self.total, c)

    def get_config(self):
        return {**super().get_config(), "before": self.before, "total": self.total}


def tent(size, offset: int, block: int):
    """Weights along one axis of ``size`` pixels, peaking at the centres of blocks that start at
    ``-offset``, zero at their edges; the tents of offsets 0 and ``block / 2`` sum to 1."""
    u = ops.mod(ops.cast(ops.arange(size), "float32") + offset, block) + 0.5
    return 1.0 - ops.abs(u - block / 2) / (block / 2)


@keras.saving.register_keras_serializable(package="imgfix")
class GridBlend(layers.Layer):
    """Blends four fills made on block grids shifted by ``(0 | block/2, 0 | block/2)`` pixels,
    each weighted by a tent that vanishes on its own block edges: a seam of one grid falls
    where another grid's block is whole, so no block lattice is left."""

    def __init__(self, block: int = BLOCK, **kwargs):
        kwargs.setdefault("dtype", "float32")  # exact under --precision mixed
        super().__init__(**kwargs)
        self.block = block

    def call(self, fills):
        shape = ops.shape(fills[0])
        half, total = self.block // 2, 0.0
        for i, fill in enumerate(fills):
            dy, dx = (i // 2) * half, (i % 2) * half
            rows = tent(shape[1], dy, self.block)[None, :, None, None]
            cols = tent(shape[2], dx, self.block)[None, None, :, None]
            total = total + fill * rows * cols
        return total

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "block": self.block}


def build_overlapped_inpainter(model: keras.Model, name: str = "generator") -> keras.Model:
    """A texture inpainter (``build_texture_inpainter``) whose head runs on four block grids
    shifted by half a block, blended by ``GridBlend``: the same weights, no retraining, the
    base run once. Sides must still be multiples of the block."""
    model = rebuild_texture_inpainter(model)
    base, head = model.get_layer("base"), model.get_layer("texture_head")
    block = head.get_layer("transfer").block
    image = keras.Input((None, None, 3), name="image")
    mask = keras.Input((None, None, 1), name="mask")
    smooth_fill = base([image, mask])
    fills = []
    for i in range(4):
        before = ((i // 2) * block // 2, (i % 2) * block // 2)
        crop = ((before[0], block - before[0]), (before[1], block - before[1]))
        shifted = [
            ShiftPad(before, block, name=f"pad_{kind}{i}")(x)
            for kind, x in (("image", image), ("mask", mask), ("fill", smooth_fill))
        ]
        fills.append(layers.Cropping2D(crop, name=f"crop{i}")(head(shifted)))
    blended = GridBlend(block, name="grid_blend")(fills)
    output = Composite(name="composite")([image, blended, mask])
    return keras.Model([image, mask], float32_outputs(output), name=name)
