"""``prosody-vae``: a thin command-line front end over the library.

Each subcommand lives in its own module of this package and registers itself with :func:`command`:
it adds its arguments to a sub-parser and names the function that runs it. A handler parses nothing
itself; it calls library functions and prints a short result. User errors (bad files, bad options,
unusable checkpoints) print one line ``error: ...`` and exit with status 2; no traceback (set
``PROSODY_VAE_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from prosody_vae.cli._registry import COMMANDS, command, set_threads

__all__ = ["command", "main", "set_threads"]

# Importing a module registers its subcommands, in this order in ``--help``.
_MODULES = ("data", "train", "synthesis", "evaluate", "export")


def _parser() -> argparse.ArgumentParser:
    import importlib

    for name in _MODULES:
        importlib.import_module(f"prosody_vae.cli.{name}")
    parser = argparse.ArgumentParser(
        prog="prosody-vae", description=__doc__.splitlines()[0].replace("``", "")
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for spec in COMMANDS.values():
        spec.add_arguments(sub.add_parser(spec.name, help=spec.help, description=spec.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args)
    except (ValueError, FileNotFoundError) as error:
        if os.environ.get("PROSODY_VAE_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
