"""Synthesis subcommands: ``transfer``, ``sample``, ``interpolate``, ``traverse`` and ``embed``.

Every synthesis command writes wavs (Griffin-Lim, or ``--vocoder model.ts``), with ``--plot`` the
figures beside them, and, when it writes a folder, a ``manifest.jsonl`` in the synthesis manifest
format (:mod:`prosody_vae.inference.references`, :mod:`prosody_vae.inference.writer`). A reference
that had to be resampled or mixed to mono is used with a ``notice:`` line on stderr. Without ``--checkpoint`` the commands use the model shipped in
the package (:func:`prosody_vae.inference.packed.builtin_model_path`), and say so on stderr. A
reference without ``--reference-text`` has its transcript read from ``<name>.txt`` beside it when the
model reads one (the demo writes its references that way); with neither, a model trained with
``prosody.text_summary_dropout`` embeds it without a transcript, and any other stops with an error
naming ``--reference-text``. ``transfer --reference-speaker`` names the reference's voice when it is
one of a multi-speaker model's speakers (``--speaker`` is the voice to speak in); for a model that reads
the reference's F0 relative to its voice, ``--reference-voice-f0 HZ`` or ``--reference-voice-clips``
(other recordings of that voice) give the mean F0 of a voice outside them.

Outputs are written atomically. A command that writes a folder never overwrites a file in it: a
second run into the same folder writes ``<name>_2.wav``, ... and adds its rows to the folder's
``manifest.jsonl`` (:mod:`prosody_vae.inference.writer`). ``transfer --batch`` and ``embed`` go on
past a bad line or reference and end with ``N of M ..., K skipped``; the exit status is then 1, or 0
with ``--keep-going``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from prosody_vae.atomic import atomic_path, reserve_path, write_text_atomic
from prosody_vae.cli._registry import command, model_path, progress_bar, set_threads, timed
from prosody_vae.errors import one_line


# ---------------------------------------------------------------------------------------- options
def _model_options(p: argparse.ArgumentParser, *, decodes: bool = True) -> None:
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="training checkpoint or packed model (default: the shipped model, "
        "prosody_vae/assets/espeak_prosody.pt)",
    )
    p.add_argument(
        "--speaker",
        default=None,
        help="the voice to speak in (multi-speaker models; default: the model's default voice, when it has one)",
    )
    p.add_argument("--device", default="cpu", help="torch device the model runs on")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    if not decodes:
        return
    p.add_argument(
        "--precision",
        choices=["fp32", "bf16", "int8"],
        default="fp32",
        help="decoder arithmetic: fp32 (exact), or bf16 / int8 copies of the decoder LSTM weights, faster "
        "for large decoders and close to fp32 (int8: CPU only; docs/benchmarks.md)",
    )
    p.add_argument(
        "--decoder-timing",
        action="store_true",
        help="keep the decoder's own timing; by default a model with a length model "
        "(prosody.utterance_length) has each output resampled to the length it predicts (docs/transfer.md)",
    )


def _keep_going_option(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("--keep-going", action="store_true", help=f"{text} (default: exit 1 then)")


def _output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plot", action="store_true", help="also write alignment, mel and F0 figures")
    p.add_argument(
        "--vocoder",
        default=None,
        help="world, griffin-lim, a HiFi-GAN generator checkpoint (config.json beside it) or a TorchScript "
        "vocoder declaring its audio parameters (docs/vocoder.md); default: world for a model that predicts "
        "pitch, else griffin-lim",
    )
    p.add_argument("--gl-iters", type=int, default=32, help="Griffin-Lim iterations")


def _synthesis_options(p: argparse.ArgumentParser, *, text_required: bool = True) -> None:
    _model_options(p)
    p.add_argument("--text", required=text_required, help="text to speak")
    _output_options(p)


def _transfer_arguments(p: argparse.ArgumentParser) -> None:
    _synthesis_options(p, text_required=False)
    p.add_argument("--reference", type=Path, default=None, help="reference audio (wav/flac/ogg)")
    p.add_argument(
        "--reference-text",
        default=None,
        help="transcript of the reference, for models with a text summary (default: <name>.txt beside it; "
        "without either, models trained with prosody.text_summary_dropout embed the reference without one)",
    )
    p.add_argument(
        "--no-reference-text",
        action="store_true",
        help="embed the reference without a transcript even when one is given or beside it "
        "(models trained with prosody.text_summary_dropout)",
    )
    p.add_argument(
        "--reference-speaker",
        default=None,
        help="the voice that spoke the reference, when it is one of the model's speakers (multi-speaker "
        "models; default: a voice the model does not know)",
    )
    voice = p.add_mutually_exclusive_group()
    voice.add_argument(
        "--reference-voice-f0",
        type=float,
        default=None,
        metavar="HZ",
        help="mean F0 of the reference's voice, for models that read F0 relative to the voice "
        "(prosody.reference_pitch_relative; default: the model's own figure for a --reference-speaker, "
        "else the reference's own mean, which keeps the contour but not the level)",
    )
    voice.add_argument(
        "--reference-voice-clips",
        type=Path,
        nargs="+",
        default=None,
        metavar="AUDIO",
        help="other recordings of the reference's voice; their mean F0 is --reference-voice-f0",
    )
    p.add_argument(
        "--pitch-level",
        choices=("target", "reference"),
        default="target",
        help="target: the reference's pitch relative to its voice, rendered in the target voice's register "
        "(the voice keeps its identity); reference: the output's F0 moved to the reference voice's own "
        "register (multi-speaker models that predict F0 and read it relative to the voice)",
    )
    p.add_argument(
        "--timing",
        choices=("auto", "z", "reference"),
        default="auto",
        help="z: the output lasts as the speaking rate z carries implies; reference: as the reference's "
        "measured pace relative to its voice implies, which leaves out the reference sentence's own "
        "timing (models with a length model; needs the reference's transcript, unless the model "
        "estimates it from the audio: prosody.spoken_length); auto (default): reference where it can "
        "run, else z",
    )
    p.add_argument("--sample", action="store_true", help="sample z from q(z|reference) instead of its mean")
    p.add_argument(
        "--via",
        choices=("zp", "zs"),
        default="zp",
        help="hierarchical models: zp transfers everything the reference gives (up to C_s + C_p nats), "
        "zs only its high-level z_s (up to C_s nats), the rest sampled from p(z_p | z_s)",
    )
    p.add_argument(
        "--temperature", type=float, default=1.0, help="with --via zs: scales the spread of p(z_p | z_s)"
    )
    p.add_argument(
        "--batch",
        type=Path,
        default=None,
        help="file of text<TAB>reference[<TAB>reference_text] lines; --out is then a folder",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (with --sample)")
    p.add_argument(
        "--out", type=Path, default=None, help="output wav (default transfer.wav; a folder with --batch)"
    )
    _keep_going_option(p, "with --batch: exit 0 although some lines were skipped")


def _sample_arguments(p: argparse.ArgumentParser) -> None:
    _synthesis_options(p)
    p.add_argument("--n", type=int, default=5, help="number of renditions")
    p.add_argument("--temperature", type=float, default=1.0, help="scales the prior's standard deviation")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--out", type=Path, default=Path("samples"), help="output folder")
    p.add_argument(
        "--near",
        type=Path,
        default=None,
        help="reference audio: draw from p(z | c) with c its code, variations around it (associative prior)",
    )
    p.add_argument(
        "--style-from",
        type=Path,
        default=None,
        help="reference audio: every rendition shares its high-level z_s, z_p drawn from p(z_p | z_s) "
        "(hierarchical models)",
    )
    p.add_argument(
        "--reference-text",
        default=None,
        help="transcript of --near or --style-from, for models with a text summary "
        "(default: <name>.txt beside it)",
    )
    p.add_argument(
        "--walk",
        type=int,
        default=None,
        metavar="N",
        help="an ancestral walk of N steps through code neighbourhoods instead of --n independent draws, "
        "from --near or a random training code (associative prior)",
    )


def _interpolate_arguments(p: argparse.ArgumentParser) -> None:
    _synthesis_options(p)
    p.add_argument("--from", dest="start", required=True, type=Path, help="reference at the start")
    p.add_argument("--to", dest="end", required=True, type=Path, help="reference at the end")
    p.add_argument(
        "--from-text", dest="start_text", default=None, help="transcript of --from (default: <name>.txt)"
    )
    p.add_argument(
        "--to-text", dest="end_text", default=None, help="transcript of --to (default: <name>.txt)"
    )
    p.add_argument("--steps", type=int, default=5, help="outputs, both ends included")
    p.add_argument(
        "--method",
        choices=["linear", "slerp"],
        default="linear",
        help="straight line or great circle between the two posterior means",
    )
    p.add_argument("--out", type=Path, default=Path("interpolation"), help="output folder")


def _traverse_arguments(p: argparse.ArgumentParser) -> None:
    _synthesis_options(p)
    p.add_argument(
        "--dim", type=int, required=True, help="rank of the dimension by activity (0 = the most active)"
    )
    p.add_argument("--reference", type=Path, default=None, help="start from this reference (default: z = 0)")
    p.add_argument(
        "--reference-text", default=None, help="transcript of --reference (default: <name>.txt beside it)"
    )
    p.add_argument(
        "--values",
        default=None,
        help="comma-separated offsets, e.g. --values=-2,-1,0,1,2 (with = when the first is negative)",
    )
    p.add_argument("--steps", type=int, default=5, help="evenly spaced offsets (without --values)")
    p.add_argument("--span", type=float, default=2.0, help="offsets run from -span to +span")
    p.add_argument(
        "--activity-from",
        nargs="+",
        default=None,
        help="references to measure activity on (audio files, folders, lists, manifests); "
        "default: the checkpoint's validation split",
    )
    p.add_argument("--out", type=Path, default=Path("traverse"), help="output folder")


def _embed_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("references", nargs="+", help="audio files, folders, list files or manifests")
    _model_options(p, decodes=False)
    p.add_argument(
        "--reference-text",
        default=None,
        help="transcript (a single reference only; others: <name>.txt beside the audio, or a manifest)",
    )
    p.add_argument("--out", type=Path, default=Path("embeddings.npz"), help="output .npz file")
    _keep_going_option(p, "exit 0 although some references were skipped")


# ---------------------------------------------------------------------------------------- helpers
def _transfer_options(args: argparse.Namespace) -> dict:
    """The options of ``Synthesizer.transfer`` that ``transfer`` and ``transfer --batch`` share."""
    return {
        "speaker": args.speaker,
        "reference_speaker": args.reference_speaker,
        "reference_voice_f0": args.reference_voice_f0,
        "sample": args.sample,
        "via": args.via,
        "temperature": args.temperature,
        "pitch_level": args.pitch_level,
        "timing": args.timing,
    }


def _with_notices(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Show each :class:`ReferenceNotice` (a reference converted or shortened) and
    :class:`~prosody_vae.text.tokenizers.TextNotice` (markup stripped from a text) once as
    ``notice: ...`` on stderr while ``run`` runs."""

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        from prosody_vae.inference.synthesizer import ReferenceNotice
        from prosody_vae.text.tokenizers import TextNotice

        notices = (ReferenceNotice, TextNotice)
        with warnings.catch_warnings():
            for notice in notices:
                warnings.simplefilter("always", notice)
            previous = warnings.showwarning
            shown: set[str] = set()  # a reference read again for a figure is noticed once

            def show(message, category, *rest, **kwargs) -> None:
                if issubclass(category, notices):
                    if str(message) not in shown:
                        shown.add(str(message))
                        print(f"notice: {message}", file=sys.stderr)
                else:
                    previous(message, category, *rest, **kwargs)

            warnings.showwarning = show
            return run(args)

    return wrapped


