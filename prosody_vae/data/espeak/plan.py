"""What the built-in corpus contains: its voices, factor ranges, held-out material and per-utterance plan.

Each utterance gets a sentence from :mod:`prosody_vae.data.espeak.grammar` and prosody factors drawn
uniformly from ``FACTOR_BOUNDS``. Two kinds of material are kept out of training and flagged in the
manifest labels (1.0 = held out):

* ``held_out_text``: the utterance speaks one of the fixed held-out sentences (inter-text evaluation);
* ``held_out_prosody``: its factors fall in the ``HELD_OUT_PROSODY`` corner of the factor grid
  (out-of-range evaluation).

The plan is a pure function of its settings, which :func:`check_settings` compares with the
``corpus.json`` of an existing folder before any of its wavs is reused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prosody_vae.data.espeak.grammar import (
    HELD_OUT_SEED,
    NUM_HELD_OUT,
    generate_sentences,
    held_out_sentences,
)

__all__ = [
    "FACTOR_BOUNDS",
    "HELD_OUT_PROSODY",
    "PLAN_KEYS",
    "VOICES",
    "UtterancePlan",
    "check_settings",
    "corpus_settings",
    "plan_corpus",
]

# Voices of the multi-speaker option: espeak-ng's US English and three variants (each changes the
# pitch base and the formants, so the "speaker" is audible as well as labelled).
VOICES = ("en-us", "en-us+m3", "en-us+f3", "en-us+f4")
# Inclusive bounds of the uniformly drawn integer factors. Rates stop at 280 wpm so that a 12-word
# sentence stays short and well below 450 wpm, where espeak-ng switches to a time-stretching
# speed-up whose output loses its F0 track.
FACTOR_BOUNDS = {"pitch": (10, 90), "pitch_range": (0, 100), "rate": (140, 280)}
# Utterances whose factors fall inside *all* of these bands are flagged held_out_prosody: a corner
# (high and fast) whose marginal ranges are seen in training but never jointly. About 5% of draws.
HELD_OUT_PROSODY = {"pitch": (76, 90), "rate": (250, 280)}
_FORMAT = 1
# Settings that decide what each utterance is: a folder built with other values is refused, since
# its existing wavs would otherwise be reused under the wrong labels. n_utterances is not among
# them because the plan for n is a prefix of the plan for any larger n.
PLAN_KEYS = (
    "format",
    "seed",
    "multi_speaker",
    "held_out_fraction",
    "voices",
    "factor_bounds",
    "held_out_prosody",
    "held_out_seed",
    "num_held_out_sentences",
    "espeak_version",
)


@dataclass(frozen=True)
class UtterancePlan:
    """What one utterance is: its text and the prosody factors it is spoken with."""

    id: str
    text: str
    voice: str
    pitch: int
    pitch_range: int
    rate: int
    voice_index: int
    held_out_text: bool
    held_out_prosody: bool

    def labels(self) -> dict[str, float]:
        """The drawn factors and held-out flags (1.0 = held out) as manifest labels."""
        return {
            "pitch": float(self.pitch),
            "pitch_range": float(self.pitch_range),
            "rate": float(self.rate),
            "voice_index": float(self.voice_index),
            "held_out_text": float(self.held_out_text),
            "held_out_prosody": float(self.held_out_prosody),
        }


def plan_corpus(n: int, *, seed: int, voices: list[str], held_out_fraction: float) -> list[UtterancePlan]:
    """Deterministic per-utterance plan. Each index draws from its own generator (seeded by
    ``[seed, index]``) and training texts are taken in order, so the plan for ``n`` is a prefix of the
    plan for any larger ``n``: a corpus can be grown in place."""
    held_out = held_out_sentences()
    draws = [np.random.default_rng([seed, index]) for index in range(n)]
    is_held_out_text = [bool(rng.random() < held_out_fraction) for rng in draws]
    train_texts = iter(generate_sentences(n - sum(is_held_out_text), seed=seed))
    plans: list[UtterancePlan] = []
    held_out_used = 0
    for index, (rng, held) in enumerate(zip(draws, is_held_out_text, strict=True)):
        factors = {name: int(rng.integers(low, high + 1)) for name, (low, high) in FACTOR_BOUNDS.items()}
        voice_index = int(rng.integers(len(voices)))
        if held:
            # More held-out utterances than held-out sentences reuse the texts with new prosody.
            text = held_out[held_out_used % len(held_out)]
            held_out_used += 1
        else:
            text = next(train_texts)
        corner = all(low <= factors[name] <= high for name, (low, high) in HELD_OUT_PROSODY.items())
        plans.append(
            UtterancePlan(
                id=f"espeak_{index:05d}",
                text=text,
                voice=voices[voice_index],
                voice_index=voice_index,
                held_out_text=held,
                held_out_prosody=corner,
                **factors,
            )
        )
    return plans


def check_settings(path: Path, settings: dict) -> None:
    """Refuse to reuse a folder whose corpus.json records other plan settings."""
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read the existing corpus description ({error})") from error
    changed = [key for key in PLAN_KEYS if previous.get(key) != settings[key]]
    if changed:
        details = ", ".join(f"{key}: {previous.get(key)!r} -> {settings[key]!r}" for key in changed)
        raise ValueError(
            f"{path}: this folder holds a corpus built with other settings ({details}); "
            "use a fresh output folder or delete this one"
        )


def corpus_settings(*, seed: int, multi_speaker: bool, held_out_fraction: float, espeak_version: str) -> dict:
    """The JSON-ready settings that define a corpus (the ``PLAN_KEYS`` of its ``corpus.json``).

    Raises:
        ValueError: ``seed`` not an int >= 0, or ``held_out_fraction`` outside [0, 1).
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if isinstance(held_out_fraction, bool) or not isinstance(held_out_fraction, int | float):
        raise ValueError(f"held_out_fraction must be a number in [0, 1), got {held_out_fraction!r}")
    if not 0.0 <= held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1), got {held_out_fraction!r}")
    return {
        "format": _FORMAT,
        "seed": seed,
        "multi_speaker": bool(multi_speaker),
        "held_out_fraction": float(held_out_fraction),
        "voices": list(VOICES) if multi_speaker else [VOICES[0]],
        "factor_bounds": {name: list(bounds) for name, bounds in FACTOR_BOUNDS.items()},
        "held_out_prosody": {name: list(bounds) for name, bounds in HELD_OUT_PROSODY.items()},
        "held_out_seed": HELD_OUT_SEED,
        "num_held_out_sentences": NUM_HELD_OUT,
        "espeak_version": espeak_version,
    }
