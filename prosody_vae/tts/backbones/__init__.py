"""Text-to-mel backbones with a conditioning input."""

from prosody_vae.tts.backbones.attention import DynamicConvolutionAttention, LocationSensitiveAttention
from prosody_vae.tts.backbones.tacotron2 import DecoderState, Tacotron2, TacotronInference, TacotronOutput

__all__ = [
    "DecoderState",
    "DynamicConvolutionAttention",
    "LocationSensitiveAttention",
    "Tacotron2",
    "TacotronInference",
    "TacotronOutput",
]
