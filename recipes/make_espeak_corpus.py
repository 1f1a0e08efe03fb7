#!/usr/bin/env python
"""Synthesise the built-in espeak-ng corpus with known prosody labels.

The same command as ``prosody-vae make-corpus`` (every option is its option): settings come from
``--config`` (a YAML file such as ``egs/espeak_prosody/conf/corpus.yaml``, read by
:mod:`prosody_vae.data.espeak.corpus_config`) and/or the flags; a flag given on the command line wins
over the file. ``--no-progress`` is kept from earlier versions of this script and means ``-q``.

    python recipes/make_espeak_corpus.py --out data/espeak_prosody/corpus --n 1200 --num-workers 2
    python recipes/make_espeak_corpus.py --out data/espeak_multivoice/corpus \
        --config egs/espeak_prosody/conf/corpus_multivoice.yaml
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from prosody_vae.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    arguments = ["-q" if argument == "--no-progress" else argument for argument in arguments]
    return cli_main(["make-corpus", *arguments])


if __name__ == "__main__":
    sys.exit(main())
