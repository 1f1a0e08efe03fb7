"""The built-in corpus's settings file (``egs/espeak_prosody/conf/corpus*.yaml``), read and checked.

A corpus config is a flat YAML mapping of :func:`~prosody_vae.data.espeak.build_corpus` keywords
(:data:`CORPUS_KEYS`). ``prosody-vae make-corpus`` and ``recipes/make_espeak_corpus.py`` read it with
:func:`read_corpus_config` and lay the command-line flags over it with
:func:`resolve_corpus_settings`: a flag given on the command line wins over the file, and a key in
neither takes ``build_corpus``'s default.

Values are checked at the door, before espeak-ng runs or anything is written: an unknown key, a value
of the wrong type (YAML's ``true`` is not an int, a single voice name is not a list) or out of range
is a one-line ``ValueError`` naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from prosody_vae.data.espeak.intonation import INTONATIONS
from prosody_vae.data.espeak.plan import corpus_settings as plan_settings

__all__ = ["CORPUS_KEYS", "read_corpus_config", "resolve_corpus_settings", "voice_names"]

# build_corpus keyword -> the type its YAML value must have. The flags have the same names ('-' for '_',
# --n for n_utterances).
CORPUS_KEYS: dict[str, type | tuple[type, ...]] = {
    "n_utterances": int,
    "seed": int,
    "multi_speaker": bool,
    "num_workers": int,
    "held_out_fraction": (int, float),
    "voices": list,
    "held_out_voices": list,
    "intonation": str,
    "question_rise": int,
    "texts_per_setting": int,
}


def _type_name(expected: type | tuple[type, ...]) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(kind.__name__ for kind in kinds)


def _check_values(settings: Mapping[str, Any]) -> None:
    """Types and ranges of ``settings`` (some of :data:`CORPUS_KEYS`); a ValueError names the key."""
    for key, value in settings.items():
        expected = CORPUS_KEYS[key]
        # YAML reads `true` as a bool, which Python also counts as an int: only multi_speaker may be one.
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
            raise ValueError(f"{key} must be of type {_type_name(expected)}, got {value!r}")
    for key in ("n_utterances", "num_workers"):
        if key in settings and settings[key] < 1:
            raise ValueError(f"{key} must be >= 1, got {settings[key]!r}")
    if "intonation" in settings and settings["intonation"] not in INTONATIONS:
        raise ValueError(f"intonation must be one of {list(INTONATIONS)}, got {settings['intonation']!r}")
    # The plan's own checks (seed, held_out_fraction, the voice lists and how they combine), on the
    # values given over the defaults; each message names its key.
    plan_keys = (
        "seed",
        "multi_speaker",
        "held_out_fraction",
        "voices",
        "held_out_voices",
        "intonation",
        "question_rise",
        "texts_per_setting",
    )
    plan = {"seed": 0, "multi_speaker": False, "held_out_fraction": 0.05}
    plan.update({key: settings[key] for key in plan_keys if key in settings})
    plan_settings(espeak_version="", **plan)


def read_corpus_config(path: str | Path) -> dict[str, Any]:
    """The settings of a corpus config file, checked (see the module docstring).

    Returns:
        The keys the file sets, with their values (a subset of :data:`CORPUS_KEYS`).

    Raises:
        ValueError: ``<path>: <key> ...`` for an unknown key or a bad value; ``<path>: ...`` when the
            file cannot be read or is not a mapping.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: cannot read corpus config ({' '.join(str(error).split())})") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of {list(CORPUS_KEYS)}, got {type(data).__name__}")
    unknown = sorted(map(str, set(data) - set(CORPUS_KEYS)))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed: {list(CORPUS_KEYS)}")
    try:
        _check_values(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return data


def voice_names(text: str) -> list[str]:
    """A comma-separated list of voices from the command line (``en-us,en-us+f4``)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def resolve_corpus_settings(config: str | Path | None, flags: Mapping[str, Any]) -> dict[str, Any]:
    """``build_corpus`` keywords: the config file's settings with every flag that is not None on top.

    Args:
        config: a corpus config file, or None for flags alone.
        flags: :data:`CORPUS_KEYS` keywords from the command line; None means not given. ``voices``
            and ``held_out_voices`` may be comma-separated strings.

    Raises:
        ValueError: a bad file (naming it and the key) or a bad flag value (naming the key).
    """
    unknown = sorted(set(flags) - set(CORPUS_KEYS))
    if unknown:
        raise ValueError(f"unknown corpus setting(s) {unknown}; allowed: {list(CORPUS_KEYS)}")
    settings = read_corpus_config(config) if config is not None else {}
    given = {key: value for key, value in flags.items() if value is not None}
    for key in ("voices", "held_out_voices"):
        if isinstance(given.get(key), str):
            given[key] = voice_names(given[key])
    _check_values(given)
    settings.update(given)
    _check_values(settings)  # combinations across the two, e.g. a file's voices with --multi-speaker
    return settings
