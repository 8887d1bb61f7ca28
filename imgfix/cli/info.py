"""``imgfix info``: versions, the inference runtime and why, the devices, the zoo folder."""

from __future__ import annotations

import typer

from imgfix.cli.common import emit_json, options_of, print_mapping


def info(ctx: typer.Context) -> None:
    """Show versions, the inference runtime and why, the devices and the zoo folder."""
    from imgfix import runtime

    g = options_of(ctx)
    runtime.setup(g.device, g.seed, g.threads)
    details = runtime.device_info(g.zoo, g.settings)
    if g.json:
        emit_json(details)
    else:
        print_mapping(details)
