"""Outputs of synthesis: vocoded wavs, optional figures, and the synthesis manifest.

The synthesis manifest (``manifest.jsonl``, shared with the evaluation code) has one JSON object per
output: ``{"id", "output", "reference", "text", "reference_text", "kind"}``, with paths relative to
the manifest's folder (or absolute).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
from torch import nn

from prosody_vae.audio.vocoders import vocode

__all__ = ["Kind", "SynthesisWriter"]

Kind = Literal["transfer", "sample", "interpolate", "traverse"]


def _f0(wav: np.ndarray, audio) -> np.ndarray:
    from prosody_vae.audio import f0_energy

    return f0_energy(wav, audio)[0]


class SynthesisWriter:
    """Vocode synthesised mels, write wavs (and figures), and keep the manifest rows.

    Args:
        synth: the :class:`~prosody_vae.inference.synthesizer.Synthesizer` that made the mels (its audio
            parameters and reference loading).
        vocoder: mel (T, n_mels) -> waveform (N,), e.g. from :func:`prosody_vae.audio.vocoders.load_vocoder`.
        plot: also write figures: per output the attention alignment and the mels (with the
            reference's above, when there is one) and overlaid F0 contours against the reference.
    """

    def __init__(self, synth, vocoder: nn.Module, *, plot: bool = False) -> None:
        self.synth = synth
        self.vocoder = vocoder
        self.plot = plot
        self.rows: list[dict] = []
        self.contours: list[tuple[str, np.ndarray]] = []  # (label, F0) of written outputs, for summaries

    def write(
        self,
        result,
        out: Path,
        *,
        kind: Kind,
        text: str,
        reference: Path | None = None,
        reference_text: str | None = None,
        title: str = "",
    ) -> Path:
        """Write ``out`` (and ``<stem>_*.png`` with ``plot``); record a manifest row. Returns ``out``."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        wav = vocode(self.vocoder, result.mel, result.f0).float().cpu().numpy()
        sf.write(out, wav, self.synth.audio.sample_rate)
        seconds = wav.shape[-1] / self.synth.audio.sample_rate
        print(f"wrote {out} ({seconds:.2f} s{'' if result.stopped else ', did not stop'})")
        self.rows.append(
            {
                "id": out.stem,
                "output": str(out.resolve()),
                "reference": None if reference is None else str(Path(reference).resolve()),
                "text": text,
                "reference_text": reference_text,
                "kind": kind,
            }
        )
        if self.plot:
            self._figures(result, wav, out, reference=reference, title=title or out.stem)
        return out

    def _figures(self, result, wav: np.ndarray, out: Path, *, reference: Path | None, title: str) -> None:
        from prosody_vae.plots import plot_alignment, plot_f0_contours, plot_mels, save_figure

        audio = self.synth.audio
        out_f0 = _f0(wav, audio)
        self.contours.append((out.stem, out_f0))
        figures = {"alignment": plot_alignment(result.alignment, title=title)}
        mels, names = [result.mel], ["output"]
        if reference is not None:
            ref_wav = self.synth.load_reference(reference)
            mels, names = [self.synth.reference_mel(ref_wav), result.mel], ["reference", "output"]
            figures["f0"] = plot_f0_contours(
                [_f0(ref_wav, audio), out_f0],
                ["reference", "output"],
                sample_rate=audio.sample_rate,
                hop_length=audio.hop_length,
                title=title,
            )
        figures["mels"] = plot_mels(mels, names, sample_rate=audio.sample_rate, hop_length=audio.hop_length)
        for name, figure in figures.items():
            save_figure(figure, out.with_name(f"{out.stem}_{name}.png"))

    def summary_figure(self, path: Path, *, title: str, references: Sequence[Path] = ()) -> Path | None:
        """With ``plot``: every output's F0 contour (and the references') overlaid in one figure."""
        if not self.plot or not self.contours:
            return None
        from prosody_vae.plots import plot_f0_contours, save_figure

        audio = self.synth.audio
        contours = [
            (f"reference {Path(r).stem}", _f0(self.synth.load_reference(r), audio)) for r in references
        ]
        contours += self.contours
        figure = plot_f0_contours(
            [c for _, c in contours],
            [label for label, _ in contours],
            sample_rate=audio.sample_rate,
            hop_length=audio.hop_length,
            title=title,
        )
        save_figure(figure, path)
        print(f"figure: {path}")
        return path

    def write_manifest(self, folder: Path) -> Path:
        """``folder/manifest.jsonl`` with the rows written so far, paths relative to ``folder``."""
        folder = Path(folder).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "manifest.jsonl"

        def relative(p: str | None) -> str | None:
            if p is None:
                return None
            try:
                return str(Path(p).relative_to(folder))
            except ValueError:
                return p  # outside the folder: absolute

        with path.open("w", encoding="utf-8") as handle:
            for row in self.rows:
                row = {**row, "output": relative(row["output"]), "reference": relative(row["reference"])}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path
