"""Training, by piece: ``steps`` picks the backend's two-player step (``steps_tensorflow``,
``steps_jax``); the loop, checkpoints and the trainers are in ``imgfix.train*`` for now."""
