"""Files around synthesis: reference sets and batch files in, audio, figures and a manifest out.

Inputs. A *reference set* is given as any mix of: audio files, folders of audio files, list files
(one audio path per line, relative to the list's folder) and corpus manifests (``.jsonl``, which also
give each reference's transcript and speaker). An audio file's transcript, when a model needs one,
is read from ``<name>.txt`` beside it. A *batch file* for ``transfer`` has one tab-separated line per
output: ``text<TAB>reference_path[<TAB>reference_text]``.

Output. The synthesis manifest (``manifest.jsonl``, shared with the evaluation code) has one JSON
object per output: ``{"id", "output", "reference", "text", "reference_text", "kind"}``, with paths
relative to the manifest's folder (or absolute).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
from torch import nn

from prosody_vae.data.manifest import read_manifest

__all__ = [
    "AUDIO_SUFFIXES",
    "BatchLine",
    "Reference",
    "SynthesisWriter",
    "collect_references",
    "read_batch_file",
]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
_LIST_SUFFIXES = (".txt", ".lst", ".list", ".scp")
Kind = Literal["transfer", "sample", "interpolate", "traverse"]


@dataclass(frozen=True)
class Reference:
    """One reference recording: an id, its audio path and, when known, transcript and speaker."""

    id: str
    audio: Path
    text: str | None = None
    speaker: str | None = None


def _sidecar_text(audio: Path) -> str | None:
    path = audio.with_suffix(".txt")
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def _from_audio(path: Path) -> Reference:
    return Reference(id=path.stem, audio=path, text=_sidecar_text(path))


def collect_references(items: Sequence[str | Path]) -> list[Reference]:
    """Expand audio files, folders, list files and manifests into references, in the order given.

    A missing folder, list or manifest raises FileNotFoundError; a missing *audio* file is kept, so
    that the caller reports it with the others and goes on. Ids are file stems (manifest ids for
    manifests), made unique with a ``_2``, ``_3``, ... suffix.
    """
    found: list[Reference] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
            if not files:
                raise FileNotFoundError(f"{path}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in folder")
            found.extend(_from_audio(p) for p in files)
        elif path.suffix == ".jsonl":
            if not path.is_file():
                raise FileNotFoundError(f"{path}: manifest not found")
            found.extend(
                Reference(id=u.id, audio=Path(u.audio), text=u.text, speaker=u.speaker)
                for u in read_manifest(path)
            )
        elif path.suffix.lower() in _LIST_SUFFIXES:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: list file not found")
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    audio = Path(line.strip())
                    found.append(_from_audio(audio if audio.is_absolute() else path.parent / audio))
        else:
            found.append(_from_audio(path))
    seen: dict[str, int] = {}
    unique = []
    for ref in found:
        seen[ref.id] = seen.get(ref.id, 0) + 1
        name = ref.id if seen[ref.id] == 1 else f"{ref.id}_{seen[ref.id]}"
        unique.append(Reference(id=name, audio=ref.audio, text=ref.text, speaker=ref.speaker))
    return unique


@dataclass(frozen=True)
class BatchLine:
    """One line of a transfer batch file."""

    line: int  # 1-based line number, for messages
    text: str
    reference: Path
    reference_text: str | None


def read_batch_file(path: str | Path) -> tuple[list[BatchLine], list[str]]:
    """Parse ``text<TAB>reference[<TAB>reference_text]`` lines; returns (lines, problems).

    Blank lines and lines starting with ``#`` are skipped. Relative reference paths are relative to
    the batch file's folder. A malformed line becomes a problem message naming the file and line
    instead of an exception, so one bad line does not stop a long batch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: batch file not found")
    lines, problems = [], []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = raw.rstrip("\r\n").split("\t")
        if len(fields) not in (2, 3) or not fields[0].strip() or not fields[1].strip():
            problems.append(
                f"{path}:{number}: expected text<TAB>reference[<TAB>reference_text], "
                f"got {len(fields)} field(s)"
            )
            continue
        reference = Path(fields[1].strip())
        reference = reference if reference.is_absolute() else path.parent / reference
        ref_text = fields[2].strip() if len(fields) == 3 and fields[2].strip() else None
        lines.append(BatchLine(number, fields[0].strip(), reference, ref_text))
    return lines, problems


def _f0(wav: np.ndarray, audio) -> np.ndarray:
    from prosody_vae.audio import f0_energy

    return f0_energy(wav, audio)[0]


class SynthesisWriter:
    """Vocode synthesised mels, write wavs (and figures), and keep the manifest rows.

    Args:
        synth: the :class:`~prosody_vae.synthesis.Synthesizer` that made the mels (its audio
            parameters and reference loading).
        vocoder: mel (T, n_mels) -> waveform (N,), e.g. from :func:`prosody_vae.vocoder.load_vocoder`.
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
        wav = self.vocoder(result.mel).float().cpu().numpy()
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