def _load(args: argparse.Namespace, *, text: str | None = None):
    """The synthesizer (speaker and text checked up front, before any reference is read)."""
    import torch

    from prosody_vae.devices import resolve_device
    from prosody_vae.inference.synthesizer import Synthesizer, reduced_precision

    set_threads(args)
    if text is not None and not text.strip():
        raise ValueError("--text is empty")
    resolve_device(args.device)  # a missing GPU: one line, before the model is read
    if getattr(args, "seed", None) is not None:
        torch.manual_seed(args.seed)
    path = model_path(args.checkpoint)
    with timed(f"loaded {path}"):
        synth = Synthesizer.from_checkpoint(path, device=args.device)
    synth.precision = getattr(args, "precision", "fp32")
    synth.length_model = not getattr(args, "decoder_timing", False)
    reduced_precision(synth.precision, synth.device)  # int8 on a GPU: one clear error now
    synth.speaker_ids(args.speaker, 1)  # unknown or missing speaker: one clear error now
    if text is not None:
        synth.tokenizer.encode(text)  # empty after normalisation or unknown symbols: TextError
    return synth


def _transcript(
    synth, reference: Path | None, given: str | None, *, option: str = "--reference-text"
) -> str | None:
    """``given``, or for a model that reads one the transcript in ``<name>.txt`` beside ``reference``.

    None when there is neither and the model can do without (trained with
    ``prosody.text_summary_dropout``); a ``ValueError`` naming the reference and ``option`` when it
    cannot.
    """
    from prosody_vae.inference.api import transcript_beside

    if given is not None or reference is None or not synth.model.uses_text_summary:
        return given
    found = transcript_beside(reference)
    if found is None and not synth.transcript_optional:
        raise ValueError(
            f"{reference}: this model needs the reference's transcript (it was trained without "
            f"prosody.text_summary_dropout): pass {option} or write it to {reference.with_suffix('.txt')}"
        )
    return found


