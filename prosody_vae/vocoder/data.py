"""Training data of the vocoder: random audio segments and the mels of the same frames.

Items come from a prepared corpus (``prosody-vae prepare``: ``<root>/splits/<split>.jsonl``). Each
utterance's audio is read as the acoustic model's features were (:func:`prosody_vae.audio.load_audio`:
resampled, trimmed, peak-normalised), its log-mel computed by our front end
(:class:`prosody_vae.audio.MelSpectrogram`) over the whole utterance, or taken from a cache of the
acoustic model's teacher-forced mels (:mod:`prosody_vae.vocoder.teacher_forced`), which lie on the
same frame grid.

The frame grid. Our mels are centred: frame t sits on sample ``t * hop``. A segment of F frames from
frame f is paired with the samples ``[f * hop, (f + F) * hop)``, so the generator learns to render
frame t as the hop of samples that starts at its centre. Deviation from the release: its frames are
centred half a hop later (it pads and does not centre), so its generators play our mels hop / 2 late
(:mod:`prosody_vae.audio.hifigan`); ours are on time. Slicing the mel of the whole utterance, not
computing one from the segment, is also what inference sees (no reflect-padded edge frames).

Segments are drawn without the global RNG: item i of epoch e takes its offset from a generator
seeded by ``(seed, e, i)``, so that workers, resume and the order of the loader change nothing.

A bad utterance (unreadable, silent, shorter than a segment after trimming, a teacher-forced mel of
the wrong length) does not stop training: it comes back as a :class:`Skipped` record, the collate
function drops it from the batch, and the loop reports it once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from prosody_vae._typed import build
from prosody_vae.audio import AudioConfig, MelSpectrogram, load_audio, num_frames
from prosody_vae.data.manifest import Utterance, read_manifest

__all__ = [
    "SegmentBatch",
    "SegmentDataset",
    "Skipped",
    "VocoderData",
    "build_vocoder_data",
    "check_corpus_audio",
    "collate_segments",
    "read_split",
    "too_short",
]


class Skipped(NamedTuple):
    """An utterance that could not give a training item, and why."""

    id: str
    reason: str


@dataclass
class SegmentBatch:
    """Segments of the usable items of one sampled batch.

    Attributes:
        ids: utterance ids, length B (B may be below the batch size when items were skipped).
        audio: (B, N) waveform segments, N = frames * hop.
        mels: (B, T, n_mels) the generator's input for those samples.
        skipped: the sampled items that were dropped.
    """

    ids: list[str]
    audio: Tensor
    mels: Tensor
    skipped: list[Skipped]

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device | str) -> SegmentBatch:
        return SegmentBatch(self.ids, self.audio.to(device), self.mels.to(device), self.skipped)


def check_corpus_audio(root: Path, audio: AudioConfig) -> None:
    """Refuse a prepared corpus analysed with other audio settings than ``audio``: the acoustic
    model and its teacher-forced mels come from that analysis."""
    path = root / "features" / "audio_config.json"
    if not path.is_file():
        return
    try:  # JSON, read as JSON: a YAML reader takes 1e-05 for a string
        corpus = build(AudioConfig, json.loads(path.read_text(encoding="utf-8")))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    differ = [
        f"{k} {getattr(corpus, k)!r} (config {v!r})"
        for k, v in asdict(audio).items()
        if getattr(corpus, k) != v
    ]
    if differ:
        raise ValueError(f"{path}: the corpus was prepared with other audio settings: {', '.join(differ)}")


def read_split(root: str | Path, name: str) -> list[Utterance]:
    """The utterances of ``<root>/splits/<name>.jsonl``; ``ValueError`` naming the file otherwise."""
    path = Path(root) / "splits" / f"{name}.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: split manifest not found (run the prepare stage for {root})")
    utterances = read_manifest(path)
    if not utterances:
        raise ValueError(f"{path}: split is empty")
    return utterances


def too_short(utterance: Utterance, segment_size: int, sample_rate: int) -> bool:
    """Whether the manifest's duration (before trimming, an upper bound) cannot hold one segment."""
    return utterance.duration is not None and utterance.duration * sample_rate < segment_size


