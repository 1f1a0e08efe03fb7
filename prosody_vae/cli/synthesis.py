"""Synthesis subcommands: ``transfer`` and ``sample`` (and the outputs they write)."""

from __future__ import annotations

import argparse
from pathlib import Path

from prosody_vae.cli._registry import command, set_threads


def _synthesis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--text", required=True, help="text to speak")
    p.add_argument("--speaker", default=None, help="speaker name (multi-speaker models)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--plot", action="store_true", help="also write alignment, mel and F0 figures")
    p.add_argument("--gl-iters", type=int, default=32, help="Griffin-Lim iterations")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def _transfer_arguments(p: argparse.ArgumentParser) -> None:
    _synthesis_options(p)
    p.add_argument("--reference", required=True, type=Path, help="reference audio (wav/flac/ogg)")
    p.add_argument(
        "--reference-text", default=None, help="transcript of the reference (models with a text summary)"
    )
    p.add_argument("--sample", action="store_true", help="sample z from q(z|reference) instead of its mean")
    p.add_argument("--out", type=Path, default=Path("transfer.wav"))


def _sample_arguments(p: argparse.ArgumentParser) -> None:
    _synthesis_options(p)
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--out", type=Path, default=Path("samples"), help="output folder")


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


@command(
    "transfer",
    help="speak --text with the prosody of a reference recording",
    arguments=_transfer_arguments,
)
def transfer(args: argparse.Namespace) -> int:
    from prosody_vae.synthesis import Synthesizer

    set_threads(args)
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


@command("sample", help="speak --text with prosody drawn from the prior", arguments=_sample_arguments)
def sample(args: argparse.Namespace) -> int:
    from prosody_vae.synthesis import Synthesizer

    set_threads(args)
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
