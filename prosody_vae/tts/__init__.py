"""The TTS system around the prosody module: backbones, the composed model and its one factory.

:func:`~prosody_vae.tts.model.build_model` is the one place where configuration objects meet modules.
"""
