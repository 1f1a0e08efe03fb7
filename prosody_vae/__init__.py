"""prosody_vae: variational prosody embeddings for expressive TTS."""

__version__ = "0.1.0"
