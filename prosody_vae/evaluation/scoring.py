"""Scoring one item (in a worker process) and a pool that scores many in input order.

Both files of a pair are loaded as the model loads audio (:func:`prosody_vae.audio.load_audio`):
mono, resampled to the analysis rate, leading and trailing silence trimmed at ``trim_top_db`` and
peak-normalised. So a system's extra silence or output gain does not enter the DTW path or the
level-sensitive c0 of MCD13; pauses inside the utterance are kept. The metrics themselves are
:func:`prosody_vae.metrics.compare_prosody` (pairs) plus ``mcd_world_db``
(:func:`prosody_vae.metrics.world_mel_cepstral_distortion`, the standard MCD), and
:func:`prosody_vae.metrics.utterance_prosody` (unpaired items); their conventions are documented there.
Where the manifest gives the texts, each side's tempo too (:mod:`.tempo`: the rate relative to its
sentence's neutral duration, on the trimmed samples scored).

F0 extraction (WORLD Harvest) dominates the cost, hence the process pool.

Files outside the range an utterance-level metric means something for are skipped and reported, not
scored: shorter than :data:`MIN_SCORED_SECONDS` after trimming (a 0.05 s output would give a duration
ratio of 400 and drag every mean), or longer than :data:`MAX_SCORED_SECONDS` (the pairwise metrics
align whole utterances, in memory and time that grow with the product of the two lengths; the length
is read from the header, so such a file is never loaded).
"""

from __future__ import annotations

import multiprocessing
import sys
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from prosody_vae.audio import AudioConfig, AudioError, f0_energy, load_audio, log_mel
from prosody_vae.data.espeak import EspeakError
from prosody_vae.metrics import (
    compare_prosody,
    mel_cepstral_distortion,
    utterance_prosody,
    world_mel_cepstral_distortion,
)

from .pairs import EvaluationItem
from .tempo import tempo

__all__ = [
    "MAX_SCORED_SECONDS",
    "MIN_SCORED_SECONDS",
    "F0Tracks",
    "ItemScore",
    "analysis_config",
    "score_item",
    "score_items",
]

# An output or reference shorter than this after silence trimming is not scored (as a reference
# this short is not embedded: MIN_REFERENCE_SECONDS of the synthesizer).
MIN_SCORED_SECONDS = 0.25
# ... nor one longer than this (by its header): utterances, not recordings, are compared.
MAX_SCORED_SECONDS = 20.0


