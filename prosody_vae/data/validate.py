"""Cheap corpus validation before feature extraction: headers, durations, transcripts, ids.

Only file headers are read (``soundfile.info``), so a corpus of tens of thousands of files is
checked in seconds. Problems that need the samples (silence, NaN, a file too short after
trimming) are caught later by feature extraction, which skips and reports such utterances.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from prosody_vae.audio import MAX_CHANNELS, AudioConfig
from prosody_vae.data.manifest import Utterance
from prosody_vae.text import TextError

__all__ = ["ValidationReport", "untokenisable", "validate_utterances"]


@dataclass
class ValidationReport:
    """Outcome of :func:`validate_utterances`.

    Attributes:
        kept: utterances that passed, with ``duration`` filled in.
        rejected: ``(utterance id, reason)`` pairs; a reason reads ``"<category>: <detail>"``.
    """

    kept: list[Utterance] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return sum(utt.duration or 0.0 for utt in self.kept) / 3600.0

    @property
    def speakers(self) -> list[str]:
        return sorted({utt.speaker for utt in self.kept})

    def rejections_by_reason(self) -> dict[str, int]:
        """Rejection counts per category (the part of the reason before the first colon)."""
        counts = Counter(reason.split(":", 1)[0] for _, reason in self.rejected)
        return dict(counts.most_common())

    def summary(self) -> str:
        """A few printable lines: kept hours/utterances/speakers and rejections by category."""
        lines = [
            f"kept {len(self.kept)} utterances, {self.hours:.2f} h, {len(self.speakers)} speaker(s)",
            f"rejected {len(self.rejected)} utterance(s)" + (":" if self.rejected else ""),
        ]
        lines += [f"  {category}: {count}" for category, count in self.rejections_by_reason().items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _check(utt: Utterance, config: AudioConfig, min_duration: float, max_duration: float) -> str | None:
    """The rejection reason for one utterance, or None if it passes."""
    if not utt.text.strip():
        return "empty text: transcript is blank"
    path = Path(utt.audio)
    if not path.is_file():
        return f"missing audio: {path}"
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as error:
        return f"unreadable audio: {path} ({error})"
    if info.frames <= 0 or info.samplerate <= 0:
        return f"empty audio: {path} has no samples"
    if info.channels > MAX_CHANNELS:
        return f"unsupported channels: {path} has {info.channels} (at most {MAX_CHANNELS})"
    duration = info.frames / info.samplerate
    # Shorter than one analysis frame at the target rate can never produce a mel.
    shortest = max(min_duration, config.n_fft / config.sample_rate)
    if duration < shortest:
        return f"too short: {duration:.3f} s < {shortest:.3f} s"
    if duration > max_duration:
        return f"too long: {duration:.3f} s > {max_duration:.3f} s"
    if utt.duration is None:
        utt.duration = duration
    return None


def validate_utterances(
    utts: Iterable[Utterance],
    config: AudioConfig,
    min_duration: float = 0.5,
    max_duration: float = 20.0,
) -> ValidationReport:
    """Keep utterances whose audio header is readable and whose duration is in range.

    Args:
        utts: candidate utterances (not modified; kept ones are copies with ``duration`` filled in
            from the file header when it was missing).
        config: the audio analysis config (an utterance shorter than ``n_fft`` samples is rejected).
        min_duration: shortest file kept, seconds (raw file, before silence trimming).
        max_duration: longest file kept, seconds. Long files dominate padded batches and attention
            memory; 20 s covers LJSpeech (max about 10 s) and VCTK.

    Returns:
        A :class:`ValidationReport`. Rejections: empty text, missing/unreadable/empty audio,
        unsupported channel count, too short, too long, duplicate id.
    """
    if not 0 <= min_duration < max_duration:
        raise ValueError(f"need 0 <= min_duration < max_duration, got {min_duration} and {max_duration}")
    report = ValidationReport()
    seen: set[str] = set()
    for original in utts:
        if original.id in seen:
            report.rejected.append((original.id, "duplicate id: already used by an earlier utterance"))
            continue
        seen.add(original.id)
        utt = dataclasses.replace(original, labels=dict(original.labels))
        reason = _check(utt, config, min_duration, max_duration)
        if reason is None:
            report.kept.append(utt)
        else:
            report.rejected.append((utt.id, reason))
    return report


def untokenisable(utterances: Sequence[Utterance], tokenizer) -> list[tuple[str, str]]:
    """``(id, "untokenisable text: <reason>")`` for every utterance whose text ``tokenizer`` cannot
    encode (letters of another script, symbols, nothing to say), in input order.

    One pass over the corpus (one espeak-ng call for the phoneme tokenizer). Training reads every
    text through the tokenizer; an utterance that fails there would end the run at its batch, and at
    the same batch again on every resume.
    """
    texts = [utt.text for utt in utterances]
    encode_each = getattr(tokenizer, "encode_each", None)
    if encode_each is not None:
        results = encode_each(texts)
    else:  # any object with encode(text), as ProsodyDataset accepts
        results = []
        for text in texts:
            try:
                results.append(tokenizer.encode(text))
            except TextError as error:
                results.append(error)
    return [
        (utt.id, f"untokenisable text: {result}")
        for utt, result in zip(utterances, results, strict=True)
        if isinstance(result, TextError)
    ]
