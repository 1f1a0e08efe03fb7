"""``python -m prosody_vae.cli``: the same as the ``prosody-vae`` command (handy with torchrun)."""

import sys

from prosody_vae.cli import main

sys.exit(main())