class SegmentDataset(Dataset):
    """Items ``(index, epoch) -> (id, audio (N,), mel (N / hop, n_mels))`` or :class:`Skipped`.

    Args:
        utterances: the split's utterances.
        audio: the analysis parameters (those of the prepared corpus and the acoustic model).
        segment_frames: frames per segment; ``None`` gives whole utterances (validation), with
            ``ceil(samples / hop)`` frames and the audio zero-padded to ``frames * hop``.
        seed: with the key's epoch and index, fixes each segment's offset.
        teacher_forced: a folder of ``<id>.pt`` files holding ``{"mel": (T, n_mels)}`` to use instead
            of the audio's own mels (:mod:`prosody_vae.vocoder.teacher_forced`).
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        audio: AudioConfig,
        *,
        segment_frames: int | None,
        seed: int = 0,
        teacher_forced: Path | None = None,
    ):
        self.utterances = list(utterances)
        self.audio = audio
        self.segment_frames = segment_frames
        self.seed = seed
        self.teacher_forced = teacher_forced
        self._mel = MelSpectrogram(audio)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, Any] | Skipped:
        index, epoch = key
        utt = self.utterances[index]
        try:
            return self._item(utt, index, epoch)
        except Exception as error:  # one bad file never ends training; its reason is reported
            return Skipped(utt.id, " ".join(f"{type(error).__name__}: {error}".split()))

    def _item(self, utt: Utterance, index: int, epoch: int) -> dict[str, Any] | Skipped:
        wav = torch.from_numpy(load_audio(utt.audio, self.audio))  # (N,)
        hop = self.audio.hop_length
        frames = num_frames(wav.shape[0], self.audio)
        mel = self._input_mel(utt, wav)  # (frames, n_mels)
        if mel.shape[0] != frames:
            return Skipped(utt.id, f"teacher-forced mel has {mel.shape[0]} frames, the audio {frames}")
        if self.segment_frames is None:  # the whole utterance: every sample covered by a frame
            used = -(-wav.shape[0] // hop)  # ceil
            audio = torch.nn.functional.pad(wav, (0, used * hop - wav.shape[0]))
            return {"id": utt.id, "audio": audio, "mel": mel[:used]}
        latest = wav.shape[0] // hop - self.segment_frames  # last start frame with a full segment
        if latest < 0:
            return Skipped(
                utt.id,
                f"{wav.shape[0]} samples after trimming, shorter than a segment "
                f"({self.segment_frames * hop} samples)",
            )
        rng = np.random.default_rng([self.seed, epoch, index])
        start = int(rng.integers(0, latest + 1))
        end = start + self.segment_frames
        return {"id": utt.id, "audio": wav[start * hop : end * hop], "mel": mel[start:end]}

    def _input_mel(self, utt: Utterance, wav: Tensor) -> Tensor:
        if self.teacher_forced is None:
            with torch.no_grad():
                return self._mel(wav)
        path = self.teacher_forced / f"{utt.id}.pt"
        if not path.is_file():
            raise ValueError(f"{path}: no teacher-forced mel for {utt.id}")
        cached = torch.load(path, map_location="cpu", weights_only=True)
        return cached["mel"].float()


def collate_segments(items: Sequence[dict[str, Any] | Skipped]) -> SegmentBatch:
    """Stack the usable items of a sampled batch (all of one length); list the skipped ones.

    Whole utterances (validation) are zero-padded to the longest; segments are all one length.
    """
    good = [item for item in items if not isinstance(item, Skipped)]
    skipped = [item for item in items if isinstance(item, Skipped)]
    if not good:
        return SegmentBatch([], torch.zeros(0, 0), torch.zeros(0, 0, 0), skipped)
    frames = max(item["mel"].shape[0] for item in good)
    samples = max(item["audio"].shape[0] for item in good)
    n_mels = good[0]["mel"].shape[1]
    audio = torch.zeros(len(good), samples)
    mels = torch.zeros(len(good), frames, n_mels)
    for row, item in enumerate(good):
        audio[row, : item["audio"].shape[0]] = item["audio"]
        mels[row, : item["mel"].shape[0]] = item["mel"]
    return SegmentBatch([item["id"] for item in good], audio, mels, skipped)


@dataclass
class VocoderData:
    """A run's data: training segments, whole validation utterances, and what was left out."""

    train_set: SegmentDataset
    valid_set: SegmentDataset
    too_short: list[Skipped]  # training utterances whose manifest duration cannot hold a segment


def build_vocoder_data(
    root: Path,
    audio: AudioConfig,
    *,
    train_split: str,
    valid_split: str,
    segment_size: int,
    valid_items: int,
    seed: int,
    teacher_forced: Callable[[list[Utterance]], Path] | None = None,
) -> VocoderData:
    """Read the splits of the prepared corpus at ``root`` and build the datasets.

    ``teacher_forced``, when given, is called once with the utterances the run uses (training, then
    validation) and returns the folder of their cached teacher-forced mels.
    """
    check_corpus_audio(root, audio)
    train = read_split(root, train_split)
    valid = read_split(root, valid_split)[:valid_items]
    short = [u for u in train if too_short(u, segment_size, audio.sample_rate)]
    train = [u for u in train if not too_short(u, segment_size, audio.sample_rate)]
    cache = teacher_forced(train + valid) if teacher_forced is not None else None
    frames = segment_size // audio.hop_length
    return VocoderData(
        train_set=SegmentDataset(train, audio, segment_frames=frames, seed=seed, teacher_forced=cache),
        valid_set=SegmentDataset(valid, audio, segment_frames=None, teacher_forced=cache),
        too_short=[Skipped(u.id, "shorter than a segment (manifest duration)") for u in short],
    )
