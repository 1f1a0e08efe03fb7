"""``prosody-vae``: a thin command-line front end over the library.

Each subcommand parses its arguments, calls one library function, and prints a short result. User
errors (bad files, bad options) print one line ``error: ...`` and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main"]

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def _command(name: str):
    def register(fn: Callable[[argparse.Namespace], int]):
        _COMMANDS[name] = fn
        return fn

    return register


def _threads(args: argparse.Namespace) -> None:
    import torch

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)


@_command("make-corpus")
def _make_corpus(args: argparse.Namespace) -> int:
    from prosody_vae.corpus.espeak import build_corpus

    manifest = build_corpus(
        args.out,
        n_utterances=args.n,
        seed=args.seed,
        multi_speaker=args.multi_speaker,
        num_workers=args.num_workers,
    )
    print(f"corpus manifest: {manifest}")
    return 0


@_command("prepare")
def _prepare(args: argparse.Namespace) -> int:
    from prosody_vae.data import prepare_corpus

    prepare_corpus(corpus=args.corpus, root=args.root, out=args.out, num_workers=args.num_workers)
    return 0


@_command("train")
def _train(args: argparse.Namespace) -> int:
    from prosody_vae.config import load_config
    from prosody_vae.training.loop import train

    _threads(args)
    config = load_config(args.config, overrides=args.set)
    result = train(config, args.out, resume=args.resume, device=args.device, max_steps=args.max_steps)
    state = "interrupted" if result.interrupted else "stopped"
    print(f"{state} at step {result.step}; checkpoint {result.checkpoint}")
    return 0


def _write_outputs(synth, result, out: Path, *, title: str, reference=None, plot: bool, n_iter: int) -> None:
    """Write ``out`` (wav, Griffin-Lim or the given vocoder) and, with ``plot``, a PNG beside it."""
    import soundfile as sf

    from prosody_vae.vocoder import GriffinLimVocoder

    out.parent.mkdir(parents=True, exist_ok=True)
    wav = GriffinLimVocoder(synth.audio, n_iter=n_iter).to(result.mel.device)(result.mel)
    sf.write(out, wav.float().cpu().numpy(), synth.audio.sample_rate)
    print(
        f"wrote {out} ({wav.shape[-1] / synth.audio.sample_rate:.2f} s{'' if result.stopped else ', did not stop'})"
    )
    if not plot:
        return
    from prosody_vae.plots import plot_alignment, plot_f0_contours, plot_mels

    figures = {"alignment": plot_alignment(result.alignment, title=title)}
    mels, names = [result.mel], ["output"]
    if reference is not None:
        ref_mel = synth.reference_mel(reference)
        mels, names = [ref_mel, result.mel], ["reference", "output"]
        from prosody_vae.audio import f0_energy, load_audio

        ref_f0, _ = f0_energy(load_audio(reference, synth.audio), synth.audio)
        out_f0, _ = f0_energy(wav.float().cpu().numpy(), synth.audio)
        figures["f0"] = plot_f0_contours([ref_f0, out_f0], ["reference", "output"], title=title)
    figures["mels"] = plot_mels(
        mels, names, sample_rate=synth.audio.sample_rate, hop_length=synth.audio.hop_length
    )
    for name, figure in figures.items():
        path = out.with_name(f"{out.stem}_{name}.png")
        figure.savefig(path, dpi=100)
    print(f"figures: {out.with_name(out.stem + '_*.png')}")


@_command("transfer")
def _transfer(args: argparse.Namespace) -> int:
    from prosody_vae.synthesis import Synthesizer

    _threads(args)
    if not args.text.strip():
        raise ValueError("--text is empty")
    synth = Synthesizer.from_checkpoint(args.checkpoint, device=args.device)
    result = synth.transfer(
        args.text,
        args.reference,
        reference_text=args.reference_text,
        speaker=args.speaker,
        sample=args.sample,
    )
    _write_outputs(
        synth,
        result,
        args.out,
        title="transfer",
        reference=args.reference,
        plot=args.plot,
        n_iter=args.gl_iters,
    )
    return 0


@_command("sample")
def _sample(args: argparse.Namespace) -> int:
    from prosody_vae.synthesis import Synthesizer

    _threads(args)
    if not args.text.strip():
        raise ValueError("--text is empty")
    synth = Synthesizer.from_checkpoint(args.checkpoint, device=args.device)
    results = synth.sample(args.text, args.n, temperature=args.temperature, speaker=args.speaker)
    for index, result in enumerate(results):
        out = args.out / f"sample_{index:02d}.wav"
        _write_outputs(
            synth, result, out, title=f"prior sample {index}", plot=args.plot, n_iter=args.gl_iters
        )
    return 0


@_command("demo")
def _demo(args: argparse.Namespace) -> int:
    from prosody_vae.demo import run_demo

    run_demo(args.out, n_utterances=args.n, seed=args.seed, num_workers=args.num_workers)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prosody-vae", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "make-corpus", help="synthesise the built-in espeak-ng corpus with known prosody labels"
    )
    p.add_argument("--out", type=Path, default=Path("data/espeak_prosody/corpus"))
    p.add_argument("--n", type=int, default=1200, help="number of utterances")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--multi-speaker", action="store_true", help="draw an espeak-ng voice variant per utterance"
    )
    p.add_argument("--num-workers", type=int, default=2)

    p = sub.add_parser("prepare", help="read a corpus, validate it, extract features and write splits")
    p.add_argument(
        "--corpus",
        required=True,
        choices=["ljspeech", "vctk", "kaldi", "filelist", "blizzard2013", "manifest"],
    )
    p.add_argument("--root", required=True, type=Path, help="corpus folder, or a manifest/filelist path")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--num-workers", type=int, default=2)

    p = sub.add_parser("train", help="train (or resume) a model from a YAML config")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="experiment folder")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--max-steps", type=int, default=None, help="stop at this step (resume later)")
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")

    def synthesis_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--checkpoint", required=True, type=Path)
        p.add_argument("--text", required=True, help="text to speak")
        p.add_argument("--speaker", default=None, help="speaker name (multi-speaker models)")
        p.add_argument("--device", default="cpu")
        p.add_argument("--plot", action="store_true", help="also write alignment, mel and F0 figures")
        p.add_argument("--gl-iters", type=int, default=32, help="Griffin-Lim iterations")
        p.add_argument("--threads", type=int, default=None, help="torch CPU threads")

    p = sub.add_parser("transfer", help="speak --text with the prosody of a reference recording")
    synthesis_options(p)
    p.add_argument("--reference", required=True, type=Path, help="reference audio (wav/flac/ogg)")
    p.add_argument(
        "--reference-text", default=None, help="transcript of the reference (models with a text summary)"
    )
    p.add_argument("--sample", action="store_true", help="sample z from q(z|reference) instead of its mean")
    p.add_argument("--out", type=Path, default=Path("transfer.wav"))

    p = sub.add_parser("sample", help="speak --text with prosody drawn from the prior")
    synthesis_options(p)
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--out", type=Path, default=Path("samples"), help="output folder")

    p = sub.add_parser("demo", help="the built-in demo: corpus with known prosody, features, label check")
    p.add_argument("--out", type=Path, default=Path("demo_out"))
    p.add_argument("--n", type=int, default=300, help="utterances to synthesise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-workers", type=int, default=2)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        if os.environ.get("PROSODY_VAE_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