def _output_folder(folder: Path) -> Path:
    """``folder`` checked to take outputs and a manifest (:func:`prosody_vae.inference.writer.check_output_folder`)."""
    from prosody_vae.inference.writer import check_output_folder as check

    return check(folder)


def _writer(args: argparse.Namespace, synth):
    from prosody_vae.audio.vocoders import load_vocoder
    from prosody_vae.inference.writer import SynthesisWriter

    vocoder = load_vocoder(args.vocoder, synth.audio, n_iter=args.gl_iters, default=synth.default_vocoder)
    vocoder = vocoder.to(synth.device)
    return SynthesisWriter(synth, vocoder, plot=args.plot)


def _finish(writer, folder: Path, *, title: str, references=()) -> None:
    writer.summary_figure(folder / "summary_f0.png", title=title, references=references)
    print(f"manifest: {writer.write_manifest(folder)}")


# ---------------------------------------------------------------------------------------- commands
@command(
    "transfer",
    help="speak --text with the prosody of a reference recording (or a --batch file of them)",
    arguments=_transfer_arguments,
)
@_with_notices
def transfer(args: argparse.Namespace) -> int:
    if args.batch is not None:
        if args.text is not None or args.reference is not None:
            raise ValueError("--batch replaces --text and --reference: give one or the other")
        return _transfer_batch(args)
    if args.text is None or args.reference is None:
        raise ValueError("transfer needs --text and --reference (or --batch FILE)")
    if args.out is not None and args.out.is_dir():
        raise IsADirectoryError(
            21, "is a folder; transfer writes one wav: name the file (or use --batch)", str(args.out)
        )
    synth = _load(args, text=args.text)
    _check_reference_options(args, synth)
    writer = _writer(args, synth)
    reference_text = _reference_text(args, synth, args.reference, args.reference_text)
    with timed("transfer (embedding and decoding)"):
        result = synth.transfer(
            args.text,
            args.reference,
            reference_text=reference_text,
            **_transfer_options(args),
        )
    writer.write(
        result,
        args.out or Path("transfer.wav"),
        kind="transfer",
        text=args.text,
        reference=args.reference,
        reference_text=reference_text,
        title="transfer",
        speaker=args.speaker,
        reference_speaker=args.reference_speaker,
    )
    return 0


