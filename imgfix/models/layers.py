"""Layers shared by the imgfix models. Everything here is written with ``keras.ops``."""

from __future__ import annotations

import keras
from keras import ops


def resize(x, height, width):
    """Bilinear resize of ``x`` (B, H, W, C) to ``height`` x ``width`` with half-pixel centres:
    the same numbers as ``ops.image.resize``, but built from gathers, so it also traces when the
    sizes are tensors known only at run time (``ops.image.resize`` checks its size in Python).
    The LiteRT export keeps height and width dynamic, and needs this. Width first, then height,
    each as ``a + (b - a) * t``: the order of TensorFlow's kernel, so the results are identical.
    """
    for axis, size in ((2, width), (1, height)):
        source = ops.shape(x)[axis]
        scale = ops.cast(source, "float32") / ops.cast(size, "float32")
        position = (ops.cast(ops.arange(size), "float32") + 0.5) * scale - 0.5
        floor = ops.floor(position)
        low = ops.cast(floor, "int32")
        t = ops.reshape(position - floor, [-1 if a == axis else 1 for a in range(4)])
        a = ops.take(x, ops.clip(low, 0, source - 1), axis=axis)
        b = ops.take(x, ops.clip(low + 1, 0, source - 1), axis=axis)
        x = a + (b - a) * ops.cast(t, x.dtype)
    return x


def upsample2x(x):
    """Bilinear 2x upsampling with half-pixel centres, identical to ``resize`` to twice the size,
    from slices, arithmetic and ``depth_to_space`` only. No op in it depends on the run-time
    size, so LiteRT plans it statically and its XNNPACK delegate runs it in the same partition
    as the convolutions around it; gathers would split the graph (and each partition keeps its
    own workspace: 370 MB instead of 200 MB at 512 x 512).

    Twice the size puts output ``2i`` at source ``i - 1/4`` and ``2i + 1`` at ``i + 1/4``, so each
    is the neighbour pair blended ``3:1``, with the edge pixel repeated at the borders.
    """

    def phases(x, axis):
        edge = [slice(None)] * 4
        first, last, inner, left, right = (list(edge) for _ in range(5))
        first[axis], last[axis] = slice(None, 1), slice(-1, None)
        padded = ops.concatenate([x[tuple(first)], x, x[tuple(last)]], axis=axis)
        left[axis], inner[axis], right[axis] = slice(None, -2), slice(1, -1), slice(2, None)
        a, c, b = padded[tuple(left)], padded[tuple(inner)], padded[tuple(right)]
        return a + (c - a) * 0.75, c + (b - c) * 0.25

    even, odd = phases(x, 2)  # width first, then height, as TensorFlow's kernel
    top_even, bottom_even = phases(even, 1)
    top_odd, bottom_odd = phases(odd, 1)
    # depth_to_space puts channel block dy * 2 + dx at (2i + dy, 2j + dx).
    stacked = ops.concatenate([top_even, top_odd, bottom_even, bottom_odd], axis=-1)
    return ops.depth_to_space(stacked, 2)


