"""Cross-voice transfer: speaker-normalised correlations and speaker-identity checks.

At inter-speaker transfer the reference is spoken by one voice and the output is in another (the
target voice). Correlating the reference's F0 level with the output's over such pairs mostly
measures the difference between voices, not prosody: a pooled r can be high while, within one
voice, a low and a high reference come out alike. The question a cross-voice evaluation asks is
instead whether the reference's prosody *relative to its own voice* comes out *relative to the target
voice*: a low reference for its voice, a low output for the target voice.

Quantities (:data:`NORMALISED_QUANTITIES`), each on a scale where "relative" is a difference:

* **F0 level**: ``12 log2(f0_mean_hz)``, semitones; relative = semitones above the voice's mean (the
  mean of log-F0 over voiced frames would do as well; the utterance statistics give the mean F0).
* **F0 spread**: ``f0_range_st`` (the 10-90 percentile range, already in semitones).
* **Speaking rate**: ``ln(speaking_rate)``; relative = the log of the ratio to the voice's
  geometric mean rate.
* **Tempo**: ``ln(tempo)``, the rate relative to the sentence's own neutral duration
  (:mod:`.tempo`); relative as for the rate. Defined only where the statistics have ``tempo``
  (the transcripts were known): an inter-text transfer's rate without the sentences' own timing,
  which phones per second leaves on both sides of every pair.

**Where a voice's mean comes from.** By default, the evaluated set itself: the reference side of voice
V is the mean over the distinct references spoken by V (a reference transferred into two target
voices counts once); the output side of target voice W is the mean over the outputs in W. The set is
measured with one analysis on both sides (not the corpus's own labels, whose tracker and conventions
differ), and voices without a corpus (other synthesisers, recordings) are measured like any other.
It asks one thing of the design: each voice's items must span its prosody evenly (every reference
transferred into every target voice does), since a voice whose references are all low has a low mean.

A handful of references per voice estimates that mean poorly: with five references from a voice whose
F0 level varies by 3 semitones (s.d.), the mean is off by 1.4 semitones (s.d.), and the error is a
constant offset for all of that voice's pairs, which the pooled r counts as a transfer error. When
more recordings of a reference voice are at hand, pass their statistics (``reference_means``, from
:func:`recording_means`): the reference side of that voice is then their mean. Measured on the
built-in multi-voice corpus (docs/transfer.md): with 5 references per held-out voice, a model's
pooled F0-level r was 0.78; with each voice's mean over its ~95 test recordings, 0.95, while within
each voice r was 0.86-0.98 either way.

**F0 spread** reads ``f0_spread_st`` when the statistics have it (the spread of the cleaned track,
:func:`prosody_vae.data.espeak.clean_f0`: octave slips repaired), else ``f0_range_st``. On rough
voices a tracker that slips an octave on a few frames makes the raw 10-90 percentile range follow the
slips more than the intonation (docs/corpus.md: within ``en-us+f1``, r = 0.27 raw against 0.96
cleaned).

Correlations (Pearson, Fisher-z interval, :func:`~prosody_vae.evaluation.statistics.correlate`) are
reported pooled over all pairs and per reference voice and per target voice; within one voice pair
the normalisation is a constant shift and leaves r unchanged, so it is the pooled figure that it
changes.

**Speaker identity** (:func:`identity_check`): an output should sound like its target voice, not
like the reference's voice. Measured on the F0 level: the target voice's natural range is the span
(min to max) of the F0 levels of the references spoken by that voice in the set, so it is defined
only for target voices that also appear as reference voices (the cross-voice design transfers
training-voice references, so the targets have recordings). Reported: the share of outputs whose
F0 level lies inside the target voice's range, and, over pairs whose two voices differ, the share
whose level is nearer the target voice's mean than the reference voice's. :func:`voice_similarity`
adds a spectral check: each voice's long-term mean mel cepstrum (c1..c24 of its references) as a
centroid, and the share of outputs whose own mean cepstrum is nearest their target voice's. It is a
coarse, vocoder-sensitive measure (a Griffin-Lim output and a natural recording differ in
spectral detail for every voice alike), meant to tell a target voice from a reference voice, not to
score naturalness.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from prosody_vae.audio import AudioConfig, load_audio, log_mel

from .pairs import EvaluationItem, Pairing
from .statistics import Correlation, correlate

__all__ = [
    "NORMALISED_QUANTITIES",
    "CrossVoiceCorrelations",
    "CrossVoiceItem",
    "IdentityCheck",
    "VoiceSimilarity",
    "cross_voice_correlations",
    "identity_check",
    "label_reference_voices",
    "normalised_values",
    "recording_means",
    "voice_means",
    "voice_similarity",
]


def _semitones(hz: float) -> float:
    return 12.0 * math.log2(hz) if hz > 0 else math.nan


def _log(value: float) -> float:
    return math.log(value) if value > 0 else math.nan


def _same(value: float) -> float:
    return value


# (key, label, utterance statistic, transform to the scale on which "relative" is a difference).
# A statistic "a|b" reads a where the statistics have it, else b (module docstring: F0 spread).
NORMALISED_QUANTITIES: tuple[tuple[str, str, str, Callable[[float], float]], ...] = (
    ("f0_level_st", "F0 level (st)", "f0_mean_hz", _semitones),
    ("f0_spread_st", "F0 spread (st)", "f0_spread_st|f0_range_st", _same),
    ("rate_log", "speaking rate (log)", "speaking_rate", _log),
    ("tempo_log", "tempo (log)", "tempo", _log),
)


@dataclass(frozen=True)
class CrossVoiceItem:
    """One transfer pair with its two voices and both sides' utterance statistics.

    Attributes:
        reference: the reference's key (its file): references counted once for voice means.
        reference_voice: the voice that spoke the reference.
        target_voice: the voice the output is in.
        reference_stats, output_stats: utterance statistics (``f0_mean_hz``, ``f0_range_st``,
            ``speaking_rate``, ...), nan where undefined.
    """

    reference: str
    reference_voice: str
    target_voice: str
    reference_stats: dict[str, float]
    output_stats: dict[str, float]


def _value(stats: Mapping[str, float], statistic: str, transform: Callable[[float], float]) -> float:
    preferred, _, fallback = statistic.partition("|")
    raw = (
        stats.get(preferred, math.nan)
        if preferred in stats or not fallback
        else stats.get(fallback, math.nan)
    )
    return math.nan if raw is None or not math.isfinite(raw) else transform(float(raw))


def _mean(values: list[float]) -> float:
    defined = [v for v in values if math.isfinite(v)]
    return float(np.mean(defined)) if defined else math.nan


def recording_means(recordings: Mapping[str, Sequence[Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Each voice's mean of every quantity (transformed scale) over statistics of its recordings.

    ``recordings``: voice -> utterance statistics of its recordings (as in :class:`CrossVoiceItem`).
    The result is what :func:`voice_means` takes as ``reference_means``. Undefined values are left out.
    """
    return {
        voice: {key: _mean([_value(s, stat, f) for s in stats]) for key, _, stat, f in NORMALISED_QUANTITIES}
        for voice, stats in recordings.items()
    }


