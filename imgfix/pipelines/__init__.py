"""Pipelines: what a CLI command does to files, kept apart from the CLI so tests can drive it.

Each pipeline lives in its own module and is imported directly (``imgfix.pipelines.inpaint``),
so importing one never pulls in another pipeline's models.
"""
