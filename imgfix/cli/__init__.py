"""The ``imgfix`` command line, one module per command or command group, joined in ``app``.

Only typer, rich and the standard library are imported at the top of these modules: each
command imports what it needs inside, so ``--help`` never starts TensorFlow, JAX or LiteRT.
"""

from imgfix.cli.app import app, main

__all__ = ["app", "main"]