def voice_means(
    items: Sequence[CrossVoiceItem],
    *,
    reference_means: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Each voice's mean of every quantity (transformed scale): (reference side, output side).

    Reference side: per reference voice, over its distinct references, or ``reference_means[voice]``
    where given (:func:`recording_means`; module docstring; a quantity they lack is the set's
    mean). Output side: per target voice, over its
    outputs. Undefined values are left out; a voice with none is nan.
    """
    references: dict[str, dict[str, CrossVoiceItem]] = {}
    outputs: dict[str, list[CrossVoiceItem]] = {}
    for item in items:
        references.setdefault(item.reference_voice, {}).setdefault(item.reference, item)
        outputs.setdefault(item.target_voice, []).append(item)
    ref_means = {
        voice: {
            key: _mean([_value(i.reference_stats, stat, f) for i in refs.values()])
            for key, _, stat, f in NORMALISED_QUANTITIES
        }
        for voice, refs in references.items()
    }
    for voice, means in (reference_means or {}).items():
        if voice in ref_means:  # a quantity the given means lack keeps the set's mean
            ref_means[voice] |= {key: float(means[key]) for key, *_ in NORMALISED_QUANTITIES if key in means}
    out_means = {
        voice: {
            key: _mean([_value(i.output_stats, stat, f) for i in outs])
            for key, _, stat, f in NORMALISED_QUANTITIES
        }
        for voice, outs in outputs.items()
    }
    return ref_means, out_means


def normalised_values(
    items: Sequence[CrossVoiceItem], *, reference_means: Mapping[str, Mapping[str, float]] | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per quantity, (reference relative to its voice's mean, output relative to its target voice's
    mean): two arrays (N,) in item order, nan where undefined. ``reference_means``: as in
    :func:`voice_means`."""
    ref_means, out_means = voice_means(items, reference_means=reference_means)
    result = {}
    for key, _, stat, f in NORMALISED_QUANTITIES:
        ref = [_value(i.reference_stats, stat, f) - ref_means[i.reference_voice][key] for i in items]
        out = [_value(i.output_stats, stat, f) - out_means[i.target_voice][key] for i in items]
        result[key] = (np.asarray(ref, dtype=np.float64), np.asarray(out, dtype=np.float64))
    return result


class CrossVoiceCorrelations(NamedTuple):
    """Speaker-normalised reference-vs-output correlations, pooled and per voice."""

    pooled: dict[str, Correlation]  # quantity key -> r over all pairs
    raw: dict[str, Correlation]  # the same pairs without normalisation, for comparison
    by_reference_voice: dict[str, dict[str, Correlation]]
    by_target_voice: dict[str, dict[str, Correlation]]


def cross_voice_correlations(
    items: Sequence[CrossVoiceItem],
    *,
    level: float = 0.95,
    reference_means: Mapping[str, Mapping[str, float]] | None = None,
) -> CrossVoiceCorrelations:
    """Pearson r of the speaker-normalised quantities (module docstring), pooled and per voice.

    ``reference_means``: reference voices' means from more of their recordings (:func:`voice_means`).
    """
    values = normalised_values(items, reference_means=reference_means)
    pooled = {key: correlate(*values[key], level=level) for key, *_ in NORMALISED_QUANTITIES}
    raw = {
        key: correlate(
            [_value(i.reference_stats, stat, f) for i in items],
            [_value(i.output_stats, stat, f) for i in items],
            level=level,
        )
        for key, _, stat, f in NORMALISED_QUANTITIES
    }

    def grouped(voice_of: Callable[[CrossVoiceItem], str]) -> dict[str, dict[str, Correlation]]:
        groups: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            groups.setdefault(voice_of(item), []).append(index)
        return {
            voice: {
                key: correlate(values[key][0][rows], values[key][1][rows], level=level)
                for key, *_ in NORMALISED_QUANTITIES
            }
            for voice, rows in sorted(groups.items())
        }

    return CrossVoiceCorrelations(
        pooled=pooled,
        raw=raw,
        by_reference_voice=grouped(lambda i: i.reference_voice),
        by_target_voice=grouped(lambda i: i.target_voice),
    )


class IdentityCheck(NamedTuple):
    """Does the output keep its target voice's pitch? (module docstring)

    ``inside_range``: share of outputs whose F0 level lies in the target voice's natural range, over
    the ``n_range`` outputs whose target voice has references. ``nearer_target``: share of
    cross-voice pairs whose output level is nearer the target voice's mean than the reference
    voice's, over ``n_nearer`` such pairs. ``level_offset_st``: per target voice, the outputs' mean
    F0 level minus the voice's natural mean (semitones; 0 = outputs at the voice's own pitch).
    """

    inside_range: float
    n_range: int
    nearer_target: float
    n_nearer: int
    level_offset_st: dict[str, float]


def identity_check(items: Sequence[CrossVoiceItem]) -> IdentityCheck:
    """F0-level identity check of outputs against their target voices' natural range."""
    level_key, _, stat, transform = NORMALISED_QUANTITIES[0]
    natural: dict[str, dict[str, float]] = {}
    for item in items:
        natural.setdefault(item.reference_voice, {})[item.reference] = _value(
            item.reference_stats, stat, transform
        )
    ranges = {}
    for voice, levels in natural.items():
        defined = [v for v in levels.values() if math.isfinite(v)]
        if defined:
            ranges[voice] = (min(defined), max(defined), float(np.mean(defined)))
    inside, nearer = [], []
    for item in items:
        out = _value(item.output_stats, stat, transform)
        if not math.isfinite(out) or item.target_voice not in ranges:
            continue
        low, high, target_mean = ranges[item.target_voice]
        inside.append(low <= out <= high)
        if item.reference_voice != item.target_voice and item.reference_voice in ranges:
            nearer.append(abs(out - target_mean) < abs(out - ranges[item.reference_voice][2]))
    _, out_means = voice_means(items)
    offsets = {
        voice: out_means[voice][level_key] - ranges[voice][2]
        for voice in sorted(out_means)
        if voice in ranges
    }
    return IdentityCheck(
        inside_range=float(np.mean(inside)) if inside else math.nan,
        n_range=len(inside),
        nearer_target=float(np.mean(nearer)) if nearer else math.nan,
        n_nearer=len(nearer),
        level_offset_st=offsets,
    )


class VoiceSimilarity(NamedTuple):
    """Nearest-voice check on long-term mean cepstra (module docstring).

    ``accuracy``: share of the ``n`` outputs (whose target voice has references) nearest their
    target voice's centroid among all voices with references. ``nearer_target``: share of the
    ``n_nearer`` cross-voice outputs nearer the target voice's centroid than the reference voice's.
    """

    accuracy: float
    n: int
    nearer_target: float
    n_nearer: int


def mean_cepstrum(path: str | Path, config: AudioConfig, n_coefficients: int = 24) -> np.ndarray:
    """Long-term mean of c1..c``n`` of the mel cepstrum (DCT-II of the log-mel) of one file: (n,).

    c0 (level) is left out, so loudness does not enter. Silence at the ends is trimmed on load.
    """
    import scipy.fft

    mel = log_mel(load_audio(path, config), config).numpy()  # (T, n_mels), natural log
    cepstra = scipy.fft.dct(mel, type=2, norm="ortho", axis=-1)[:, 1 : n_coefficients + 1]  # (T, n)
    return cepstra.mean(axis=0)


def voice_similarity(
    pairs: Sequence[tuple[str | Path, str, str | Path, str]], config: AudioConfig
) -> VoiceSimilarity:
    """The cepstral nearest-voice check over ``(reference file, reference voice, output file, target
    voice)`` tuples; each file is read once."""
    cache: dict[str, np.ndarray] = {}

    def cepstrum(path: str | Path) -> np.ndarray:
        key = str(path)
        if key not in cache:
            cache[key] = mean_cepstrum(path, config)
        return cache[key]

    members: dict[str, dict[str, np.ndarray]] = {}
    for reference, voice, _, _ in pairs:
        members.setdefault(voice, {})[str(reference)] = cepstrum(reference)
    voices = sorted(members)
    centroids = np.stack([np.mean(list(members[v].values()), axis=0) for v in voices])  # (V, n)
    hits, nearer = [], []
    for _, reference_voice, output, target_voice in pairs:
        if target_voice not in members:
            continue
        distances = np.linalg.norm(centroids - cepstrum(output), axis=1)  # (V,)
        hits.append(voices[int(np.argmin(distances))] == target_voice)
        if reference_voice != target_voice:
            nearer.append(distances[voices.index(target_voice)] < distances[voices.index(reference_voice)])
    return VoiceSimilarity(
        accuracy=float(np.mean(hits)) if hits else math.nan,
        n=len(hits),
        nearer_target=float(np.mean(nearer)) if nearer else math.nan,
        n_nearer=len(nearer),
    )


def label_reference_voices(pairing: Pairing, manifests: Sequence[str | Path]) -> Pairing:
    """``pairing`` with each reference's voice filled in from corpus manifests, where it was unknown.

    A reference's voice is the ``speaker`` of the manifest utterance whose audio is the same file
    (paths compared resolved). This names voices the model does not know (held-out voices, other
    synthesisers), which a synthesis manifest cannot: it records only the model's own speaker names.
    """
    from prosody_vae.data.manifest import read_manifest

    voices: dict[Path, str] = {}
    for manifest in manifests:
        for utterance in read_manifest(manifest):
            voices.setdefault(Path(utterance.audio).resolve(), utterance.speaker)
    items = [
        item
        if item.reference is None or item.reference_speaker is not None
        else EvaluationItem(**{**vars(item), "reference_speaker": voices.get(Path(item.reference).resolve())})
        for item in pairing.items
    ]
    return Pairing(items=items, problems=list(pairing.problems))
