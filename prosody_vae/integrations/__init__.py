"""Adapters that put the prosody module into other toolkits' models.

Each adapter lives in its own module and imports its toolkit only there, so importing this package
needs neither torchaudio's model zoo nor Coqui TTS:

* :mod:`prosody_vae.tts.backbones.torchaudio_tacotron2`: ``torchaudio.models.Tacotron2`` as a backbone of
  :class:`~prosody_vae.tts.model.ProsodyTTS` (config switch ``backbone.kind: torchaudio_tacotron2``).
* :mod:`prosody_vae.integrations.coqui`: our :class:`~prosody_vae.prosody.vae.CapacitronVAE` in place of
  the Capacitron layer of Coqui TTS' Tacotron 2 (optional extra ``prosody_vae[coqui]``).
"""
