"""The prompt encoder, imgfix's multimodal core: a small text tower and a small image tower
trained contrastively (CLIP-style) on a text-image corpus. The generators condition on the
frozen text tower's unit-length embedding.

Text reaches the model as integer ids made in plain Python (``data/tokens.py``), because Keras
ops have no string type. Two text towers were measured (see the prompt-encoder card):
  "ngram"  hashed character n-grams of each word, averaged: robust to unseen wording, fast
  "gru"    hashed characters read by a bidirectional GRU, as in StackGAN's char-CNN-RNN
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from imgfix.data.tokens import (  # noqa: F401  tokenize and normalize are part of this API
    CHAR_BUCKETS,
    MAX_TOKENS,
    NGRAM_BUCKETS,
    TEXT_KINDS,
    normalize,
    tokenize,
)


@keras.saving.register_keras_serializable(package="imgfix")
class MaskedMean(layers.Layer):
    """Mean over the non-padding positions (ids > 0); an all-padding row gives zeros. It reads
    the padding from the ids, so a Keras mask arriving with ``features`` is consumed here."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, features, ids, mask=None):
        weight = ops.cast(ops.greater(ids, 0), features.dtype)[..., None]
        return ops.sum(features * weight, axis=1) / ops.maximum(ops.sum(weight, axis=1), 1.0)


@keras.saving.register_keras_serializable(package="imgfix")
class UnitNorm(layers.Layer):
    """Scales each vector to unit length (a zero vector stays finite)."""

    def call(self, x):
        return x / ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + 1e-12)


def build_text_encoder(
    kind: str = "ngram", dim: int = 128, width: int = 256, table_dtype: str = "float32"
) -> keras.Model:
    """``ids -> unit embedding``: hashed n-gram bag or character bi-GRU, then an MLP.
    ``table_dtype="float16"`` stores the embedding table at half size (see ``compact``)."""
    ids = keras.Input((MAX_TOKENS[kind],), dtype="int32", name="ids")
    if kind == "ngram":
        x = layers.Embedding(NGRAM_BUCKETS, width, dtype=table_dtype, name="ngram_embedding")(ids)
    else:
        x = layers.Embedding(CHAR_BUCKETS, 64, dtype=table_dtype, name="char_embedding")(ids)
        mask = ops.greater(ids, 0)
        x = layers.Bidirectional(layers.GRU(width // 2, return_sequences=True), name="char_gru")(
            x, mask=mask
        )
    x = MaskedMean(name="mean")(ops.cast(x, "float32"), ids)
    x = layers.Dense(width, activation="gelu", name="hidden")(x)
    x = layers.Dense(dim, name="project")(x)
    return keras.Model(ids, UnitNorm(name="unit")(x), name=f"text_encoder_{kind}")


def compact(encoder: keras.Model) -> keras.Model:
    """The trained text encoder with its embedding table in float16, for the zoo: the n-gram
    table is most of the model (32,768 x 256 floats), and half precision halves the file while
    changing the output by about 1e-3 (cosine similarity to the float32 output > 0.9999)."""
    kind = encoder.name.removeprefix("text_encoder_")
    project = encoder.get_layer("project")
    hidden = encoder.get_layer("hidden")
    small = build_text_encoder(kind, project.units, hidden.units, table_dtype="float16")
    small.set_weights(encoder.get_weights())
    return small


def build_image_encoder(image_size: int = 48, dim: int = 128, filters: int = 16) -> keras.Model:
    """``image in [0, 1] -> unit embedding``: a small strided CNN."""
    image = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(2.0, offset=-1.0)(image)
    for i, mult in enumerate((1, 2, 4, 8)):
        x = layers.Conv2D(filters * mult, 3, padding="same", name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.Activation("gelu")(x)
        x = layers.MaxPooling2D(name=f"pool{i}")(x) if i < 3 else x
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(dim, name="project")(x)
    return keras.Model(image, UnitNorm(name="unit")(x), name="image_encoder")


@keras.saving.register_keras_serializable(package="imgfix")
class ContrastiveLogits(layers.Layer):
    """Cosine similarities of every text with every image, times a learned temperature."""

    def __init__(self, initial_scale: float = 1 / 0.07, max_scale: float = 100.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_scale, self.max_scale = initial_scale, max_scale

    def build(self, input_shape):
        self.log_scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(math.log(self.initial_scale)),
            name="log_scale",
        )

    def call(self, text, image):
        scale = ops.minimum(ops.exp(self.log_scale), self.max_scale)
        logits = scale * ops.matmul(text, ops.transpose(image))
        return logits, ops.transpose(logits)

    def get_config(self):
        return {
            **super().get_config(),
            "initial_scale": self.initial_scale,
            "max_scale": self.max_scale,
        }


def build_contrastive(text_encoder: keras.Model, image_encoder: keras.Model) -> keras.Model:
    """The CLIP training model: ``[ids, images] -> [text-to-image, image-to-text] logits``.
    Row i of a batch is a matching pair, so the targets are ``arange(batch)`` for both."""
    ids = keras.Input(text_encoder.input_shape[1:], dtype="int32", name="ids")
    image = keras.Input(image_encoder.input_shape[1:], name="image")
    augmented = layers.RandomTranslation(0.08, 0.08, fill_mode="constant", fill_value=1.0)(image)
    augmented = layers.RandomZoom(0.12, fill_mode="constant", fill_value=1.0)(augmented)
    logits, transposed = ContrastiveLogits(name="logits")(
        text_encoder(ids), image_encoder(augmented)
    )
    return keras.Model([ids, image], [logits, transposed], name="contrastive")