@keras.saving.register_keras_serializable(package="imgfix")
class Upsample(keras.layers.Layer):
    """Bilinear 2x upsampling: ``UpSampling2D(interpolation="bilinear")`` with the same output,
    but traceable with dynamic height and width and planned statically by LiteRT
    (``upsample2x``)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")  # exact under --precision mixed
        super().__init__(**kwargs)

    def call(self, x):
        return upsample2x(x)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, c)


@keras.saving.register_keras_serializable(package="imgfix")
class PushPullFill(keras.layers.Layer):
    """Fills a hole smoothly from its surroundings, coarse to fine, with no weights.

    Push: average the known pixels into a pyramid of ever coarser levels, so a coarse cell is
    known as soon as any pixel under it is. Pull: walk back up, taking each hole pixel from the
    upsampled coarser level, then take ``smoothing`` Jacobi steps towards the harmonic (membrane)
    fill at that level. Big holes are thus filled at a coarse scale first, which is what the
    refinement network starts from; ``levels`` halvings reach 1 px at 2**levels px. On the
    validation photos, 16 smoothing steps gained 0.5-1.3 dB over none (and beat OpenCV's Telea).

    Inputs: ``[image (B,H,W,C), mask (B,H,W,1)]`` with ``mask == 1`` in the hole; a model that
    only takes sides that are multiples of some power of two passes it as ``multiple``, which
    lets the LiteRT export plan the finest levels statically (``_upsample``).
    Output: the image with its hole filled; known pixels pass through unchanged.
    """

    def __init__(self, levels: int = 8, smoothing: int = 16, multiple: int = 1, **kwargs):
        kwargs.setdefault("dtype", "float32")  # exact under --precision mixed
        super().__init__(**kwargs)
        self.levels = levels
        self.smoothing = smoothing
        self.multiple = multiple

    def _smooth(self, filled, x, w):
        # Jacobi steps towards the harmonic fill at this scale: each hole pixel becomes the
        # mean of its neighbours, known pixels stay. The coarser level already fixed the low
        # frequencies, so a few steps per level suffice (multigrid).
        for _ in range(self.smoothing):
            filled = x * w + ops.average_pool(filled, 3, strides=1, padding="same") * (1.0 - w)
        return filled

    def call(self, inputs):
        image, mask = inputs
        known = 1.0 - mask
        pyramid = [(image, known)]
        x, w = image, known
        for _ in range(self.levels):
            wsum = ops.average_pool(w, 2, strides=2, padding="same")
            xsum = ops.average_pool(x * w, 2, strides=2, padding="same")
            x = xsum / ops.maximum(wsum, 1e-6)
            w = ops.cast(wsum > 0, x.dtype)
            pyramid.append((x, w))
        # Whatever is still unknown at the top takes the mean of the known pixels.
        total = ops.sum(w, axis=(1, 2), keepdims=True)
        mean = ops.sum(x * w, axis=(1, 2), keepdims=True) / ops.maximum(total, 1e-6)
        filled = self._smooth(x * w + mean * (1.0 - w), x, w)
        for level in reversed(range(self.levels)):
            x, w = pyramid[level]
            filled = self._smooth(x * w + self._upsample(filled, x, level) * (1.0 - w), x, w)
        return filled

    def _upsample(self, coarse, like, level: int):
        """``coarse`` bilinearly resized to ``like``'s size. Where that size is even it is exactly
        twice ``coarse``'s, and the static-shape ``upsample2x`` gives the same numbers as
        ``resize``: known from the static shape, or guaranteed by ``multiple`` for the finest
        levels when height and width are known only at run time (the LiteRT export)."""
        height, width = like.shape[1], like.shape[2]
        if height is not None and width is not None:
            even = height % 2 == 0 and width % 2 == 0
        else:
            even = self.multiple % (2 ** (level + 1)) == 0
        if even:
            return upsample2x(coarse)
        shape = ops.shape(like)
        return resize(coarse, shape[1], shape[2])

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {
            **super().get_config(),
            "levels": self.levels,
            "smoothing": self.smoothing,
            "multiple": self.multiple,
        }


@keras.saving.register_keras_serializable(package="imgfix")
class Composite(keras.layers.Layer):
    """Keeps known pixels and takes the prediction only in the hole: ``x*(1-m) + y*m``."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")  # exact under --precision mixed
        super().__init__(**kwargs)

    def call(self, inputs):
        image, prediction, mask = inputs
        return image * (1.0 - mask) + ops.clip(prediction, 0.0, 1.0) * mask

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="imgfix")
class FiLM(keras.layers.Layer):
    """Feature-wise modulation by a condition: ``x * (1 + gamma(c)) + beta(c)``.

    Applied after every generator block, so the prompt steers each scale instead of only the
    input (with ~2 images per concept, a GAN conditioned at its input alone learns the colour
    of a concept and takes the shape from the noise). Zero-initialised: it starts as identity.
    """

    def build(self, input_shape):
        x_shape, c_shape = input_shape
        self.project = keras.layers.Dense(
            2 * x_shape[-1], kernel_initializer="zeros", name=f"{self.name}_project"
        )
        self.project.build(c_shape)

    def call(self, inputs):
        x, condition = inputs
        gamma, beta = ops.split(self.project(condition), 2, axis=-1)
        return x * (1.0 + gamma[:, None, None, :]) + beta[:, None, None, :]


def diff_augment(images, seed_generator, translation: float = 0.125, cutout: float = 0.5):
    """DiffAugment's translation and cutout (Zhao et al. 2020), differentiable and per sample.

    Both the real and the generated batch go through it before the discriminator, which keeps a
    discriminator trained on a few thousand images from memorising them. Translation repeats
    the edge pixels (white for the emoji corpus); cutout greys out a random square.
    """
    batch = ops.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    shift = int(height * translation + 0.5)
    offsets = keras.random.randint(
        (batch, 2), -shift, shift + 1, dtype="int32", seed=seed_generator
    )
    rows = ops.clip(ops.arange(height)[None, :] + offsets[:, :1], 0, height - 1)
    cols = ops.clip(ops.arange(width)[None, :] + offsets[:, 1:], 0, width - 1)
    channels = images.shape[3]
    images = ops.take_along_axis(
        images, ops.broadcast_to(rows[:, :, None, None], (batch, height, width, channels)), 1
    )
    images = ops.take_along_axis(
        images, ops.broadcast_to(cols[:, None, :, None], (batch, height, width, channels)), 2
    )
    size = int(height * cutout + 0.5)
    if size < 2:
        return images
    centre = keras.random.randint((batch, 2), 0, height, dtype="int32", seed=seed_generator)
    inside_rows = ops.abs(ops.arange(height)[None, :] - centre[:, :1]) < size // 2
    inside_cols = ops.abs(ops.arange(width)[None, :] - centre[:, 1:]) < size // 2
    hole = ops.logical_and(inside_rows[:, :, None], inside_cols[:, None, :])[..., None]
    return ops.where(hole, ops.cast(0.5, images.dtype), images)


def float32_outputs(outputs):
    """A model's outputs in float32 under a mixed-precision policy (``--precision mixed``), as
    Keras's mixed-precision guide asks of the last layer, so that the losses and the paste-back
    stay in float32; the outputs themselves under float32 (the model gains no layer)."""
    if keras.config.dtype_policy().compute_dtype == "float32":
        return outputs
    many = isinstance(outputs, list | tuple)
    cast = [
        keras.layers.Activation("linear", dtype="float32", name=f"float32_{i}")(x)
        for i, x in enumerate(outputs if many else [outputs])
    ]
    return cast if many else cast[0]
