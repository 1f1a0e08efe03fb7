"""Data subcommands (``make-corpus``, ``prepare``, ``check-corpus``) and the ``demo``."""

from __future__ import annotations

import argparse
from pathlib import Path

from prosody_vae.cli._registry import command


def _make_corpus_arguments(p: argparse.ArgumentParser) -> None:
    # Every setting defaults to None, "not given": then --config's value, else build_corpus's default
    # (named in the help), so that a flag overrides the file only when it is on the command line.
    # The choices are spelled out here: importing the corpus code would load the audio libraries.
    p.add_argument("--out", type=Path, default=Path("data/espeak_prosody/corpus"), help="corpus folder")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="corpus YAML (e.g. egs/espeak_prosody/conf/corpus.yaml) with any of n_utterances, seed, "
        "multi_speaker, num_workers, held_out_fraction, voices, held_out_voices, intonation, "
        "question_rise, texts_per_setting; a flag "
        "given here wins over the file",
    )
    p.add_argument("--n", type=int, default=None, help="number of utterances (default: 1200)")
    p.add_argument(
        "--seed", type=int, default=None, help="seed of the sentence and prosody plan (default: 0)"
    )
    p.add_argument(
        "--multi-speaker",
        action="store_true",
        default=None,
        help="draw the voice from en-us and three of its variants instead of en-us alone",
    )
    p.add_argument(
        "--voices",
        default=None,
        help="training voices, comma-separated, e.g. en-us,en-us+f4 (default: en-us; not with "
        "--multi-speaker)",
    )
    p.add_argument(
        "--held-out-voices",
        default=None,
        help="voices kept out of training entirely, comma-separated (default: none)",
    )
    p.add_argument(
        "--intonation",
        choices=["tune", "contour"],
        default=None,
        help="tune: espeak-ng's own, range-scaled (the default corpus); contour: a stylised per-word "
        "contour with a peak-position factor (default: tune)",
    )
    p.add_argument(
        "--question-rise",
        type=int,
        default=None,
        help="espeak-ng pitch units (0-40, about 0.2 semitones each) added to the last word of every "
        "question, so that questions clearly end in a rise (default: 0)",
    )
    p.add_argument(
        "--texts-per-setting",
        type=int,
        default=None,
        help="speak each draw of voice and prosody with this many different sentences, grouped by the "
        "label setting_group, for paired-reference training (default: 1)",
    )
    p.add_argument(
        "--held-out-fraction",
        type=float,
        default=None,
        help="share of utterances that speak a held-out sentence (default: 0.05)",
    )
    p.add_argument("--num-workers", type=int, default=None, help="worker processes (default: 2)")


@command(
    "make-corpus",
    help="synthesise the built-in espeak-ng corpus with known prosody labels",
    arguments=_make_corpus_arguments,
)
def make_corpus(args: argparse.Namespace) -> int:
    from prosody_vae.cli._registry import progress
    from prosody_vae.data.espeak.corpus_config import resolve_corpus_settings
    from prosody_vae.data.espeak.synthesis import build_corpus

    flags = {
        "n_utterances": args.n,
        "seed": args.seed,
        "multi_speaker": args.multi_speaker,
        "voices": args.voices,
        "held_out_voices": args.held_out_voices,
        "intonation": args.intonation,
        "question_rise": args.question_rise,
        "texts_per_setting": args.texts_per_setting,
        "held_out_fraction": args.held_out_fraction,
        "num_workers": args.num_workers,
    }
    settings = resolve_corpus_settings(args.config, flags)
    manifest = build_corpus(args.out, progress=progress(args), **settings)
    print(f"corpus manifest: {manifest}")
    return 0


def _prepare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--corpus",
        required=True,
        choices=["ljspeech", "vctk", "kaldi", "filelist", "blizzard2013", "manifest"],
        help="the corpus's layout (manifest: our JSON-lines format, e.g. make-corpus's manifest.jsonl)",
    )
    p.add_argument("--root", required=True, type=Path, help="corpus folder, or a manifest/filelist path")
    p.add_argument("--out", required=True, type=Path, help="prepared data folder (features, splits)")
    p.add_argument("--num-workers", type=int, default=2, help="feature extraction processes")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="experiment YAML whose audio section and text.tokenizer the data is prepared for "
        "(default: the built-in audio config and the phonemes tokenizer)",
    )
    p.add_argument(
        "--tokenizer",
        choices=["phonemes", "characters"],
        default=None,
        help="tokenizer whose unreadable transcripts are dropped (default: --config's, else phonemes)",
    )
    p.add_argument(
        "--f0",
        choices=["harvest", "harvest-decimated", "none"],
        default=None,
        help="F0 track of the feature cache: harvest (the labels' and metrics' tracker, about 7x real "
        "time per core), harvest-decimated (Harvest at 4 kHz, about 1.7x as fast, close to harvest), "
        "none (no F0, several hundred times real time; a pitch model cannot train on it). "
        "Default: the tracker --out was prepared with; for a new --out, harvest, or none when "
        "--config's model needs no F0 (neither backbone.pitch nor prosody.reference_pitch). With "
        "harvest, a manifest corpus's stored tracks (f0/ beside it, written by make-corpus) are reused",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="prepare again: rerun every stage; when --out was prepared from different input, first "
        "delete its manifest, features and splits",
    )


