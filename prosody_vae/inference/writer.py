"""Outputs of synthesis: vocoded wavs, optional figures, and the synthesis manifest.

The synthesis manifest (``manifest.jsonl``, shared with the evaluation code) has one JSON object per
output: ``{"id", "output", "reference", "text", "reference_text", "kind"}``, with paths relative to
the manifest's folder (or absolute), plus ``speaker`` (the voice spoken in) and ``reference_speaker``
(the reference's voice) when they are known, which the evaluation's cross-voice checks read.

Every file is written to a temporary name and renamed into place (:mod:`prosody_vae.atomic`), so a
full disk or a kill never leaves a truncated wav that reads as valid. Outputs into a folder
(``new_name=True``) never overwrite anything: a taken name becomes ``<stem>_2.wav``, ``<stem>_3.wav``,
..., claimed so that two runs writing into one folder at the same time cannot pick the same one. The
manifest is appended to, under a lock on the folder, and replaced atomically: two runs into one
folder leave every row of both. A manifest that is a symbolic link (or anything but a plain file) is
refused, so nothing is ever written through it, outside the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from torch import nn

from prosody_vae.atomic import atomic_path, reserve_path
from prosody_vae.audio.io import write_wav
from prosody_vae.audio.vocoders import VocoderError, vocode

__all__ = ["MANIFEST_NAME", "Kind", "SynthesisWriter", "check_output_folder"]

MANIFEST_NAME = "manifest.jsonl"

Kind = Literal["transfer", "sample", "interpolate", "traverse"]


def _f0(wav: np.ndarray, audio) -> np.ndarray:
    from prosody_vae.audio import f0_energy

    return f0_energy(wav, audio)[0]


def check_output_folder(folder: str | Path) -> Path:
    """Check, before any work, that ``folder`` can take outputs and a manifest: it is a folder (or
    does not exist yet) and its ``manifest.jsonl``, if any, is a plain file, not a symbolic link."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(20, "exists and is not a folder; this command writes a folder", str(folder))
    manifest = folder / MANIFEST_NAME
    if manifest.is_symlink() or (manifest.exists() and not manifest.is_file()):
        raise ValueError(
            f"{manifest}: is a symbolic link or not a plain file; refusing to write the manifest through "
            "it (remove it, or give another --out)"
        )
    return folder


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` while the manifest is read and replaced (POSIX ``flock``)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, the write is still atomic
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


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
        speaker: str | None = None,
        reference_speaker: str | None = None,
        new_name: bool = False,
    ) -> Path:
        """Write ``out`` (and ``<stem>_*.png`` with ``plot``); record a manifest row. Returns the path
        written: ``out``, or with ``new_name`` the first free name from ``out`` on (``<stem>_2.wav``,
        ...), so that nothing that exists is overwritten.

        Nothing is written when the vocoder's output is not finite (a :class:`VocoderError` naming
        ``out``).
        """
        out = Path(out)
        try:
            wav = vocode(self.vocoder, result.mel, result.f0).float().cpu().numpy()
        except VocoderError as error:
            raise VocoderError(f"{out}: {error}") from None
        if new_name:
            out = reserve_path(out)
        try:
            write_wav(out, wav, self.synth.audio.sample_rate)
        except BaseException:
            if new_name:
                out.unlink(missing_ok=True)  # the claimed, still empty name
            raise
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
                **({"speaker": speaker} if speaker is not None else {}),
                **({"reference_speaker": reference_speaker} if reference_speaker is not None else {}),
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
            from prosody_vae.inference.synthesizer import MAX_REFERENCE_SECONDS

            # the part of the reference the posterior read (see Synthesizer.reference_mel)
            ref_wav = self.synth.load_reference(reference)[: int(MAX_REFERENCE_SECONDS * audio.sample_rate)]
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
        """With ``plot``: every output's F0 contour (and the references') overlaid in one figure,
        written to the first free name from ``path`` on (see :meth:`write`'s ``new_name``)."""
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
        path = reserve_path(path)
        save_figure(figure, path)
        print(f"figure: {path}")
        return path

    def write_manifest(self, folder: Path) -> Path:
        """Add the rows written so far to ``folder/manifest.jsonl`` (paths relative to ``folder``).

        The rows are appended to what the manifest holds (another run's rows stay), under a lock on
        the folder, and the file is replaced atomically: it is never half written.
        """
        folder = check_output_folder(Path(folder).resolve())
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / MANIFEST_NAME

        def relative(p: str | None) -> str | None:
            if p is None:
                return None
            try:
                return str(Path(p).relative_to(folder))
            except ValueError:
                return p  # outside the folder: absolute

        lines = [
            json.dumps(
                {**row, "output": relative(row["output"]), "reference": relative(row["reference"])},
                ensure_ascii=False,
            )
            + "\n"
            for row in self.rows
        ]
        with _folder_lock(folder):
            check_output_folder(folder)  # again, under the lock
            earlier = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
            if earlier and not earlier.endswith("\n"):
                earlier += "\n"
            with atomic_path(path) as temporary:
                temporary.write_text(earlier + "".join(lines), encoding="utf-8")
        return path
