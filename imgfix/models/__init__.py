"""Keras model builders, one file per family. Importing this package registers the custom
layers and models, which ``keras.saving.load_model`` needs to read a ``.keras`` file."""

from imgfix.models.context_encoder import (
    InpaintingGAN,
    build_context_encoder,
    build_patch_discriminator,
)

__all__ = ["InpaintingGAN", "build_context_encoder", "build_patch_discriminator"]
