"""The demo's reference styles: espeak-ng settings, one prosody factor at an extreme each.

Kept apart from :mod:`prosody_vae.demo.run` so that the command line can list them in ``--help``
without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NEW_VOICE", "STYLES", "ReferenceStyle"]

NEW_VOICE = "en-us-nyc+f5"  # one of corpus_multivoice.yaml's held-out voices


@dataclass(frozen=True)
class ReferenceStyle:
    """espeak-ng settings of one reference: pitch base (0-99), range (0-100), rate (words/min), and
    the espeak-ng voice that speaks it."""

    name: str
    description: str
    pitch: int
    pitch_range: int
    rate: int
    voice: str = "en-us"


# Extremes of the corpus's factor ranges on one axis each, the other factors at mid values; none
# falls in the held-out high-and-fast corner, so each is a kind of prosody seen in training, spoken
# on a sentence that was not.
STYLES = (
    ReferenceStyle("low_pitch", "low pitch", pitch=15, pitch_range=50, rate=200),
    ReferenceStyle("high_pitch", "high pitch", pitch=85, pitch_range=50, rate=200),
    ReferenceStyle("slow", "slow", pitch=50, pitch_range=50, rate=145),
    ReferenceStyle("fast", "fast", pitch=50, pitch_range=50, rate=270),
    ReferenceStyle("narrow_range", "narrow (flat) intonation", pitch=50, pitch_range=5, rate=200),
    ReferenceStyle("wide_range", "wide intonation", pitch=50, pitch_range=100, rate=200),
    # a voice no model here was trained on (held out of the multi-voice corpus): its low and high
    # pitch for that voice should come out low and high for the model's own voice
    ReferenceStyle(
        "new_voice_low", "low pitch, a voice never heard", pitch=15, pitch_range=50, rate=200, voice=NEW_VOICE
    ),
    ReferenceStyle(
        "new_voice_high",
        "high pitch, a voice never heard",
        pitch=85,
        pitch_range=50,
        rate=200,
        voice=NEW_VOICE,
    ),
)