def _check_reference_options(args: argparse.Namespace, synth) -> None:
    """``--no-reference-text``, ``--reference-speaker`` and ``--via`` checked once, before any
    reference is read."""
    if args.via == "zs" and not synth.hierarchical:
        raise ValueError("--via zs needs a hierarchical model (trained with prosody.hierarchical: true)")
    try:
        synth.check_pitch_level(args.pitch_level)
    except ValueError as error:
        raise ValueError(f"--pitch-level {args.pitch_level}: {error}") from None
    try:
        synth.check_timing(args.timing)
    except ValueError as error:
        raise ValueError(f"--timing {args.timing}: {error}") from None
    if args.timing == "reference" and args.no_reference_text and not synth.reads_pace_without_transcript:
        raise ValueError(
            "--timing reference reads the reference's transcript (this model cannot estimate it from "
            "the audio: it has no prosody.spoken_length): drop --no-reference-text"
        )
    if args.reference_speaker is not None:
        synth.speaker_ids(args.reference_speaker, 1)  # a name the model does not know: one clear error
    if args.reference_voice_f0 is not None or args.reference_voice_clips:
        flag = "--reference-voice-f0" if args.reference_voice_f0 is not None else "--reference-voice-clips"
        if not synth.reads_relative_f0:
            raise ValueError(
                f"{flag}: this model does not read the reference's F0 relative to its voice "
                "(it was trained without prosody.reference_pitch_relative)"
            )
        if args.reference_voice_clips:
            args.reference_voice_f0 = synth.voice_f0(args.reference_voice_clips)
            print(f"reference voice: mean F0 {args.reference_voice_f0:.1f} Hz", file=sys.stderr)
    if args.no_reference_text:
        if args.reference_text is not None:
            raise ValueError("--no-reference-text and --reference-text exclude each other")
        if not synth.transcript_optional:
            raise ValueError(
                "--no-reference-text: this model needs the reference's transcript "
                "(it was trained without prosody.text_summary_dropout)"
            )


