"""Training, by piece.

- ``loop``: ``fit`` up to a step count, with progress, scheduled checkpoints and clean stops.
- ``checkpoints``: a run's folder, its checkpoints, sample grids, logs and TensorBoard events.
- One module per trainer: ``inpainter``, ``generators`` (VAE and cGAN), ``prompt`` (text).
- One module per backend for the two-player (GAN) step: ``steps`` picks ``steps_tensorflow``
  or ``steps_jax``.
- ``devices``: ``--devices`` and the multi-process runtime.
"""
