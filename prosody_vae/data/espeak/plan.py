"""What the built-in corpus contains: its voices, factor ranges, held-out material and per-utterance plan.

Each utterance gets a sentence from :mod:`prosody_vae.data.espeak.grammar`, prosody factors drawn
uniformly from the bounds of its intonation scheme (``FACTOR_BOUNDS`` for espeak-ng's own tune,
``CONTOUR_FACTOR_BOUNDS`` for the stylised contour, see :mod:`prosody_vae.data.espeak.intonation`)
and a voice drawn uniformly from the corpus's voices. Three kinds of material are kept out of
training and flagged in the manifest labels (1.0 = held out):

* ``held_out_text``: the utterance speaks one of the fixed held-out sentences (inter-text evaluation);
* ``held_out_prosody``: its factors fall in the held-out corner of the factor grid (out-of-range
  evaluation);
* ``held_out_voice``: it is spoken by one of the corpus's held-out voices (cross-voice evaluation);
  only in corpora that name held-out voices.

A corpus with ``texts_per_setting`` k > 1 speaks each draw of voice and factors k times, with k
different sentences: consecutive utterances ``k*g .. k*g + k - 1`` share one draw and carry the label
``setting_group`` = g. Such groups are what paired-reference training reads (a reference of one
sentence, the same prosody spoken on another, docs/transfer.md "Paired references").

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
from prosody_vae.data.espeak.intonation import INTONATIONS, MAX_QUESTION_RISE, Intonation, is_question

__all__ = [
    "CONTOUR_FACTOR_BOUNDS",
    "CONTOUR_HELD_OUT_PROSODY",
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
# The stylised contour (intonation "contour") adds the peak position, ``contour`` (0 = first word,
# 100 = last word). Its pitch bases stop at 20 and 80 so that the word offsets, up to half of
# CONTOUR_SPAN either way, stay on espeak-ng's 0..100 pitch scale; its held-out corner is again high
# and fast (about 4% of draws).
CONTOUR_FACTOR_BOUNDS = {"pitch": (20, 80), "pitch_range": (0, 100), "rate": (140, 280), "contour": (0, 100)}
CONTOUR_HELD_OUT_PROSODY = {"pitch": (70, 80), "rate": (250, 280)}
_DESIGNS = {
    "tune": (FACTOR_BOUNDS, HELD_OUT_PROSODY),
    "contour": (CONTOUR_FACTOR_BOUNDS, CONTOUR_HELD_OUT_PROSODY),
}
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
    "held_out_voices",
    "intonation",
    "question_rise",
    "texts_per_setting",
)
# Plan keys added after the first corpora were built, with the value those corpora had. A setting at
# this value is left out of corpus.json, so the original corpus's description stays as it was and
# a folder described before the key existed still matches.
_LATER_KEYS = {"held_out_voices": [], "intonation": "tune", "question_rise": 0, "texts_per_setting": 1}


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
    # Only in corpora whose design has them (None elsewhere, and then absent from the labels): the
    # peak position of the stylised contour, and whether the voice is one of the held-out voices.
    contour: int | None = None
    held_out_voice: bool | None = None
    # espeak-ng pitch units added to the last word of a question (the corpus's setting; 0: none).
    question_rise: int = 0
    # The group of utterances that share this one's voice and factor draw (texts_per_setting > 1
    # only; None elsewhere, and then absent from the labels).
    setting_group: int | None = None

    def labels(self) -> dict[str, float]:
        """The drawn factors and held-out flags (1.0 = held out) as manifest labels."""
        labels = {
            "pitch": float(self.pitch),
            "pitch_range": float(self.pitch_range),
            "rate": float(self.rate),
            "voice_index": float(self.voice_index),
            "held_out_text": float(self.held_out_text),
            "held_out_prosody": float(self.held_out_prosody),
        }
        if self.contour is not None:
            labels["contour"] = float(self.contour)
        if self.held_out_voice is not None:
            labels["held_out_voice"] = float(self.held_out_voice)
        if self.setting_group is not None:
            labels["setting_group"] = float(self.setting_group)
        return labels

    @property
    def held_out(self) -> bool:
        """Kept out of training and validation for any of the three reasons."""
        return self.held_out_text or self.held_out_prosody or bool(self.held_out_voice)


def _check_texts_per_setting(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"texts_per_setting must be an int >= 1, got {value!r}")


def plan_corpus(
    n: int,
    *,
    seed: int,
    voices: list[str],
    held_out_fraction: float,
    held_out_voices: list[str] | tuple[str, ...] = (),
    intonation: Intonation = "tune",
    question_rise: int = 0,
    texts_per_setting: int = 1,
) -> list[UtterancePlan]:
    """Deterministic per-utterance plan. Each index draws from its own generator (seeded by
    ``[seed, index]``) and training texts are taken in order, so the plan for ``n`` is a prefix of the
    plan for any larger ``n``: a corpus can be grown in place.

    The voice is drawn uniformly from ``voices`` followed by ``held_out_voices`` (``voice_index``
    counts in that order). With no held-out voices and espeak-ng's own tune, the draws are those of
    the original corpus, utterance for utterance. With ``texts_per_setting`` k > 1 the voice and
    factors come from the generator of the group's first utterance, and every utterance of the
    group still draws its own held-out-text coin.
    """
    _check_texts_per_setting(texts_per_setting)
    bounds, corner_bands = _DESIGNS[intonation]
    all_voices = [*voices, *held_out_voices]
    held_out = held_out_sentences()
    draws = [np.random.default_rng([seed, index]) for index in range(n)]
    is_held_out_text = [bool(rng.random() < held_out_fraction) for rng in draws]
    train_texts = iter(generate_sentences(n - sum(is_held_out_text), seed=seed))
    plans: list[UtterancePlan] = []
    held_out_used = 0
    group_draw: tuple[dict[str, int], int] = ({}, 0)
    for index, (rng, held) in enumerate(zip(draws, is_held_out_text, strict=True)):
        if index % texts_per_setting == 0:  # a new group (every utterance when k = 1)
            factors = {name: int(rng.integers(low, high + 1)) for name, (low, high) in bounds.items()}
            group_draw = (factors, int(rng.integers(len(all_voices))))
        factors, voice_index = group_draw
        if held:
            # More held-out utterances than held-out sentences reuse the texts with new prosody.
            text = held_out[held_out_used % len(held_out)]
            held_out_used += 1
        else:
            text = next(train_texts)
        corner = all(low <= factors[name] <= high for name, (low, high) in corner_bands.items())
        plans.append(
            UtterancePlan(
                id=f"espeak_{index:05d}",
                text=text,
                voice=all_voices[voice_index],
                voice_index=voice_index,
                held_out_text=held,
                held_out_prosody=corner,
                held_out_voice=voice_index >= len(voices) if held_out_voices else None,
                question_rise=question_rise if is_question(text) else 0,
                setting_group=index // texts_per_setting if texts_per_setting > 1 else None,
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
    before = {key: previous.get(key, _LATER_KEYS.get(key)) for key in PLAN_KEYS}
    now = {key: settings.get(key, _LATER_KEYS.get(key)) for key in PLAN_KEYS}
    changed = [key for key in PLAN_KEYS if before[key] != now[key]]
    if changed:
        details = ", ".join(f"{key}: {before[key]!r} -> {now[key]!r}" for key in changed)
        raise ValueError(
            f"{path}: this folder holds a corpus built with other settings ({details}); "
            "use a fresh output folder or delete this one"
        )


def _voice_list(name: str, value: object) -> list[str]:
    """A list of espeak-ng voice names (``language[+variant]``), distinct, from user input."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be a list of espeak-ng voice names, got {value!r}")
    for voice in value:
        if not isinstance(voice, str) or not voice or any(char.isspace() for char in voice):
            raise ValueError(f"{name}: {voice!r} is not an espeak-ng voice name such as 'en-us+m3'")
    duplicates = sorted({voice for voice in value if value.count(voice) > 1})
    if duplicates:
        raise ValueError(f"{name} lists {duplicates} more than once")
    return list(value)


