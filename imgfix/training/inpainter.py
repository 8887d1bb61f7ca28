"""``imgfix train inpainter``: the context encoder (or a texture model around one) against a
critic, on random crops of photos with random holes; validation on held-out photos."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from imgfix.errors import InputError
from imgfix.training.checkpoints import (
    Checkpointer,
    load_checkpoint,
    prepare_run,
    previous_card,
)
from imgfix.training.devices import predict
from imgfix.training.loop import StopFlag, fit_with_checkpoints, run_summary


def sample_grid(images: np.ndarray, masks: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Rows of (masked input, mask, output, truth) as one ``uint8`` image."""
    rows = []
    for image, mask, output in zip(images, masks, outputs, strict=True):
        masked = image * (1 - mask) + 0.5 * mask
        rows.append(np.concatenate([masked, np.repeat(mask, 3, -1), output, image], axis=1))
    return (np.clip(np.concatenate(rows, axis=0), 0, 1) * 255 + 0.5).astype(np.uint8)


def hole_psnr_np(truth: np.ndarray, prediction: np.ndarray, masks: np.ndarray) -> float:
    """PSNR in dB over the hole pixels of a whole set."""
    err = ((truth - prediction) ** 2 * masks).sum() / max(3.0 * masks.sum(), 1.0)
    return float(10 * np.log10(1.0 / max(err, 1e-10)))


def inpainter_validation(generator, val: tuple[np.ndarray, np.ndarray]):
    """Hole PSNR of the network and of what it builds on (the coarse fill of a context encoder,
    the base inpainter of a texture model), the texture figures of ``imgfix.metrics.hole_texture``
    (as the benchmark reports them), plus a sample grid."""
    from imgfix import metrics

    names = {layer.name for layer in generator.layers}
    reference = "base" if "base" in names else "coarse_fill"

    def validate() -> tuple[dict, np.ndarray]:
        images, masks = val
        outputs = predict(generator, [images, masks], 16)
        before = np.asarray(generator.get_layer(reference)([images, masks]))
        texture = metrics.hole_texture(images, outputs, masks)
        figures = {
            "val_hole_psnr": round(hole_psnr_np(images, outputs, masks), 3),
            f"val_{reference}_psnr": round(hole_psnr_np(images, before, masks), 3),
            "val_hole_l1": round(
                float((np.abs(images - outputs) * masks).sum() / (3 * masks.sum())), 5
            ),
            **{f"val_{k}": round(v, 4) for k, v in texture.items()},
        }
        return figures, sample_grid(images[:8], masks[:8], outputs[:8])

    return validate


ARCHITECTURES = ("context", "texture")
CRITICS = ("patch", "lama")


