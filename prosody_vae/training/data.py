"""Training data: prepared splits -> datasets, a tokenizer, speakers and resumable bucketed batches.

Expects the layout written by the prepare stage (``prosody_vae.data.prepare_corpus``)::

    <root>/features/<id>.pt          cached mels, F0, energy
    <root>/splits/<split>.jsonl      manifests per split
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prosody_vae.audio import num_frames
from prosody_vae.config import ExperimentConfig
from prosody_vae.data.dataset import ProsodyDataset, collate
from prosody_vae.data.manifest import Utterance, read_manifest
from prosody_vae.data.sampler import LengthBucketSampler
from prosody_vae.text import Tokenizer, build_tokenizer
from prosody_vae.training.distributed import DistributedContext

__all__ = ["TrainingData", "build_training_data", "utterance_frames"]


def utterance_frames(utterance: Utterance, config: ExperimentConfig) -> int:
    if utterance.duration is None:
        raise ValueError(f"utterance {utterance.id}: no duration in the manifest (run the prepare stage)")
    return num_frames(int(round(utterance.duration * config.audio.sample_rate)), config.audio)


@dataclass
class TrainingData:
    tokenizer: Tokenizer
    speakers: list[str]
    train_set: ProsodyDataset
    valid_set: ProsodyDataset
    sampler: LengthBucketSampler  # resumes at a batch position via state_dict(consumed=...)
    collate: Callable


def _read_split(root: Path, name: str) -> list[Utterance]:
    path = root / "splits" / f"{name}.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: split manifest not found (run the prepare stage for {root})")
    utterances = read_manifest(path)
    if not utterances:
        raise ValueError(f"{path}: split is empty")
    return utterances


def build_training_data(
    config: ExperimentConfig, context: DistributedContext, *, tokenizer_config: dict | None = None
) -> TrainingData:
    """Datasets and batches for training; ``tokenizer_config`` (from a checkpoint) pins the symbol table."""
    root = Path(config.data.root)
    train_utts = _read_split(root, config.data.train_split)
    valid_utts = _read_split(root, config.data.valid_split)
    if config.data.max_frames > 0:
        train_utts = [u for u in train_utts if utterance_frames(u, config) <= config.data.max_frames]
        if not train_utts:
            raise ValueError(f"data.max_frames={config.data.max_frames} leaves no training utterance")
    tokenizer = (
        build_tokenizer(**tokenizer_config) if tokenizer_config else build_tokenizer(config.text.tokenizer)
    )
    speakers = sorted({u.speaker for u in train_utts})
    features = root / "features"
    train_set = ProsodyDataset(train_utts, features, tokenizer, speakers=speakers)
    valid_set = ProsodyDataset(valid_utts, features, tokenizer, speakers=speakers)
    sampler = LengthBucketSampler(
        [utterance_frames(u, config) for u in train_utts],
        config.data.batch_size,
        shuffle=True,
        seed=config.train.seed,
        drop_last=True,
        num_replicas=context.world_size,
        rank=context.rank,
    )
    return TrainingData(
        tokenizer=tokenizer,
        speakers=speakers,
        train_set=train_set,
        valid_set=valid_set,
        sampler=sampler,
        collate=collate,
    )
