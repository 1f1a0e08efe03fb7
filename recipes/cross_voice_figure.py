#!/usr/bin/env python3
"""Figure: narrow and wide intonation from a held-out voice carried into two training voices.

Picks, from the corpus's test split, two references spoken by one held-out voice at about its mean
pitch: one with a narrow contour (``pitch_range`` <= ``--narrow``) and one with a wide one
(>= ``--wide``). Each is transferred (its transcript read, the voice's mean F0 taken from ``--voice-clips``
other recordings of it) into each ``--targets`` voice speaking ``--text``. One panel per reference:
its F0 and the outputs' F0 (the decoder's own track, the one WORLD renders), against the share of
the utterance elapsed, so that sentences of different lengths line up.

    .venv/bin/python recipes/cross_voice_figure.py --checkpoint exp/espeak_mv_contour/checkpoints/step_1500.pt \
        --out docs/figures/cross_voice_contour.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from prosody_vae.audio import harvest_f0, load_audio  # noqa: E402
from prosody_vae.data.manifest import read_manifest  # noqa: E402
from prosody_vae.inference.synthesizer import Synthesizer  # noqa: E402
from prosody_vae.plots import save_figure  # noqa: E402


def _curve(ax, f0: np.ndarray, label: str, **style) -> None:
    """F0 (T,) in Hz against the share of the utterance elapsed; unvoiced frames are gaps."""
    f0 = np.asarray(f0, dtype=float)
    share = np.arange(len(f0)) / max(len(f0) - 1, 1)
    ax.plot(share, np.where(f0 > 0, f0, np.nan), label=label, **style)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, default=Path("data/espeak_multivoice/prepared"))
    parser.add_argument("--voice", default="en-us-nyc+f5", help="a held-out voice of the corpus")
    parser.add_argument("--targets", nargs="+", default=["en+klatt", "en+f2"])
    parser.add_argument("--text", default="The gardener found a silver lantern near the river on Sunday.")
    parser.add_argument("--narrow", type=float, default=15.0, help="largest pitch_range of the narrow one")
    parser.add_argument("--wide", type=float, default=80.0, help="smallest pitch_range of the wide one")
    parser.add_argument("--voice-clips", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/figures/cross_voice_contour.png"))
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)

    synth = Synthesizer.from_checkpoint(args.checkpoint)
    test = read_manifest(args.corpus / "splits" / "test.jsonl")
    spoken = [u for u in test if u.speaker == args.voice]
    if not spoken:
        raise SystemExit(f"no test recording of voice {args.voice!r} in {args.corpus}")
    # at about the voice's median pitch setting, so that the panels differ in range, not level
    middle = float(np.median([u.labels.get("pitch", 50) for u in spoken]))
    by_level = sorted(spoken, key=lambda u: abs(u.labels.get("pitch", 50) - middle))
    narrow = next((u for u in by_level if u.labels.get("pitch_range", 50) <= args.narrow), None)
    wide = next((u for u in by_level if u.labels.get("pitch_range", 50) >= args.wide), None)
    if narrow is None or wide is None:
        raise SystemExit(f"{args.voice}: no narrow and wide pair (try other --narrow / --wide)")
    others = [u for u in spoken if u.id not in (narrow.id, wide.id)][: args.voice_clips]
    voice_f0 = synth.voice_f0([u.audio for u in others]) if synth.reads_relative_f0 else None

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    for ax, (name, ref) in zip(axes, (("narrow", narrow), ("wide", wide)), strict=True):
        ref_f0 = harvest_f0(load_audio(ref.audio, synth.audio), synth.audio)
        _curve(ax, ref_f0, f"reference ({args.voice})", color="black", linewidth=2.0)
        for target in args.targets:
            result = synth.transfer(
                args.text,
                ref.audio,
                reference_text=ref.text,
                speaker=target,
                reference_voice_f0=voice_f0,
            )
            _curve(ax, result.f0.cpu().numpy(), f"into {target}", linewidth=1.5)
        ax.set_yscale("log")
        ax.set_xlabel("share of the utterance")
        ax.set_ylabel("F0 (Hz, log scale)")
        ax.set_title(
            f"{name}: range {ref.labels['pitch_range']:.0f}, pitch {ref.labels['pitch']:.0f} ({ref.id})"
        )
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"'{args.text}' from references in a voice never heard in training", fontsize=10)
    fig.tight_layout()
    save_figure(fig, args.out)
    print(f"wrote {args.out}: {narrow.id} (narrow), {wide.id} (wide)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
