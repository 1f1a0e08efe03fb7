#!/usr/bin/env python3
"""Does prosody transfer across voices? Score a multi-voice model on references from other voices.

Two groups of references from the corpus's test split: spoken by *training* voices (not the target
voices) and by the *held-out* voices (``held_out_voice`` = 1, never seen in training). Each group has
``--n`` references spread evenly over ``--voices`` voices (so each voice's mean, which the
speaker-normalised correlations subtract, rests on more than one reference). Every reference is
transferred into each of the ``--targets`` voices, speaking a *different* held-out sentence, under
two conditions: with the reference's transcript and without it (the model's null text summary). The
posterior reads the reference's voice when it is a training voice and the unknown voice otherwise.
The baseline speaks the same sentences in the same target voices with prosody drawn from the prior.

A model that reads the reference's F0 relative to its voice (``prosody.reference_pitch_relative``) is
told a held-out voice's mean F0 as a user would tell it: measured on up to ``--voice-clips`` *other*
test-split recordings of that voice (never the reference itself). It then also runs a fourth
condition, "no voice F0", in which the voice's mean is left to the model (the reference's own mean):
what knowing the voice buys. For references from training voices it runs "voice not named"
instead: the voice's mean F0 from the model's table, but the posterior told "unknown voice", as it is
for every held-out voice; what naming a known voice buys beyond its mean F0. A model that also
predicts F0 runs "reference's pitch": the transcript condition with ``pitch_level="reference"``, the
output's F0 moved to the reference voice's register (Capacitron's V+T behaviour); its *raw* r is the
one that condition is for, as the target voice's register is given up. Every condition transfers with the
default timing (:meth:`~prosody_vae.inference.synthesizer.Synthesizer.transfer`): for a model with a
length model (``prosody.utterance_length``) and a transcript, the reference's measured pace; such a
model also runs "timing from z", the transcript condition with the length the rate z implies. A model
that estimates a reference's text from its audio (``prosody.spoken_length``) takes the reference's pace
without a transcript too, and runs "no transcript, timing from z" beside it.

Outputs and references are measured by one analysis (:func:`prosody_vae.data.espeak.measure_prosody`,
phones per second counted as :mod:`recipes.transfer_eval` counts them), and scored with
:mod:`prosody_vae.evaluation.speakers`: raw and speaker-normalised Pearson r for F0 level, F0 spread
and speaking rate, the tempo (the rate relative to each sentence's neutral duration,
:mod:`prosody_vae.evaluation.tempo`: the rate without the sentences' own timing), and the identity check (share of outputs whose F0 level lies inside the target
voice's natural range). A target voice's natural range is taken from up to ``--n`` of its own
test-split recordings, measured the same way. F0 spread is the cleaned track's (``intonation=True``:
octave slips repaired, docs/corpus.md), F0 level and rate the plain analysis's.

A reference voice's mean, which the speaker-normalised r subtracts, is by default taken over all of
that voice's recordings in the corpus (every split; the corpus labels are the same analysis), not over
the few evaluated references: five references of a voice whose level varies by 3 semitones put its
mean 1.4 semitones off (s.d.), an offset for all of its pairs (:mod:`prosody_vae.evaluation.speakers`).
``--voice-means references`` takes the evaluated references' mean instead; the table reports both.

    .venv/bin/python recipes/cross_voice_eval.py --checkpoint exp/espeak_multivoice/checkpoints/step_3000.pt \
        --corpus data/espeak_multivoice/prepared --n 12 --out exp/cross_voice
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import tempfile
import time
import warnings
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import torch

from prosody_vae.atomic import write_text_atomic
from prosody_vae.audio import load_audio, process_audio
from prosody_vae.audio.vocoders import load_vocoder, vocode
from prosody_vae.data.espeak import corpus_question_rise, measure_prosody, phonemes, synthesize_with_settings
from prosody_vae.data.espeak.labels import track_labels
from prosody_vae.data.manifest import Utterance, read_manifest
from prosody_vae.evaluation.speakers import (
    NORMALISED_QUANTITIES,
    CrossVoiceItem,
    cross_voice_correlations,
    identity_check,
    recording_means,
)
from prosody_vae.evaluation.tempo import tempo
from prosody_vae.inference.synthesizer import Synthesizer
from prosody_vae.metrics.intonation import track_f0, warm_up_trackers

CONDITIONS = (
    "transcript",
    "timing from z",
    "reference's pitch",
    "no transcript",
    "no transcript, timing from z",
    "no voice F0",
    "voice not named",
    "prior",
    "espeak-ng ceiling",
)
GROUPS = ("training voices", "held-out voices")


@cache
def _n_phones(text: str) -> int:
    return len(phonemes(text))


def _measure(audio, synth: Synthesizer, tracker: str, intonation: bool) -> dict[str, float]:
    """:func:`measure_prosody` with Harvest (the corpus's labels), or the same statistics of a pYIN
    track of the same trimmed samples (an independent tracker)."""
    if tracker == "harvest":
        return measure_prosody(audio, config=synth.audio, intonation=intonation)
    config = synth.audio
    wav = (
        process_audio(audio, config.sample_rate, config)
        if isinstance(audio, np.ndarray)
        else load_audio(audio, config)
    )
    f0 = track_f0(wav, config.sample_rate, tracker="pyin", config=config)
    return track_labels(f0, duration_s=wav.shape[0] / config.sample_rate, intonation=intonation)


def _stats(audio, text: str, synth: Synthesizer, tracker: str = "harvest") -> dict[str, float]:
    """Utterance statistics of ``audio`` (a file or samples), with the cleaned track's spread
    ``f0_spread_st``; all nan when it cannot be measured, the spread alone when only it cannot."""
    try:
        measured = _measure(audio, synth, tracker, intonation=True)
    except ValueError:  # AudioError too: e.g. too few voiced frames in an unaligned output
        try:  # too few frames left after cleaning: the level and the rate are still defined
            measured = _measure(audio, synth, tracker, intonation=False) | {"f0_spread_st": math.nan}
        except ValueError:
            return {
                "f0_mean_hz": math.nan,
                "f0_range_st": math.nan,
                "f0_spread_st": math.nan,
                "speaking_rate": math.nan,
                "tempo": math.nan,
                "failed": 1.0,
            }
    measured["speaking_rate"] = _n_phones(text) / max(measured["duration_s"], 1e-3)
    measured["tempo"] = tempo(text, measured["duration_s"], config=synth.audio)
    measured["failed"] = 0.0
    return measured


_LABELLED = ("f0_mean_hz", "f0_range_st", "f0_spread_st", "duration_s")


def _recording_stats(u: Utterance, synth: Synthesizer, tracker: str) -> dict[str, float]:
    """:func:`_stats` of a corpus recording, from its labels when the corpus has them all and the
    tracker is theirs (the corpus labels are the same analysis, :func:`measure_prosody` with
    ``intonation``), else measured."""
    if tracker == "harvest" and all(key in u.labels for key in _LABELLED):
        stats = {key: float(u.labels[key]) for key in _LABELLED}
        stats["speaking_rate"] = _n_phones(u.text) / max(stats["duration_s"], 1e-3)
        stats["tempo"] = tempo(u.text, stats["duration_s"], config=synth.audio)
        return stats
    return _stats(u.audio, u.text, synth, tracker)


def _output_stats(synth: Synthesizer, vocoder, result, text: str, tracker: str) -> dict[str, float]:
    wav = vocode(vocoder, result.mel, result.f0).float().cpu().numpy()
    return _stats(wav, text, synth, tracker)


def _espeak_ceiling(
    ref: Utterance, text: str, target: str, question_rise: int, synth: Synthesizer, tracker: str
) -> dict[str, float] | None:
    """Statistics of espeak-ng speaking ``text`` in the ``target`` voice with the reference's own drawn
    settings (pitch, range, rate, contour, the corpus's question rise): a transfer that carries the
    reference's prosody relative to its voice over exactly, so what the corpus itself allows an
    inter-text transfer to reach. None when the reference has no drawn settings."""
    with tempfile.TemporaryDirectory() as folder:
        path = synthesize_with_settings(
            text, ref.labels, voice=target, question_rise=question_rise, out_path=Path(folder) / "ceiling.wav"
        )
        return None if path is None else _stats(path, text, synth, tracker)


def _voice_recordings(corpus: list[Utterance], voice: str, args: argparse.Namespace) -> list[Utterance]:
    """The recordings of ``voice`` whose mean is the voice's: all of them when the labels serve
    (Harvest), else the first ``--voice-mean-clips`` in a seeded random order (each is measured)."""
    spoken = [u for u in corpus if u.speaker == voice]
    if args.tracker == "harvest":
        return spoken
    order = np.random.default_rng(zlib.crc32(voice.encode())).permutation(len(spoken))
    return [spoken[i] for i in order[: args.voice_mean_clips]]


def _pick(
    utterances: list[Utterance], voices: list[str], n: int, rng: np.random.Generator
) -> list[Utterance]:
    """``n`` utterances spread evenly over ``voices`` (round robin, random within a voice)."""
    pools = {v: [u for u in utterances if u.speaker == v] for v in voices}
    for v in voices:
        pools[v] = [pools[v][i] for i in rng.permutation(len(pools[v]))]
    chosen: list[Utterance] = []
    while len(chosen) < n and any(pools.values()):
        for v in voices:
            if pools[v] and len(chosen) < n:
                chosen.append(pools[v].pop())
    return chosen


def _fmt(value: float, digits: str = "+.2f") -> str:
    return "–" if value is None or not math.isfinite(value) else format(value, digits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, default=Path("data/espeak_multivoice/prepared"))
    parser.add_argument("--n", type=int, default=12, help="references per group")
    parser.add_argument("--voices", type=int, default=4, help="reference voices per group")
    parser.add_argument("--targets", nargs=2, default=None, help="two training voices (default: first two)")
    parser.add_argument(
        "--voice-clips",
        type=int,
        default=5,
        help="other recordings of a held-out voice that give its mean F0 (relative-pitch models)",
    )
    parser.add_argument(
        "--voice-means",
        choices=("recordings", "references"),
        default="recordings",
        help="a reference voice's mean: over all its recordings in the corpus (default), or over the "
        "evaluated references only (a few per voice: a noisy mean, reported alongside either way)",
    )
    parser.add_argument(
        "--tracker",
        choices=("harvest", "pyin"),
        default="harvest",
        help="F0 tracker of every measurement: Harvest (the corpus labels' and the model's) or librosa's "
        "pYIN, an independent check; with pyin each voice's mean is measured on --voice-mean-clips recordings",
    )
    parser.add_argument(
        "--voice-mean-clips",
        type=int,
        default=30,
        help="recordings per reference voice measured for its mean when the labels cannot serve (pyin)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("exp/cross_voice"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--decoder-timing",
        action="store_true",
        help="leave out the model's length model (prosody.utterance_length): the decoder's own timing",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*did not stop within max_steps")  # counted per output instead
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    started = time.time()

    synth = Synthesizer.from_checkpoint(args.checkpoint)
    synth.length_model = not args.decoder_timing
    if args.tracker == "pyin":
        warm_up_trackers(synth.audio.sample_rate, synth.audio)
    if not synth.speakers:
        raise SystemExit("this recipe needs a multi-speaker model")
    targets = list(args.targets or synth.speakers[:2])
    for voice in targets:
        if voice not in synth.speakers:
            raise SystemExit(f"target {voice!r} is not a training voice of this model: {synth.speakers}")
    vocoder = load_vocoder(None, synth.audio, default=synth.default_vocoder)
    no_transcript = synth.transcript_optional and synth.model.uses_text_summary
    moves_pitch = synth.reads_relative_f0 and synth.predicts_pitch
    if not synth.transcript_optional:
        print("this model needs transcripts: the no-transcript condition is left out")

    test = read_manifest(args.corpus / "splits" / "test.jsonl")
    held_out_voice = [u for u in test if u.labels.get("held_out_voice") == 1.0]
    training_voice = [
        u for u in test if u.labels.get("held_out_voice") != 1.0 and u.speaker in synth.speakers
    ]
    sentences = sorted({u.text for u in test if u.labels.get("held_out_text") == 1.0})
    pools = {
        "training voices": sorted({u.speaker for u in training_voice} - set(targets)),
        "held-out voices": sorted({u.speaker for u in held_out_voice}),
    }
    references = {}
    for group, utterances in (("training voices", training_voice), ("held-out voices", held_out_voice)):
        voices = [str(v) for v in rng.permutation(pools[group])[: args.voices]]
        references[group] = _pick(utterances, voices, args.n, rng)

    question_rise = corpus_question_rise(test[0].audio)

    # each reference voice's mean over all its recordings in the corpus, every split (evaluation.speakers:
    # a few references estimate it poorly, and the error is an offset for all of the voice's pairs)
    corpus = [u for split in sorted((args.corpus / "splits").glob("*.jsonl")) for u in read_manifest(split)]
    recordings = {
        voice: [_recording_stats(u, synth, args.tracker) for u in _voice_recordings(corpus, voice, args)]
        for voice in sorted({u.speaker for group in GROUPS for u in references[group]})
    }
    corpus_means = recording_means(recordings)
    reference_means = corpus_means if args.voice_means == "recordings" else None

    # the target voices' natural recordings: reference side only, they define each voice's range
    anchors = []
    for voice in targets:
        for u in _pick([u for u in test if u.speaker == voice], [voice], args.n, rng):
            anchors.append(
                CrossVoiceItem(str(u.audio), voice, voice, _stats(u.audio, u.text, synth, args.tracker), {})
            )

    def voice_f0(ref: Utterance) -> float | None:
        """A held-out voice's mean F0 from its other recordings (relative-pitch models), else None."""
        if not synth.reads_relative_f0 or ref.speaker in synth.speakers:
            return None
        others = [u for u in test if u.speaker == ref.speaker and u.id != ref.id]
        chosen = [
            others[i] for i in np.random.default_rng(zlib.crc32(ref.id.encode())).permutation(len(others))
        ]
        return synth.voice_f0([u.audio for u in chosen[: args.voice_clips]])

    items: dict[tuple[str, str], list[CrossVoiceItem]] = {(g, c): [] for g in GROUPS for c in CONDITIONS}
    rows = []
    for group in GROUPS:
        for ref in references[group]:
            ref_stats = _stats(ref.audio, ref.text, synth, args.tracker)
            posterior_voice = ref.speaker if ref.speaker in synth.speakers else None
            ref_voice_f0 = voice_f0(ref)
            for target in targets:
                text = next(t for t in rng.permutation(sentences) if t != ref.text)
                # the transcript condition's options; each other condition changes some (call keywords win)
                transfer = functools.partial(
                    synth.transfer,
                    text,
                    ref.audio,
                    reference_text=ref.text,
                    speaker=target,
                    reference_speaker=posterior_voice,
                    reference_voice_f0=ref_voice_f0,
                )

                outputs = {"transcript": transfer(), "prior": synth.sample(text, 1, speaker=target)[0]}
                if synth.resamples_to_length:
                    outputs["timing from z"] = transfer(timing="z")
                if moves_pitch:
                    outputs["reference's pitch"] = transfer(pitch_level="reference")
                if synth.reads_relative_f0 and posterior_voice is not None:
                    table = synth.model.voice_pitch.voice_f0_hz[synth.speakers.index(posterior_voice)]
                    outputs["voice not named"] = transfer(
                        reference_speaker=None, reference_voice_f0=float(table)
                    )
                if ref_voice_f0 is not None:
                    outputs["no voice F0"] = transfer(reference_voice_f0=None)
                if no_transcript:
                    outputs["no transcript"] = transfer(reference_text=None)
                    if synth.reads_pace_without_transcript:
                        outputs["no transcript, timing from z"] = transfer(reference_text=None, timing="z")
                measured_outputs = {
                    condition: (
                        _output_stats(synth, vocoder, result, text, args.tracker),
                        int(result.mel.shape[0]),
                        result.stopped,
                    )
                    for condition, result in outputs.items()
                }
                ceiling = _espeak_ceiling(ref, text, target, question_rise, synth, args.tracker)
                if ceiling is not None:
                    measured_outputs["espeak-ng ceiling"] = (ceiling, 0, True)
                for condition, (out_stats, frames, stopped) in measured_outputs.items():
                    items[(group, condition)].append(
                        CrossVoiceItem(str(ref.audio), ref.speaker, target, ref_stats, out_stats)
                    )
                    rows.append(
                        {
                            "group": group,
                            "condition": condition,
                            "reference": ref.id,
                            "reference_voice": ref.speaker,
                            "target_voice": target,
                            "text": text,
                            "frames": frames,
                            "stopped": bool(stopped),
                            "reference_stats": ref_stats,
                            "output_stats": out_stats,
                        }
                    )
            print(f"{group}: {ref.id} ({ref.speaker}) done, {time.time() - started:.0f} s", flush=True)

    summary = {
        "checkpoint": str(args.checkpoint),
        "targets": targets,
        "n": args.n,
        "seed": args.seed,
        "reference_voices": {g: sorted({u.speaker for u in references[g]}) for g in GROUPS},
        "voice_means": args.voice_means,
        "tracker": args.tracker,
        "length_model": synth.resamples_to_length,
        "voice_recordings": {voice: len(stats) for voice, stats in recordings.items()},
        "results": {},
        "items": rows,
    }
    header = (
        "| group | condition | measured | stopped | "
        + " | ".join(f"{label} raw r | {label} norm. r" for _, label, _, _ in NORMALISED_QUANTITIES)
        + " | F0 level inside target range | nearer target than ref. voice |"
    )
    lines = [
        f"Checkpoint `{args.checkpoint}`; targets {', '.join(f'`{t}`' for t in targets)}; "
        f"{args.n} references per group, each into both targets. A reference voice's mean (norm. r): "
        + (
            "over its recordings in the corpus ("
            + ", ".join(f"{v} {n}" for v, n in summary["voice_recordings"].items())
            + ")."
            if args.voice_means == "recordings"
            else "over the evaluated references of that voice."
        )
        + f" F0 tracker: {args.tracker}. F0 spread: the cleaned track's 10-90 percentile range.",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for group in GROUPS:
        for condition in CONDITIONS:
            group_items = items[(group, condition)]
            if not group_items:
                continue
            measured = [i for i in group_items if not i.output_stats.get("failed")]
            stopped = sum(r["stopped"] for r in rows if r["group"] == group and r["condition"] == condition)
            corr = (
                cross_voice_correlations(measured, reference_means=reference_means)
                if len(measured) >= 3
                else None
            )
            # the other choice of voice means, for comparison
            other = (
                cross_voice_correlations(
                    measured, reference_means=None if reference_means is not None else corpus_means
                )
                if len(measured) >= 3
                else None
            )
            ident = identity_check(measured + anchors) if measured else None
            result = {
                "n_outputs": len(group_items),
                "n_measured": len(measured),
                "n_stopped": stopped,
                "raw": {k: corr.raw[k]._asdict() for k, *_ in NORMALISED_QUANTITIES} if corr else None,
                "normalised": {k: corr.pooled[k]._asdict() for k, *_ in NORMALISED_QUANTITIES}
                if corr
                else None,
                "normalised_other_voice_means": {
                    k: other.pooled[k]._asdict() for k, *_ in NORMALISED_QUANTITIES
                }
                if other
                else None,
                "identity": ident._asdict() if ident else None,
                # within each reference voice (x and y centred as in the pooled figure): a pooled r
                # below these says the voices' outputs sit at different offsets
                "by_reference_voice": {
                    voice: {k: corr.by_reference_voice[voice][k]._asdict() for k, *_ in NORMALISED_QUANTITIES}
                    for voice in corr.by_reference_voice
                }
                if corr
                else None,
            }
            summary["results"][f"{group} / {condition}"] = result
            cells = []
            for key, *_ in NORMALISED_QUANTITIES:
                cells.append(_fmt(corr.raw[key].r) if corr else "–")
                cells.append(_fmt(corr.pooled[key].r) if corr else "–")
            inside = f"{_fmt(ident.inside_range, '.2f')} (n={ident.n_range})" if ident else "–"
            nearer = f"{_fmt(ident.nearer_target, '.2f')} (n={ident.n_nearer})" if ident else "–"
            lines.append(
                f"| {group} | {condition} | {len(measured)}/{len(group_items)} | {stopped}/{len(group_items)} | "
                + " | ".join(cells)
                + f" | {inside} | {nearer} |"
            )
    other_name = "the evaluated references" if args.voice_means == "recordings" else "all its recordings"
    lines += [
        "",
        f"Norm. r with each reference voice's mean over {other_name} instead:",
        "",
        "| group | condition | "
        + " | ".join(f"{label} norm. r" for _, label, _, _ in NORMALISED_QUANTITIES)
        + " |",
        "|" + "---|" * (len(NORMALISED_QUANTITIES) + 2),
    ]
    for key_name, result in summary["results"].items():
        other = result["normalised_other_voice_means"]
        if other:
            group, condition = key_name.split(" / ")
            cells = " | ".join(_fmt(other[k]["r"]) for k, *_ in NORMALISED_QUANTITIES)
            lines.append(f"| {group} | {condition} | {cells} |")
    # per reference voice, transcribed transfer: r within the voice, and the voice's mean output offset
    lines += [
        "",
        "Within each reference voice (transcript condition, both targets): Pearson r of each quantity over n outputs.",
        "",
    ]
    lines += [
        "| group | reference voice | "
        + " | ".join(f"{label} r" for _, label, _, _ in NORMALISED_QUANTITIES)
        + " | n |"
    ]
    lines += ["|" + "---|" * (len(NORMALISED_QUANTITIES) + 3)]
    for group in GROUPS:
        by_voice = (summary["results"].get(f"{group} / transcript") or {}).get("by_reference_voice") or {}
        for voice, corr_of in by_voice.items():
            cells = " | ".join(_fmt(corr_of[k]["r"]) for k, *_ in NORMALISED_QUANTITIES)
            n = next(iter(corr_of.values()))["n"]
            lines.append(f"| {group} | {voice} | {cells} | {n} |")
    table = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    write_text_atomic(args.out / "table.md", table)
    print(table)
    print(f"wrote {args.out / 'summary.json'} and {args.out / 'table.md'} in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