def _reference_text(args: argparse.Namespace, synth, reference: Path, given: str | None) -> str | None:
    """The transcript transfer embeds ``reference`` with: none with ``--no-reference-text``, else
    ``given`` or ``<name>.txt`` beside it (see :func:`_transcript`)."""
    text = None if args.no_reference_text else _transcript(synth, reference, given)
    if text is None and args.timing == "reference" and not synth.reads_pace_without_transcript:
        raise ValueError(
            f"{reference}: --timing reference compares the reference's length with its transcript's: "
            f"pass --reference-text or write it to {reference.with_suffix('.txt')}"
        )
    return text


def _transfer_batch(args: argparse.Namespace) -> int:
    """One output per batch line; a bad line or file is reported and skipped, then a summary."""
    from prosody_vae.inference.references import read_batch_file

    lines, problems = read_batch_file(args.batch)
    out = _output_folder(args.out or Path("transfer_batch"))
    synth = _load(args)
    _check_reference_options(args, synth)
    writer = _writer(args, synth)
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    with progress_bar(args, total=len(lines), desc="transfer") as bar:
        for item in lines:
            try:
                reference_text = _reference_text(args, synth, item.reference, item.reference_text)
                result = synth.transfer(
                    item.text,
                    item.reference,
                    reference_text=reference_text,
                    **_transfer_options(args),
                )
                writer.write(
                    result,
                    out / f"{item.line:04d}_{item.reference.stem}.wav",
                    kind="transfer",
                    text=item.text,
                    reference=item.reference,
                    reference_text=reference_text,
                    speaker=args.speaker,
                    reference_speaker=args.reference_speaker,
                    new_name=True,
                )
            except ValueError as error:  # AudioError, TextError, a missing transcript: this line only
                print(f"skipped {args.batch}:{item.line}: {one_line(error)}", file=sys.stderr)
            bar.update()
    total = len(lines) + len(problems)
    if not writer.rows:
        raise ValueError(f"{args.batch}: none of {total} line(s) could be synthesised")
    _finish(writer, out, title="transfer")
    return _partial(args, f"{len(writer.rows)} of {total} line(s) synthesised", total - len(writer.rows))


