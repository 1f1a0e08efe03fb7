"""``prosody-vae evaluate``: compare synthesised speech with references (see prosody_vae.evaluation)."""

from __future__ import annotations
