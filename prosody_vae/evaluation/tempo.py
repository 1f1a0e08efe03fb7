"""Tempo: an utterance's speaking rate relative to its own sentence's neutral duration.

Phones per second (the corpus's and the evaluations' speaking rate) mixes two things: how fast the
speaker talks, and how long this sentence's phones are by nature. At one espeak-ng setting, the
built-in corpus's sentences differ in phone rate by 7-9 % (s.d. of the log; docs/transfer.md), a
large share of the 0.2 log units the drawn rates span. An *inter-text* transfer (a reference on one
sentence, the output on another) then meets that sentence effect twice, once on each side, and a
correlation of phone rates stays below 1 even for a perfect transfer: espeak-ng itself, speaking
the output's sentence with the reference's exact settings, reaches r = 0.86-0.93 on the
cross-voice pairs.

**Tempo** removes the sentence's share. Each sentence's *neutral duration* is what espeak-ng takes
to speak it at its defaults (``en-us``, pitch 50, range 50, 175 words per minute, its own tune),
trimmed as every measured utterance is (:func:`prosody_vae.audio.load_audio`); an utterance's tempo is
that neutral duration over its own trimmed duration: 1 at espeak-ng's default pace for the
sentence, 1.5 for half again as fast, whatever the voice or the synthesiser that spoke it. Both
sides of a pair are normalised by one fixed voice, so the measure depends on the sentence and the
audio's duration only; a voice's own pace is removed afterwards by the speaker normalisation of
:mod:`.speakers`, as for every quantity.

It is a measure for evaluation, not a label the model is trained on, and it needs espeak-ng (the
built-in corpus's synthesiser) on PATH. Like phones per second it needs the transcript. espeak-ng's
neutral rendering is a stand-in for a sentence's intrinsic timing: for speech that times its
sentences differently (another synthesiser, a person), it removes less of the sentence effect,
never more than phones per second would leave.
"""

from __future__ import annotations

import functools
import math
import tempfile
from pathlib import Path

from prosody_vae.audio import AudioConfig, load_audio
from prosody_vae.data.espeak.synthesis import synthesize

__all__ = ["NEUTRAL_RATE_WPM", "NEUTRAL_VOICE", "neutral_duration", "tempo"]

NEUTRAL_VOICE = "en-us"
NEUTRAL_RATE_WPM = 175  # espeak-ng's default -s


@functools.lru_cache(maxsize=4096)
def _neutral_duration(text: str, voice: str, config: AudioConfig) -> float:
    with tempfile.TemporaryDirectory() as folder:
        path = synthesize(
            text,
            pitch=50,
            pitch_range=50,
            rate=NEUTRAL_RATE_WPM,
            voice=voice,
            out_path=Path(folder) / "neutral.wav",
        )
        return load_audio(path, config).shape[0] / config.sample_rate


def neutral_duration(text: str, *, config: AudioConfig, voice: str = NEUTRAL_VOICE) -> float:
    """Seconds espeak-ng takes to speak ``text`` at its defaults in ``voice``, leading and trailing
    silence trimmed by ``config`` as every measured utterance is. Cached per (text, voice, config).

    Raises:
        ValueError: an empty text.
        prosody_vae.data.espeak.EspeakError: espeak-ng is missing or fails.
    """
    return _neutral_duration(text, voice, config)


def tempo(text: str, duration_s: float, *, config: AudioConfig, voice: str = NEUTRAL_VOICE) -> float:
    """``text``'s neutral duration over ``duration_s`` (an utterance's trimmed duration): > 1 faster
    than espeak-ng's default pace for the sentence. nan for a duration that is not positive and finite."""
    if not math.isfinite(duration_s) or duration_s <= 0:
        return math.nan
    return neutral_duration(text, config=config, voice=voice) / duration_s