def _partial(args: argparse.Namespace, done: str, skipped: int) -> int:
    """Print ``<done>, K skipped``; the exit status: 1 when something was skipped, unless --keep-going."""
    print(f"{done}, {skipped} skipped")
    if skipped and not args.keep_going:
        print(f"exit status 1: {skipped} skipped (--keep-going makes that 0)", file=sys.stderr)
        return 1
    return 0


@command("sample", help="speak --text with prosody drawn from the prior", arguments=_sample_arguments)
@_with_notices
def sample(args: argparse.Namespace) -> int:
    _output_folder(args.out)
    synth = _load(args, text=args.text)
    if args.style_from is not None:
        if args.near is not None or args.walk is not None:
            raise ValueError("--style-from excludes --near and --walk")
        if not synth.hierarchical:
            raise ValueError(
                "--style-from needs a hierarchical model (trained with prosody.hierarchical: true)"
            )
    options = {"temperature": args.temperature, "speaker": args.speaker}
    reference = args.style_from if args.style_from is not None else args.near
    reference_text = _transcript(synth, reference, args.reference_text)
    near = {"reference_text": reference_text, **options}
    with timed("decoding"):
        if args.walk is not None:  # a standard-prior model raises a clear ValueError here, before any output
            results = synth.walk(args.text, args.walk, reference=args.near, **near)
            stem, title = "walk", "ancestral walk"
        elif args.near is not None:
            results = synth.sample_near(args.text, args.near, args.n, **near)
            stem, title = "near", f"sample near {args.near.name}"
        elif args.style_from is not None:
            results = synth.sample(
                args.text, args.n, style_from=args.style_from, style_text=reference_text, **options
            )
            stem, title = "style", f"sample in the style of {args.style_from.name}"
        else:
            results = synth.sample(args.text, args.n, **options)
            stem, title = "sample", "prior sample"
    writer = _writer(args, synth)
    # one batched decode made every mel; vocoding and figures take a second or more per output
    with progress_bar(args, total=len(results), desc=stem) as bar:
        for index, result in enumerate(results):
            writer.write(
                result,
                args.out / f"{stem}_{index:02d}.wav",
                new_name=True,
                kind="sample",
                text=args.text,
                reference=reference,
                reference_text=reference_text if reference is not None else None,
                title=f"{title} {index}",
            )
            bar.update()
    references = () if reference is None else (reference,)
    _finish(writer, args.out, title=f"{title}s, temperature {args.temperature:g}", references=references)
    return 0