def build_inpainting_trainer(
    filters: int = 32,
    lr: float = 2e-4,
    adv_weight: float = 0.001,
    rec_loss: str = "psnr",
    arch: str = "context",
    base=None,
    texture_weight: float = 0.0,
    critic: str = "patch",
    fm_weight: float = 100.0,
    r1_gamma: float = 0.001,
    transfer: str = "blocks",
):
    """The compiled training model a new ``train_inpainter`` run starts from (the benchmark
    times this same model). ``arch`` ``texture`` wraps ``base``, a trained context encoder,
    in ``build_texture_inpainter`` (see ``imgfix.models.texture``); ``arch`` ``context`` with a
    ``base`` starts from the base's weights. ``critic`` ``patch`` is the hinge PatchGAN that sees
    the mask; ``lama`` is LaMa's recipe (``imgfix.models.adversarial``), with ``fm_weight`` and
    ``r1_gamma``."""
    import keras

    from imgfix.models.adversarial import FeatureMatchingGAN, build_feature_critic
    from imgfix.models.context_encoder import (
        InpaintingGAN,
        build_context_encoder,
        build_patch_discriminator,
    )
    from imgfix.models.texture import build_texture_inpainter, rebuild_texture_inpainter

    if arch not in ARCHITECTURES:
        raise InputError(f"--arch {arch}: must be one of {', '.join(ARCHITECTURES)}")
    if critic not in CRITICS:
        raise InputError(f"--critic {critic}: must be one of {', '.join(CRITICS)}")
    if arch == "texture":
        if base is None:
            raise InputError("--arch texture needs a trained base inpainter (--base)")
        if arch_of(base) == "texture":  # go on from a texture model, its base frozen
            generator = rebuild_texture_inpainter(base, transfer=transfer)
        else:
            generator = build_texture_inpainter(base, filters=filters, transfer=transfer)
    elif base is not None:
        if arch_of(base) != "context":
            raise InputError("--arch context --base: the base must be a context encoder")
        generator, base.trainable = base, True
    else:
        generator = build_context_encoder(filters=filters)
    optimizers = {
        "g_optimizer": keras.optimizers.Adam(lr, beta_1=0.5),
        "d_optimizer": keras.optimizers.Adam(lr, beta_1=0.5),
        "adv_weight": adv_weight,
        "rec_loss": rec_loss,
        "texture_weight": texture_weight,
    }
    if critic == "lama":
        trainer = FeatureMatchingGAN(
            generator,
            build_feature_critic(filters=filters),
            fm_weight=fm_weight,
            r1_gamma=r1_gamma,
            **optimizers,
        )
    else:
        trainer = InpaintingGAN(generator, build_patch_discriminator(filters=filters), **optimizers)
    trainer.compile()
    return trainer


DESCRIPTIONS = {
    "context": "Context encoder: a coarse push-pull fill refined by a U-Net",
    "texture": "Texture transfer: a context encoder's fill plus detail copied by attention "
    "from the known region",
}


def arch_of(generator) -> str:
    """``texture`` for a texture-transfer generator, else ``context``."""
    names = {layer.name for layer in generator.layers}
    return "texture" if names & {"transfer", "texture_head"} else "context"


def transfer_of(generator) -> str:
    """How a texture generator copies detail: ``offsets`` (``OffsetTransfer``) or ``blocks``."""
    from imgfix.models.texture import OffsetTransfer

    names = {layer.name: layer for layer in generator.layers}
    head = names.get("texture_head", generator)
    return "offsets" if isinstance(head.get_layer("transfer"), OffsetTransfer) else "blocks"


