"""The acoustic model's teacher-forced mels, computed once and cached, for fine-tuning the vocoder.

A vocoder trained on recorded mels meets a blurrier mel at synthesis time. Fine-tuning on the
acoustic model's own outputs for the training utterances (the paper's section 4.4, after Tacotron 2)
closes that gap; because the outputs are teacher-forced (the decoder reads the recorded previous
frames, z is the posterior mean of the utterance itself), they stay on the recorded audio's frame
grid, one frame per analysis frame, so each mel segment still has its audio segment.

What is cached is the postnet output, as validation of the acoustic model computes it
(:meth:`prosody_vae.tts.model.ProsodyTTS.forward` in eval mode), cut to the utterance's length:
``<cache_dir>/<id>.pt`` holding ``{"mel": (T, n_mels)}``, written atomically. The prenet's dropout
stays on in eval mode (Tacotron 2), so each batch runs under a fixed seed: building the cache again
gives the same mels. ``source.json`` records the checkpoint's SHA-256: a cache from another
checkpoint is emptied and built again; one from the same checkpoint is completed (an interrupted
build continues). Utterances the acoustic model cannot read (missing features, untokenisable text,
an unknown speaker) are skipped and reported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from prosody_vae.atomic import atomic_path, write_text_atomic
from prosody_vae.config import AudioConfig
from prosody_vae.data.dataset import collate
from prosody_vae.data.feature_cache import load_features
from prosody_vae.data.manifest import Utterance

__all__ = ["TeacherForcedReport", "cache_teacher_forced"]

_SOURCE_FILE = "source.json"
# Fields that change the audio or the mel: the vocoder's must equal the acoustic model's.
_AUDIO_FIELDS = (
    "sample_rate",
    "n_fft",
    "hop_length",
    "win_length",
    "n_mels",
    "f_min",
    "f_max",
    "log_floor",
    "trim_top_db",
    "peak_normalize",
)


@dataclass
class TeacherForcedReport:
    """Outcome of :func:`cache_teacher_forced` (utterance ids)."""

    written: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)  # already in the cache from this checkpoint
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _claim(cache_dir: Path, checkpoint: Path) -> None:
    """Make ``cache_dir`` this checkpoint's cache: empty it when it holds another checkpoint's mels."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    source = {"checkpoint": str(checkpoint), "sha256": _digest(checkpoint)}
    path = cache_dir / _SOURCE_FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError:
        stored = None
    if isinstance(stored, dict) and stored.get("sha256") == source["sha256"]:
        return
    for old in cache_dir.glob("*.pt"):
        old.unlink()
    write_text_atomic(path, json.dumps(source, indent=2) + "\n")


def cache_teacher_forced(
    checkpoint: str | Path,
    utterances: Sequence[Utterance],
    features_dir: str | Path,
    cache_dir: str | Path,
    audio: AudioConfig,
    *,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> TeacherForcedReport:
    """Cache the teacher-forced postnet mels of ``utterances`` (see the module docstring).

    Args:
        checkpoint: an acoustic training checkpoint or packed model.
        utterances: what to cache; their recorded mels are read from ``features_dir`` (the feature
            cache of the prepared corpus, which the acoustic model was trained on).
        cache_dir: where the ``<id>.pt`` files go.
        audio: the vocoder's analysis parameters; must equal the acoustic model's.
        batch_size: utterances per forward pass, grouped by length so that padding stays small.
        device: where the acoustic model runs.
        progress: a progress bar on stderr (shown only when stderr is a terminal).

    Raises:
        ValueError: naming ``checkpoint``, when its audio parameters differ from ``audio``.
    """
    from tqdm.auto import tqdm

    from prosody_vae.inference.synthesizer import Synthesizer

    checkpoint, cache_dir = Path(checkpoint), Path(cache_dir)
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # building the model draws; the caller's RNG stays put
        synth = Synthesizer.from_checkpoint(checkpoint, device=device)
    differ = [
        f"{name} {getattr(synth.audio, name)!r} (vocoder {getattr(audio, name)!r})"
        for name in _AUDIO_FIELDS
        if getattr(synth.audio, name) != getattr(audio, name)
    ]
    if differ:
        raise ValueError(
            f"{checkpoint}: the acoustic model's audio differs from the vocoder's: {', '.join(differ)}"
        )
    _claim(cache_dir, checkpoint)
    report = TeacherForcedReport()
    items = []
    for utt in utterances:
        if (cache_dir / f"{utt.id}.pt").is_file():
            report.cached.append(utt.id)
            continue
        try:
            items.append(_item(utt, synth, Path(features_dir)))
        except Exception as error:  # the acoustic model cannot read it: report, go on
            report.skipped.append((utt.id, " ".join(f"{type(error).__name__}: {error}".split())))
    items.sort(key=lambda item: item["mel"].shape[0])
    model = synth.model.eval()
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    for number, chunk in enumerate(
        tqdm(batches, desc="teacher-forced mels", disable=None if progress else True)
    ):
        batch = collate(chunk).to(synth.device)
        devices = [synth.device] if synth.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(number)  # the prenet's dropout: the same masks whenever the cache is built
            output = model(
                batch.tokens,
                batch.token_lengths,
                batch.mels,
                batch.mel_lengths,
                speakers=batch.speakers if model.speaker_embedding is not None else None,
            )
        for row, utt_id in enumerate(batch.ids):
            mel = output.tacotron.mel_post[row, : int(batch.mel_lengths[row])].float().cpu().contiguous()
            with atomic_path(cache_dir / f"{utt_id}.pt") as temporary:
                torch.save({"mel": mel.clone()}, temporary)
            report.written.append(utt_id)
    return report


def _item(utt: Utterance, synth, features_dir: Path) -> dict:
    """One utterance as the acoustic model's dataset gives it (tokens, recorded mel, speaker)."""
    tokens = synth.tokenizer.encode(utt.text)
    if not tokens:
        raise ValueError(f"text {utt.text!r} encodes to no tokens")
    speaker = 0
    if synth.model.speaker_embedding is not None:
        if utt.speaker not in synth.speakers:
            raise ValueError(f"speaker {utt.speaker!r} is not one of the acoustic model's")
        speaker = synth.speakers.index(utt.speaker)
    return {
        "id": utt.id,
        "tokens": torch.tensor(tokens, dtype=torch.long),
        "mel": load_features(features_dir, utt.id)["mel"],
        "speaker": speaker,
        "labels": {},
    }
