"""Keras model builders, one file per family. Importing this package registers the custom
layers and models, which ``keras.saving.load_model`` needs to read a ``.keras`` file."""

from imgfix.models.adversarial import FeatureMatchingGAN, build_feature_critic
from imgfix.models.cgan import ConditionalGAN, build_discriminator, build_generator
from imgfix.models.context_encoder import (
    InpaintingGAN,
    build_context_encoder,
    build_patch_discriminator,
)
from imgfix.models.text import build_contrastive, build_image_encoder, build_text_encoder
from imgfix.models.vae import ConditionalVAE, build_encoder

__all__ = [
    "ConditionalGAN",
    "ConditionalVAE",
    "FeatureMatchingGAN",
    "InpaintingGAN",
    "build_discriminator",
    "build_encoder",
    "build_feature_critic",
    "build_generator",
    "build_context_encoder",
    "build_contrastive",
    "build_image_encoder",
    "build_patch_discriminator",
    "build_text_encoder",
]
