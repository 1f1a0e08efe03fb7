"""``prosody-vae``: a thin command-line front end over the library.

Each subcommand lives in its own module of this package and registers itself with :func:`command`:
it adds its arguments to a sub-parser and names the function that runs it. A handler parses nothing
itself; it calls library functions and prints a short result. :func:`main` is the one place that
turns errors into exit statuses: a user error (a bad file, value, option or checkpoint: a
``ValueError``), a file-system error (``OSError``: permissions, a folder where a file belongs, no
space left) and a run that cannot go on (:class:`prosody_vae.errors.ProsodyVAEError`) print one line
``error: <file or value>: <cause>`` and exit with status 2; no traceback (set ``PROSODY_VAE_DEBUG=1``
to see one). Commands over many items exit with status 1 when some were skipped (``N of M ...,
K skipped``; ``--keep-going`` makes that 0), and an interrupted command with 128 + the signal number
(130 for Ctrl-C, 143 for SIGTERM).

Results go to stdout; notes, notices and progress bars to stderr. ``-v`` adds detail, ``-q`` keeps
only warnings and errors and hides the progress bars (bars also stay hidden when stderr is not a
terminal). Building the parser imports no torch, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from prosody_vae.cli._registry import COMMANDS, HelpFormatter, command, log, set_threads
from prosody_vae.errors import ProsodyVAEError, one_line

__all__ = ["command", "describe_error", "main", "set_threads"]

# Importing a module registers its subcommands, in this order in ``--help``.
_MODULES = ("data", "train", "vocoder", "synthesis", "evaluate", "export")


def _verbosity_options(p: argparse.ArgumentParser, *, top: bool) -> None:
    # Accepted before and after the subcommand; a sub-parser's copy sets the value only when given
    # (SUPPRESS), so that it does not overwrite what was given before the subcommand.
    default = {} if top else {"default": argparse.SUPPRESS}
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        help="more detail on stderr (the options, what is loaded, timings)",
        **({"default": 0} if top else default),
    )
    group.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="only warnings and errors on stderr; no progress bars",
        **default,
    )


def _parser() -> argparse.ArgumentParser:
    import importlib

    from prosody_vae import __version__

    for name in _MODULES:
        importlib.import_module(f"prosody_vae.cli.{name}")
    parser = argparse.ArgumentParser(
        prog="prosody-vae",
        description=__doc__.splitlines()[0].replace("``", ""),
        epilog="Run 'prosody-vae COMMAND --help' for a command's options. Without --checkpoint, "
        "the synthesis commands use the model shipped in the package.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _verbosity_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    for spec in COMMANDS.values():
        p = sub.add_parser(spec.name, help=spec.help, description=spec.help, formatter_class=HelpFormatter)
        spec.add_arguments(p)
        _verbosity_options(p, top=False)
    return parser


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (tests capture it), as ``message`` for
    information and ``warning: message`` / ``debug: message`` for the other levels."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno != logging.INFO:
            message = f"{record.levelname.lower()}: {message}"
        print(message, file=sys.stderr)


def _configure_logging(verbose: int, quiet: bool) -> None:
    logger = logging.getLogger("prosody_vae")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)  # main() may run several times in one process
    logger.addHandler(_StderrHandler())
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def describe_error(error: BaseException) -> str:
    """The one line ``main`` prints for an error it reports: ``<file>: <cause>`` when the error names
    a file (as ``OSError`` does, in its own fields), else the message, on one line."""
    if isinstance(error, OSError) and error.filename is not None:
        cause = error.strerror or one_line(error)
        target = f" -> {error.filename2}" if error.filename2 is not None else ""
        return one_line(f"{error.filename}{target}: {cause}")
    return one_line(error) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose or 0, args.quiet)
    log.debug(f"prosody-vae {args.command}: {vars(args)}")
    try:
        if getattr(args, "allocator", None) is not None:  # training commands: may restart this process
            from prosody_vae.training.allocator import use_allocator

            # only a command typed as such (its arguments are sys.argv's) can be started again
            restart = argv is None and args.command in sys.argv[1:]
            args.allocator = use_allocator(args.allocator, restart=restart)
        return COMMANDS[args.command].run(args)
    except (ValueError, OSError, ProsodyVAEError) as error:
        if os.environ.get("PROSODY_VAE_DEBUG"):
            raise
        print(f"error: {describe_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
