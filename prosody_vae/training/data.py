"""Training data: prepared splits -> datasets, a tokenizer, speakers and resumable bucketed batches.

Expects the layout written by the prepare stage (``prosody_vae.data.prepare_corpus``)::

    <root>/features/<id>.pt          cached mels, F0, energy
    <root>/splits/<split>.jsonl      manifests per split
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Sampler

from prosody_vae.audio import num_frames
from prosody_vae.config import ExperimentConfig
from prosody_vae.data.dataset import ProsodyDataset, collate
from prosody_vae.data.feature_cache import load_features, read_f0_tracker
from prosody_vae.data.manifest import Utterance, read_manifest
from prosody_vae.data.sampler import LengthBucketSampler
from prosody_vae.data.validate import untokenisable
from prosody_vae.text import Tokenizer, build_tokenizer
from prosody_vae.training.distributed import DistributedContext
from prosody_vae.tts.voice_pitch import voice_f0_table

__all__ = ["RankSlices", "TrainingData", "build_training_data", "utterance_frames"]


def utterance_frames(utterance: Utterance, config: ExperimentConfig) -> int:
    if utterance.duration is None:
        raise ValueError(f"utterance {utterance.id}: no duration in the manifest (run the prepare stage)")
    return num_frames(int(round(utterance.duration * config.audio.sample_rate)), config.audio)


class RankSlices(Sampler[list[int]]):
    """This rank's share of each global batch: items ``rank::world_size`` of it.

    Every rank walks the same list of global batches (``sampler``, built for one process with
    ``batch_size * world_size`` items) and keeps an interleaved slice. A step on N processes therefore
    sees exactly the items one process would see with the N-times larger batch, which makes a DDP run
    comparable with a single-process one (``LengthBucketSampler``'s own ``num_replicas`` deals whole
    batches to ranks instead, so the union of a step's batches is not a batch of the single-process
    run). Interleaving a length-sorted batch gives every rank similar lengths, hence similar padding.

    Resume state is the wrapped sampler's (its batch size includes the world size, so resuming under
    a different world size is refused with a clear message).
    """

    def __init__(self, sampler: LengthBucketSampler, *, rank: int, world_size: int) -> None:
        if sampler.batch_size % world_size:
            raise ValueError(f"global batch {sampler.batch_size} does not split over {world_size} ranks")
        self.sampler = sampler
        self.rank = rank
        self.world_size = world_size

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.sampler:
            yield batch[self.rank :: self.world_size]

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        return self.sampler.state_dict(consumed=consumed)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)


@dataclass
class TrainingData:
    tokenizer: Tokenizer
    speakers: list[str]
    train_set: ProsodyDataset
    valid_set: ProsodyDataset
    sampler: RankSlices  # resumes at a batch position via state_dict(consumed=...)
    collate: Callable
    train_frames: list[int]  # per training item, in dataset order (bucketing, code-bank refresh order)
    # mean F0 (Hz) of each speaker over the training split, for prosody.reference_pitch_relative
    voice_f0: list[float] | None = None


def _read_split(root: Path, name: str) -> list[Utterance]:
    path = root / "splits" / f"{name}.jsonl"
    if not path.is_file():
        raise ValueError(f"{path}: split manifest not found (run the prepare stage for {root})")
    utterances = read_manifest(path)
    if not utterances:
        raise ValueError(f"{path}: split is empty")
    return utterances


def _check_texts(root: Path, config: ExperimentConfig, utterances: list[Utterance], tokenizer) -> None:
    """Refuse, before the first step, data with a text the tokenizer cannot read: it would end the
    run when its batch came, and again at the same batch on every resume."""
    bad = untokenisable(utterances, tokenizer)
    if bad:
        shown = "; ".join(f"{utt_id}: {reason}" for utt_id, reason in bad[:3])
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise ValueError(
            f"{root}: {len(bad)} utterance(s) of the {config.data.train_split}/{config.data.valid_split} "
            f"splits cannot be tokenised: {shown}{more}; prepare the data again (prosody-vae prepare "
            "--force drops and lists them) or remove them from the splits"
        )


def _check_f0(root: Path, config: ExperimentConfig) -> None:
    """Refuse, before the model is built, a model that needs F0 on a cache prepared without it
    (``prepare --f0 none``): its first batch would fail instead, after the set-up, on every resume."""
    needs = [
        name
        for name, wanted in (
            ("backbone.pitch", config.backbone.pitch),
            ("prosody.reference_pitch", config.prosody.reference_pitch),
            ("prosody.contour_weight", config.prosody.contour_weight > 0),
        )
        if wanted
    ]
    if needs and read_f0_tracker(root / "features") == "none":
        raise ValueError(
            f"{root}: the feature cache {root / 'features'} holds no F0 (prepared with --f0 none), but "
            f"this model needs it ({', '.join(needs)}); prepare the data again with F0: prosody-vae "
            f"prepare ... --out {root} --f0 harvest --force"
        )


def build_training_data(
    config: ExperimentConfig, context: DistributedContext, *, tokenizer_config: dict | None = None
) -> TrainingData:
    """Datasets and batches for training; ``tokenizer_config`` (from a checkpoint) pins the symbol table."""
    root = Path(config.data.root)
    train_utts = _read_split(root, config.data.train_split)
    valid_utts = _read_split(root, config.data.valid_split)
    _check_f0(root, config)
    if config.data.max_frames > 0:
        train_utts = [u for u in train_utts if utterance_frames(u, config) <= config.data.max_frames]
        if not train_utts:
            raise ValueError(f"data.max_frames={config.data.max_frames} leaves no training utterance")
    tokenizer = (
        build_tokenizer(**tokenizer_config) if tokenizer_config else build_tokenizer(config.text.tokenizer)
    )
    _check_texts(root, config, train_utts + valid_utts, tokenizer)
    speakers = sorted({u.speaker for u in train_utts})
    features = root / "features"
    paired = config.prosody.paired_reference > 0
    train_set = ProsodyDataset(train_utts, features, tokenizer, speakers=speakers, partners=paired)
    if paired and train_set.n_partnered == 0:
        raise ValueError(
            f"{root}: prosody.paired_reference is set, but no training utterance has a partner (the "
            "manifest label setting_group, shared by utterances of one voice and prosody on different "
            "sentences: make-corpus --texts-per-setting 2)"
        )
    valid_set = ProsodyDataset(valid_utts, features, tokenizer, speakers=speakers)
    frames = [utterance_frames(u, config) for u in train_utts]
    # data.batch_size is per process; the global batch of a step is batch_size * world_size.
    global_batches = LengthBucketSampler(
        frames,
        config.data.batch_size * context.world_size,
        shuffle=True,
        seed=config.train.seed,
        drop_last=True,
    )
    if len(global_batches) == 0:
        raise ValueError(
            f"{len(train_utts)} training utterances do not fill one global batch of "
            f"{config.data.batch_size} x {context.world_size} processes"
        )
    sampler = RankSlices(global_batches, rank=context.rank, world_size=context.world_size)
    voice_f0 = None
    if config.prosody.reference_pitch_relative:
        tracks = ((u.speaker, load_features(features, u.id)["f0"]) for u in train_utts)
        try:
            voice_f0 = voice_f0_table(speakers, tracks)
        except ValueError as error:
            raise ValueError(
                f"{root}: {error} (prosody.reference_pitch_relative needs each voice's F0)"
            ) from None
    return TrainingData(
        tokenizer=tokenizer,
        speakers=speakers,
        train_set=train_set,
        valid_set=valid_set,
        sampler=sampler,
        collate=collate,
        train_frames=frames,
        voice_f0=voice_f0,
    )