def _scorable(path, config: AudioConfig) -> np.ndarray:
    """``path`` loaded for scoring; an :class:`AudioError` when it is too long or too short to score."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        info = None  # load_audio names what is wrong with the file
    if info is not None and info.samplerate > 0 and info.frames / info.samplerate > MAX_SCORED_SECONDS:
        raise AudioError(
            path,
            f"too long to score: {info.frames / info.samplerate:.1f} s > {MAX_SCORED_SECONDS:g} s "
            "(metrics compare utterances; cut the recording into utterances)",
        )
    wav = load_audio(path, config)
    if len(wav) / config.sample_rate < MIN_SCORED_SECONDS:
        raise AudioError(
            path,
            f"too short to score: {len(wav) / config.sample_rate:.2f} s after trimming silence "
            f"< {MIN_SCORED_SECONDS:g} s",
        )
    return wav


def analysis_config(sample_rate: int = 22050, *, f0_min: float = 50.0, f0_max: float = 600.0) -> AudioConfig:
    """The evaluation's analysis: library defaults at ``sample_rate`` with the given F0 search range.

    The mel ceiling is clamped to the Nyquist frequency; an F0 range outside ``(0, sample_rate / 2]``
    is an error (raised by :class:`AudioConfig`).
    """
    return AudioConfig(
        sample_rate=sample_rate, f_max=min(AudioConfig.f_max, sample_rate / 2), f0_min=f0_min, f0_max=f0_max
    )


@dataclass
class F0Tracks:
    """The F0 tracks of a pair and the DTW path (MCD13's) the frame metrics were taken along."""

    reference: np.ndarray  # (T1,) Hz, 0 = unvoiced
    output: np.ndarray  # (T2,) Hz
    path: np.ndarray  # (N, 2) (reference frame, output frame)


@dataclass
class ItemScore:
    """What scoring one item gave: its metrics, or the reason it could not be scored."""

    item: EvaluationItem
    values: dict[str, float] | None  # None when scoring failed
    error: str | None = None
    error_path: str = ""
    tracks: F0Tracks | None = None


def _tempi(
    item: EvaluationItem, ref_wav: np.ndarray | None, out_wav: np.ndarray, config: AudioConfig
) -> dict[str, float]:
    """``out_tempo`` and ``ref_tempo`` (:mod:`.tempo`) of the sides whose text is known, on the
    trimmed samples scored; none when espeak-ng, which times the neutral rendering, cannot run."""
    sides = [("out", item.text, out_wav), ("ref", item.reference_text, ref_wav)]
    try:
        return {
            f"{side}_tempo": tempo(text, len(wav) / config.sample_rate, config=config)
            for side, text, wav in sides
            if text is not None and wav is not None
        }
    except EspeakError:
        return {}


def score_item(item: EvaluationItem, config: AudioConfig, *, keep_tracks: bool = False) -> ItemScore:
    """Metrics of one item; any failure is returned as the item's error, never raised.

    Args:
        item: a pair (``compare_prosody``) or an unpaired output (``utterance_prosody``, keys
            prefixed ``out_``).
        config: the analysis (:func:`analysis_config`).
        keep_tracks: also return the pair's F0 tracks and DTW path, for figures (this repeats the F0
            analysis of the two files, so it is meant for the few items that are plotted).
    """
    current = str(item.output)
    try:
        out_wav = _scorable(item.output, config)
        if item.reference is None:
            stats = utterance_prosody(out_wav, config.sample_rate, config=config)
            values = {f"out_{key}": value for key, value in stats.items()}
            return ItemScore(item, values | _tempi(item, None, out_wav, config))
        current = str(item.reference)
        ref_wav = _scorable(item.reference, config)
        current = ""
        values = compare_prosody(ref_wav, out_wav, config.sample_rate, config=config)
        values |= _tempi(item, ref_wav, out_wav, config)
        # the standard MCD, comparable with published numbers; both files are already trimmed
        values["mcd_world_db"] = world_mel_cepstral_distortion(
            ref_wav, out_wav, config.sample_rate, trim_top_db=None
        ).value
        tracks = None
        if keep_tracks:
            mcd = mel_cepstral_distortion(
                log_mel(ref_wav, config).numpy(), log_mel(out_wav, config).numpy(), convention="mcd13"
            )
            tracks = F0Tracks(f0_energy(ref_wav, config)[0], f0_energy(out_wav, config)[0], mcd.path)
        return ItemScore(item, values, tracks=tracks)
    except Exception as error:  # one bad item must never end the evaluation; its reason is reported
        path = getattr(error, "path", current)
        reason = getattr(error, "problem", None) or f"{type(error).__name__}: {error}"
        return ItemScore(item, None, error=reason, error_path=str(path))


def _score_job(job: tuple[EvaluationItem, AudioConfig, bool]) -> ItemScore:
    item, config, keep_tracks = job
    return score_item(item, config, keep_tracks=keep_tracks)


def _init_worker() -> None:
    # Each process scores whole items; intra-op threads would only fight over the cores.
    torch.set_num_threads(1)


def _warm_up(config: AudioConfig) -> None:
    """Run the analysis once on a tone, so forked workers inherit loaded libraries and caches."""
    samples = max(config.sample_rate // 4, 2 * config.n_fft)
    tone = (0.5 * np.sin(2 * np.pi * 200.0 * np.arange(samples) / config.sample_rate)).astype(np.float32)
    utterance_prosody(tone, config.sample_rate, config=config)


def score_items(
    items: list[EvaluationItem],
    config: AudioConfig,
    *,
    num_workers: int = 2,
    keep_tracks: int = 0,
    progress: bool | None = False,
) -> list[ItemScore]:
    """Score ``items`` with ``num_workers`` processes; results follow the input order.

    Args:
        items: what to score.
        config: the analysis.
        num_workers: worker processes (the platform's default start method, one torch thread each,
            as in feature extraction); ``<= 1`` scores in this process.
        keep_tracks: keep F0 tracks for the first this many *paired* items.
        progress: a tqdm bar on stderr: True always, False never, None when stderr is a terminal.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
    paired_seen = 0
    jobs = []
    for item in items:
        keep = item.paired and paired_seen < keep_tracks
        paired_seen += int(item.paired)
        jobs.append((item, config, keep))
    bar = tqdm(
        total=len(jobs),
        desc="scoring",
        unit="item",
        file=sys.stderr,
        leave=False,
        disable=None if progress is None else not progress,
    )
    with bar:
        if num_workers <= 1 or len(jobs) <= 1:
            return [_score_job(job) for job in _bar_over(jobs, bar)]
        context = multiprocessing.get_context()
        if context.get_start_method() == "fork":
            _warm_up(config)
        with context.Pool(processes=min(num_workers, len(jobs)), initializer=_init_worker) as pool:
            # imap keeps the input order whatever order the workers finish in
            return list(_bar_over(pool.imap(_score_job, jobs, chunksize=1), bar))


def _bar_over(items, bar):
    """Yield ``items``, advancing ``bar`` after each."""
    for item in items:
        yield item
        bar.update()