@command(
    "prepare",
    help="read a corpus, validate it, extract features and write splits",
    arguments=_prepare_arguments,
)
def prepare(args: argparse.Namespace) -> int:
    from prosody_vae.config import AudioConfig, load_config
    from prosody_vae.data import prepare_corpus
    from prosody_vae.data.prepare import prepared_f0_tracker

    audio, tokenizer, f0_tracker = AudioConfig(), "phonemes", "harvest"
    if args.config is not None:
        config = load_config(args.config)
        audio, tokenizer = config.audio, config.text.tokenizer
        # F0 is nearly all of the preparation's cost, and only a pitch-predicting decoder or a
        # posterior that reads the reference's F0 needs it.
        if not (config.backbone.pitch or config.prosody.reference_pitch):
            f0_tracker = "none"
    if args.f0 is None:
        earlier = prepared_f0_tracker(args.out)  # a folder prepared before keeps its tracker
        if earlier is not None:
            f0_tracker = earlier
        elif f0_tracker == "none":
            print(
                f"[prepare] --f0 none: {args.config} neither predicts pitch (backbone.pitch) nor reads "
                "the reference's F0 (prosody.reference_pitch), so the features get no F0; pass --f0 "
                "harvest to extract it anyway"
            )
    if args.num_workers < 0:
        raise ValueError(f"--num-workers must be >= 0, got {args.num_workers}")
    prepare_corpus(
        corpus=args.corpus,
        root=args.root,
        out=args.out,
        config=audio,
        num_workers=args.num_workers,
        tokenizer=args.tokenizer or tokenizer,
        f0_tracker=args.f0 or f0_tracker,
        force=args.force,
    )
    return 0


def _check_corpus_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("corpus_check"), help="working folder")
    p.add_argument("--n", type=int, default=300, help="utterances to synthesise")
    p.add_argument("--seed", type=int, default=0, help="seed of the sentence and prosody plan")
    p.add_argument("--num-workers", type=int, default=2, help="espeak-ng and feature processes")


@command(
    "check-corpus",
    help="build a small built-in corpus, prepare it, and check its prosody labels by measurement",
    arguments=_check_corpus_arguments,
)
def check_corpus(args: argparse.Namespace) -> int:
    from prosody_vae.data.espeak.check import check_corpus as run_check

    run_check(args.out, n_utterances=args.n, seed=args.seed, num_workers=args.num_workers)
    return 0


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    from prosody_vae.demo.styles import STYLES

    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    p.add_argument(
        "--model",
        "--checkpoint",
        dest="model",
        type=Path,
        default=None,
        help="packed model or training checkpoint (default: the shipped model)",
    )
    p.add_argument(
        "--styles",
        default=None,
        help=f"comma-separated reference styles (default: all of {','.join(s.name for s in STYLES)})",
    )
    p.add_argument("--targets", type=int, default=2, help="new sentences per reference")
    p.add_argument("--samples", type=int, default=3, help="prior samples")
    p.add_argument(
        "--interpolation-steps",
        type=int,
        default=5,
        help="points between the first two styles, ends included",
    )
    p.add_argument("--gl-iters", type=int, default=32, help="Griffin-Lim iterations")
    p.add_argument("--no-figures", action="store_true", help="skip the mel, F0 and alignment figures")
    p.add_argument("--seed", type=int, default=0, help="random seed (prenet dropout, prior samples)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


@command(
    "demo",
    help="transfer, sample and interpolate prosody with the shipped model; write wavs and a report",
    arguments=_demo_arguments,
)
def demo(args: argparse.Namespace) -> int:
    from prosody_vae.cli._registry import progress, set_threads
    from prosody_vae.demo import STYLES, run_demo

    set_threads(args)
    styles = STYLES
    if args.styles:
        known = {s.name: s for s in STYLES}
        names = [n.strip() for n in args.styles.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"--styles: unknown {unknown}; known: {list(known)}")
        styles = tuple(known[n] for n in names)
    result = run_demo(
        args.out,
        model=args.model,
        styles=styles,
        n_targets=args.targets,
        n_samples=args.samples,
        interpolation_steps=args.interpolation_steps,
        gl_iters=args.gl_iters,
        figures=not args.no_figures,
        seed=args.seed,
        progress=progress(args),
    )
    from prosody_vae.demo.run import DEFAULT_VOICE, VOICE_CLIPS

    own = {s.name for s in styles if s.voice == DEFAULT_VOICE}
    n_own = sum(t.source in own for t in result.transfers)
    print(
        f"transfer fidelity over the {n_own} transfers from {DEFAULT_VOICE} references "
        "(Pearson r, reference vs output):"
    )
    for key, r in result.correlations.items():
        print(f"  {key:>12}: " + (f"{r:+.2f}" if r is not None else "n/a"))
    for voice, hz in result.voice_means.items():
        parts = []
        for style in (s for s in styles if s.voice == voice):
            levels = [
                t.measured["f0_mean_hz"] for t in result.transfers if t.source == style.name and t.measured
            ]
            if levels:
                parts.append(f"{style.name} -> {sum(levels) / len(levels):.0f} Hz")
        print(
            f"a voice it never heard, {voice} (mean F0 {hz:.0f} Hz from {VOICE_CLIPS} other clips): "
            + ", ".join(parts)
        )
    print(f"report: {args.out / 'report.md'} and {args.out / 'report.html'}; wavs under {args.out}")
    return 0
