"""``prosody-vae export``: the prosody encoder as a deployable module (see prosody_vae.export)."""

from __future__ import annotations
