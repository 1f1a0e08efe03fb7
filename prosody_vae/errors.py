"""The package's error base for failures that are not bad values or files.

User errors are ``ValueError`` subclasses (``AudioError``, ``TextError``, ``CheckpointError``, ...)
and file problems ``OSError``; failures of a run itself (training that cannot go on, espeak-ng
missing) derive from :class:`ProsodyVAEError`. The command line (:func:`prosody_vae.cli.main`) reports
all three as one line, ``error: <file or value>: <cause>``, with exit status 2.
"""

from __future__ import annotations

__all__ = ["ProsodyVAEError", "one_line"]


class ProsodyVAEError(Exception):
    """A run cannot go on; the message says why and what was kept."""


def one_line(message: object, *, limit: int = 600) -> str:
    """``message`` on one line: lines joined by spaces, shortened to about ``limit`` characters.

    Torch and other libraries put one line per tensor or frame into their messages; a person reading
    an error needs the first part, not a page.
    """
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