def corpus_settings(
    *,
    seed: int,
    multi_speaker: bool,
    held_out_fraction: float,
    espeak_version: str,
    voices: list[str] | tuple[str, ...] | None = None,
    held_out_voices: list[str] | tuple[str, ...] = (),
    intonation: Intonation = "tune",
    question_rise: int = 0,
    texts_per_setting: int = 1,
) -> dict:
    """The JSON-ready settings that define a corpus (the ``PLAN_KEYS`` of its ``corpus.json``).

    The training voices are ``voices`` if given, else ``VOICES`` with ``multi_speaker`` and
    ``VOICES[0]`` without. ``corpus.json``'s ``voices`` lists every voice of the corpus, the training
    voices first and then ``held_out_voices``: the manifest's ``voice_index`` counts in that list.

    Raises:
        ValueError: ``seed`` not an int >= 0, ``held_out_fraction`` outside [0, 1), a voice list
            that is not a list of distinct voice names, a held-out voice that is also a training
            voice, ``voices`` together with ``multi_speaker``, an unknown ``intonation``, or a
            ``question_rise`` outside 0..``MAX_QUESTION_RISE``, or ``texts_per_setting`` < 1.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if isinstance(held_out_fraction, bool) or not isinstance(held_out_fraction, int | float):
        raise ValueError(f"held_out_fraction must be a number in [0, 1), got {held_out_fraction!r}")
    if not 0.0 <= held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1), got {held_out_fraction!r}")
    if intonation not in INTONATIONS:
        raise ValueError(f"intonation must be one of {list(INTONATIONS)}, got {intonation!r}")
    if isinstance(question_rise, bool) or not isinstance(question_rise, int):
        raise ValueError(f"question_rise must be an int, got {question_rise!r}")
    if not 0 <= question_rise <= MAX_QUESTION_RISE:
        raise ValueError(f"question_rise must be in 0..{MAX_QUESTION_RISE}, got {question_rise}")
    _check_texts_per_setting(texts_per_setting)
    if voices is None:
        training = list(VOICES) if multi_speaker else [VOICES[0]]
    elif multi_speaker:
        raise ValueError(
            f"multi_speaker draws the voices {list(VOICES)}; give either multi_speaker or voices, not both"
        )
    else:
        training = _voice_list("voices", voices)
        if not training:
            raise ValueError("voices must name at least one espeak-ng voice")
    held_out = _voice_list("held_out_voices", held_out_voices)
    both = [voice for voice in held_out if voice in training]
    if both:
        raise ValueError(f"held_out_voices {both} are also training voices")
    all_voices = training + held_out
    bounds, corner = _DESIGNS[intonation]
    settings = {
        "format": _FORMAT,
        "seed": seed,
        "multi_speaker": len(all_voices) > 1,
        "held_out_fraction": float(held_out_fraction),
        "voices": all_voices,
        "factor_bounds": {name: list(band) for name, band in bounds.items()},
        "held_out_prosody": {name: list(band) for name, band in corner.items()},
        "held_out_seed": HELD_OUT_SEED,
        "num_held_out_sentences": NUM_HELD_OUT,
        "espeak_version": espeak_version,
        "held_out_voices": held_out,
        "intonation": intonation,
        "question_rise": question_rise,
        "texts_per_setting": texts_per_setting,
    }
    return {key: value for key, value in settings.items() if _LATER_KEYS.get(key, object()) != value}