@command(
    "interpolate",
    help="speak --text with prosody moving from one reference (--from) to another (--to)",
    arguments=_interpolate_arguments,
)
@_with_notices
def interpolate(args: argparse.Namespace) -> int:
    _output_folder(args.out)
    synth = _load(args, text=args.text)
    writer = _writer(args, synth)
    start_text = _transcript(synth, args.start, args.start_text)
    end_text = _transcript(synth, args.end, args.end_text)
    with timed("embedding and decoding"):
        results = synth.interpolate(
            args.text,
            args.start,
            args.end,
            steps=args.steps,
            method=args.method,
            start_text=start_text,
            end_text=end_text,
            speaker=args.speaker,
        )
    with progress_bar(args, total=len(results), desc="interpolate") as bar:
        for index, result in enumerate(results):
            t = index / (len(results) - 1)
            # the manifest has one reference per row: the nearer end of the path
            near, near_text = (args.start, start_text) if t <= 0.5 else (args.end, end_text)
            writer.write(
                result,
                args.out / f"interp_{index:02d}.wav",
                new_name=True,
                kind="interpolate",
                text=args.text,
                reference=near,
                reference_text=near_text,
                title=f"{args.method} t = {t:.2f}",
            )
            bar.update()
    _finish(writer, args.out, title=f"{args.method} interpolation", references=(args.start, args.end))
    return 0


def _traverse_values(args: argparse.Namespace) -> list[float]:
    if args.values is not None:
        try:
            values = [float(v) for v in args.values.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"--values must be comma-separated numbers, got {args.values!r}") from None
        if not values:
            raise ValueError("--values is empty")
        return values
    if args.steps < 1 or args.span < 0:
        raise ValueError(f"--steps must be >= 1 and --span >= 0, got {args.steps} and {args.span}")
    if args.steps == 1:
        return [0.0]
    return [-args.span + 2 * args.span * i / (args.steps - 1) for i in range(args.steps)]


def _activity_references(args: argparse.Namespace, synth):
    """(mels, texts, speakers, f0s, source) of the references that rank the latent dimensions; an f0
    is None where the model's posterior reads no F0 (or the cache has none)."""
    from prosody_vae.data.feature_cache import load_features
    from prosody_vae.data.manifest import read_manifest
    from prosody_vae.inference.references import collect_references

    def speaker_of(name: str | None) -> str | None:
        return name if name in synth.speakers else args.speaker

    mels, texts, speakers, f0s = [], [], [], []
    if args.activity_from:
        source = " ".join(args.activity_from)
        for ref in collect_references(args.activity_from):
            try:
                mel, f0 = synth.reference_features(ref.audio)
            except ValueError as error:
                print(f"skipped {error}", file=sys.stderr)
                continue
            mels.append(mel)
            f0s.append(f0)
            texts.append(ref.text)
            speakers.append(speaker_of(ref.speaker))
    else:
        root = Path(synth.config.data.root)
        split = root / "splits" / f"{synth.config.data.valid_split}.jsonl"
        if not split.is_file():
            raise ValueError(
                f"cannot rank latent dimensions by activity: the checkpoint's validation split {split} "
                "does not exist here; pass --activity-from with reference audio, a folder, a list or a manifest"
            )
        source = str(split)
        for utt in read_manifest(split):
            try:
                features = load_features(root / "features", utt.id)
            except (ValueError, FileNotFoundError) as error:
                print(f"skipped {error}", file=sys.stderr)
                continue
            mels.append(features["mel"])
            f0s.append(features.get("f0"))
            texts.append(utt.text)
            speakers.append(speaker_of(utt.speaker))
    if synth.model.uses_text_summary and any(t is None for t in texts):
        keep = [i for i, t in enumerate(texts) if t is not None]
        print(
            f"skipped {len(texts) - len(keep)} reference(s) without a transcript "
            "(this model reads one: add <name>.txt beside the audio, or use a manifest)",
            file=sys.stderr,
        )
        mels, texts, speakers, f0s = ([x[i] for i in keep] for x in (mels, texts, speakers, f0s))
    if not mels:
        raise ValueError(f"no usable reference to measure latent activity on ({source})")
    return mels, texts, speakers, f0s, source


