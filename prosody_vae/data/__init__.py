"""Data pipeline: manifests, corpus readers, validation, feature cache, splits, datasets, batching."""

from prosody_vae.data.manifest import Utterance, read_manifest, write_manifest

__all__ = ["Utterance", "read_manifest", "write_manifest"]
