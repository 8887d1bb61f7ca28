"""Can a fresh critic tell a frozen generator's images from real ones? (issue 12, part 1)

    python -m bench.critic_probe --generator emoji-cgan [--steps 300] [--filters 32]
        [--mismatch 0.5] [--augment translation] [--r1 0.01] [--out runs/critic-probe.jsonl]

The shipped VAE-GAN's critic never learned (docs/generation.md): its hinge loss sat near 2.0
and it scored real and generated images alike. Two causes fit that curve: a critic too weak to
see what separates the generator's images from real ones, or a game in which the generator,
started from a trained VAE, removes each feature the critic finds before the critic settles on
it. This probe separates the two: the generator is frozen (learning rate 0; its images never
change), and only the critic trains, with the options of ``imgfix train cgan``. A critic that
can see the difference reaches high accuracy here; one that cannot stays at chance.

It logs the critic's mean scores and accuracies every ``--every`` steps, one JSON line each,
with ``g_moved``, the largest change of a generator weight so far (0: the generator is frozen).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def probe(
    generator: str,
    data: Path,
    steps: int,
    batch_size: int = 32,
    filters: int = 32,
    mismatch: float = 0.5,
    augment: str = "translation",
    r1_gamma: float = 0.01,
    d_lr: float = 4e-4,
    zoo: Path | None = None,
    every: int = 50,
    seed: int = 0,
):
    """Yield the critic's figures (mean over the last ``every`` steps) as it trains."""
    import keras

    from imgfix import zoo as zoo_mod
    from imgfix.models.cgan import ConditionalGAN, build_discriminator
    from imgfix.training.generators import condition_corpus, conditioned_dataset

    model, card = zoo_mod.load_model(generator, zoo, kind="generator")
    size, cond_dim = model.output_shape[1], model.input_shape[1][-1]
    encoder = card.get("text_encoder") or {"name": "prompt-encoder"}
    cond = condition_corpus(data, size, card.get("condition", "text"), encoder["name"], zoo)
    keras.utils.set_random_seed(seed)
    gan = ConditionalGAN(
        model,
        build_discriminator(size, cond_dim, filters, pooling="sum"),
        g_optimizer=keras.optimizers.Adam(0.0, beta_1=0.0, beta_2=0.99),  # frozen
        d_optimizer=keras.optimizers.Adam(d_lr, beta_1=0.0, beta_2=0.99),
        mismatch_weight=mismatch,
        r1_gamma=r1_gamma,
        augment=augment,
        seed=seed,
    )
    gan.compile()
    batches = conditioned_dataset(cond, batch_size, seed)
    start = [np.array(w) for w in model.trainable_weights]
    done = 0
    while done < steps:
        history = gan.fit(batches, steps_per_epoch=min(every, steps - done), verbose=0)
        done += min(every, steps - done)
        keys = ("d_loss", "d_real", "d_fake", "d_mismatch")
        keys += ("d_real_acc", "d_fake_acc", "d_mismatch_acc")
        row = {"step": done, **{k: round(float(history.history[k][-1]), 4) for k in keys}}
        # The largest change of a trainable generator weight so far: 0 while it is frozen.
        now = zip(model.trainable_weights, start, strict=True)
        moved = max(float(np.abs(np.array(w) - w0).max()) for w, w0 in now)
        yield {**row, "g_moved": moved}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", default="emoji-cgan")
    parser.add_argument("--data", type=Path, default=Path("data/emoji"))
    parser.add_argument("--zoo", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--filters", type=int, default=32)
    parser.add_argument("--mismatch", type=float, default=0.5)
    parser.add_argument("--augment", default="translation")
    parser.add_argument("--r1", type=float, default=0.01)
    parser.add_argument("--d-lr", type=float, default=4e-4)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k not in ("out", "generator", "data")}
    for row in probe(
        args.generator, args.data, args.steps, args.batch_size, args.filters, args.mismatch,
        args.augment, args.r1, args.d_lr, args.zoo, args.every,
    ):  # fmt: skip
        line = json.dumps({"generator": args.generator, **options, **row}, default=str)
        print(line, flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
