"""Training, by piece: ``steps`` picks the backend's two-player (GAN) step
(``steps_tensorflow``, ``steps_jax``); ``devices`` is ``--devices`` (JAX data parallelism). The
loop, checkpoints and the trainers are in ``imgfix.train*`` for now."""