def train_inpainter(
    data: Path,
    name: str,
    *,
    image_size: int = 128,
    epochs: int = 1,
    steps: int = 1000,
    batch_size: int = 16,
    resume: bool = False,
    logdir: Path | None = None,
    zoo: Path | None = None,
    seed: int = 0,
    command: str = "",
    quiet: bool = False,
    checkpoint_minutes: float = 5.0,
    lr: float | None = None,
    adv_weight: float = 0.001,
    rec_loss: str = "psnr",
    filters: int = 32,
    arch: str = "context",
    base: str | None = None,
    texture_weight: float | None = None,
    critic: str = "patch",
    fm_weight: float = 100.0,
    r1_gamma: float = 0.001,
    transfer: str = "blocks",
) -> dict:
    """Train (or resume) an inpainter and export it to the zoo as ``name``: a context encoder,
    or (``arch="texture"``) a texture-transfer model around the zoo inpainter ``base``.

    The run is ``epochs`` x ``steps`` optimizer steps; a checkpoint is written at the end of each
    epoch, every ``checkpoint_minutes``, and when the run is stopped. A resumed run keeps its
    settings, except ``lr`` and ``texture_weight`` when they are given: a campaign lowers its
    learning rate, or moves along the perception-distortion trade-off, from the next step on.
    """
    import keras

    from imgfix import zoo as zoo_mod
    from imgfix.data.inpainting import (
        MASK_BANK,
        inpainting_dataset,
        list_images,
        load_photos,
        split_holdout,
        validation_set,
    )
    from imgfix.models.context_encoder import MULTIPLE

    zoo_mod.check_name(name)
    if image_size % MULTIPLE:
        raise InputError(f"--image-size {image_size}: must be a multiple of {MULTIPLE}")
    if min(epochs, steps, batch_size) < 1:
        raise InputError("--epochs, --steps and --batch-size must be at least 1")
    logdir, checkpoint = prepare_run(name, logdir, resume)

    # From here on Ctrl-C and SIGTERM only ask for a stop: even a stop during set-up ends in a
    # checkpoint rather than a lost run.
    with StopFlag() as stop:
        files = list_images(Path(data))
        train_files, val_files = split_holdout(files)
        val = validation_set(load_photos(val_files, image_size), image_size)
        if resume and checkpoint.exists():
            trainer = load_checkpoint(checkpoint)
            trainer.compile()  # InpaintingGAN.compile takes no arguments to restore
            if lr is not None:
                trainer.g_optimizer.learning_rate.assign(lr)
                trainer.d_optimizer.learning_rate.assign(lr)
            if texture_weight is not None:
                trainer.texture_weight = texture_weight
        else:
            base_model = None
            if arch == "texture" or base:
                base_model, _ = zoo_mod.load_model(base or "photo-inpainter", zoo, "inpainter")
            trainer = build_inpainting_trainer(
                filters,
                lr or 2e-4,
                adv_weight,
                rec_loss,
                arch,
                base_model,
                texture_weight or 0.0,
                critic,
                fm_weight,
                r1_gamma,
                transfer,
            )
        # A resumed run draws new crops rather than replaying the ones it started with.
        total, start_step, started = epochs * steps, trainer.step, time.time()
        # No more distinct masks than the run will draw (each is also flipped and rotated).
        bank = min(MASK_BANK, max(64, (total - start_step) * batch_size))
        dataset = inpainting_dataset(
            load_photos(train_files, image_size),
            image_size,
            batch_size,
            seed + start_step,
            mask_bank=bank,
        )
        old_card = previous_card(name, zoo, resume)
        previous_seconds = old_card.get("training", {}).get("seconds", 0.0)

        def export(step: int, figures: dict) -> None:
            card = {
                "name": name,
                "kind": "inpainter",
                "description": DESCRIPTIONS[arch_of(trainer.generator)],
                "image_size": image_size,
                "multiple": MULTIPLE,
                "work_size": 512,
                "params": int(trainer.generator.count_params()),
                "data": {
                    "path": str(data),
                    "train_images": len(train_files),
                    "validation_images": len(val_files),
                },
                "training_command": command,
                "steps": step,
                "training": {
                    "batch_size": batch_size,
                    "lr": float(keras.ops.convert_to_numpy(trainer.g_optimizer.learning_rate)),
                    "adv_weight": trainer.adv_weight,
                    "rec_loss": trainer.rec_loss,
                    "texture_weight": trainer.texture_weight,
                    **(
                        {
                            "critic": "lama",
                            "fm_weight": trainer.fm_weight,
                            "r1_gamma": trainer.r1_gamma,
                        }
                        if hasattr(trainer, "fm_weight")
                        else {"critic": "patch"}
                    ),
                    **(
                        {"transfer": transfer_of(trainer.generator)}
                        if arch_of(trainer.generator) == "texture"
                        else {}
                    ),
                    "seconds": round(previous_seconds + time.time() - started, 1),
                },
                # Figures measured by the benchmark stay until it measures again.
                "metrics": {**old_card.get("metrics", {}), "validation": figures},
            }
            zoo_mod.save_model(trainer.generator, name, card, zoo)

        checkpointer = Checkpointer(
            trainer, logdir, inpainter_validation(trainer.generator, val), export
        )
        entry = fit_with_checkpoints(
            trainer,
            dataset,
            total,
            checkpointer,
            every_steps=steps,
            minutes=checkpoint_minutes,
            stop=stop,
            quiet=quiet,
        )
    return run_summary(name, trainer, start_step, started, stop, checkpoint, entry)