@command(
    "traverse",
    help="speak --text while moving along one latent dimension, ranked by activity (KL per dimension)",
    arguments=_traverse_arguments,
)
@_with_notices
def traverse(args: argparse.Namespace) -> int:
    from prosody_vae.prosody.bounds import dimensions_by_activity

    values = _traverse_values(args)
    _output_folder(args.out)
    synth = _load(args, text=args.text)
    if not 0 <= args.dim < synth.latent_dim:
        raise ValueError(f"--dim must lie in [0, {synth.latent_dim}) for this model, got {args.dim}")
    mels, texts, speakers, f0s, source = _activity_references(args, synth)
    activity = synth.latent_activity(mels, texts=texts, speakers=speakers, f0s=f0s)  # (D,) nats
    order = dimensions_by_activity(activity)
    dimension = int(order[args.dim])
    print(
        f"rank {args.dim} = latent dimension {dimension}: {float(activity[dimension]):.3f} nats of "
        f"{float(activity.sum()):.3f} mean KL over {len(mels)} reference(s) ({source})"
    )
    writer = _writer(args, synth)
    reference_text = _transcript(synth, args.reference, args.reference_text)
    results = synth.traverse(
        args.text,
        dimension,
        values,
        reference=args.reference,
        reference_text=reference_text,
        speaker=args.speaker,
    )
    with progress_bar(args, total=len(results), desc="traverse") as bar:
        for index, (value, result) in enumerate(zip(values, results, strict=True)):
            writer.write(
                result,
                args.out / f"rank{args.dim}_{index:02d}.wav",
                new_name=True,
                kind="traverse",
                text=args.text,
                reference=args.reference,
                reference_text=reference_text,
                title=f"rank {args.dim} (z[{dimension}]) {value:+.2f}",
            )
            bar.update()
    write_text_atomic(
        reserve_path(args.out / "activity.json"),
        json.dumps(
            {
                "rank": args.dim,
                "dimension": dimension,
                "values": values,
                "kl_per_dim": [round(float(v), 6) for v in activity],
                "order": order.tolist(),
                "references": len(mels),
                "source": source,
            },
            indent=1,
        ),
    )
    references = () if args.reference is None else (args.reference,)
    _finish(writer, args.out, title=f"rank {args.dim} (z[{dimension}])", references=references)
    return 0


@command(
    "embed",
    help="write the prosody posterior (mean, std, KL per dimension) of reference recordings to .npz",
    arguments=_embed_arguments,
)
@_with_notices
def embed(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from prosody_vae.inference.references import collect_references

    references = collect_references(args.references)
    if args.out.is_dir():
        raise IsADirectoryError(21, "is a folder; embed writes one .npz file: name the file", str(args.out))
    if args.reference_text is not None and len(references) != 1:
        raise ValueError(
            f"--reference-text applies to a single reference, got {len(references)}; "
            "put transcripts in <name>.txt files or a manifest"
        )
    synth = _load(args)
    ids, audio, rows = [], [], []
    for ref in references:
        speaker = ref.speaker if ref.speaker in synth.speakers else args.speaker
        try:
            posterior = synth.embed(
                ref.audio, reference_text=ref.text or args.reference_text, speaker=speaker
            )
        except ValueError as error:
            print(f"skipped {ref.id}: {one_line(error)}", file=sys.stderr)
            continue
        ids.append(ref.id)
        audio.append(str(ref.audio))
        rows.append(torch.stack([posterior.mean[0], posterior.std[0], posterior.kl_per_dim[0]]).cpu())
    if not rows:
        raise ValueError(f"none of {len(references)} reference(s) could be embedded")
    stacked = torch.stack(rows).numpy()  # (N, 3, D)
    out = args.out if args.out.suffix == ".npz" else args.out.with_name(f"{args.out.name}.npz")  # as savez
    with atomic_path(out) as temporary:
        np.savez(
            temporary,
            ids=np.array(ids),
            audio=np.array(audio),
            mean=stacked[:, 0],
            std=stacked[:, 1],
            kl=stacked[:, 2],
        )
    skipped = len(references) - len(ids)
    done = f"wrote {out}: {len(ids)} of {len(references)} embedding(s) of {synth.latent_dim} dimensions"
    return _partial(args, done, skipped)
