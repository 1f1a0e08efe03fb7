"""Dataset over cached features and the padding collate function."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.utils.data import Dataset

from prosody_vae.audio import AudioConfig, num_frames
from prosody_vae.data.feature_cache import load_features
from prosody_vae.data.manifest import Utterance
from prosody_vae.data.partners import partner_indices

__all__ = ["Batch", "PartnerBatch", "ProsodyDataset", "collate"]


class _Encoder(Protocol):
    def encode(self, text: str) -> list[int]: ...


@dataclass
class PartnerBatch:
    """Each item's partner utterance (same voice and prosody settings, another sentence), padded; an
    item without one has its own features here and ``available`` False.

    Attributes:
        tokens: (B, L') long.
        token_lengths: (B,) long.
        mels: (B, T', n_mels) float.
        mel_lengths: (B,) long.
        f0: (B, T') float F0 in Hz, or None when the items have no F0 track.
        available: (B,) bool, whether the item has a partner.
    """

    tokens: Tensor
    token_lengths: Tensor
    mels: Tensor
    mel_lengths: Tensor
    f0: Tensor | None
    available: Tensor

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> PartnerBatch:
        """A copy with every tensor moved to ``device``."""
        return PartnerBatch(
            tokens=self.tokens.to(device, non_blocking=non_blocking),
            token_lengths=self.token_lengths.to(device, non_blocking=non_blocking),
            mels=self.mels.to(device, non_blocking=non_blocking),
            mel_lengths=self.mel_lengths.to(device, non_blocking=non_blocking),
            f0=None if self.f0 is None else self.f0.to(device, non_blocking=non_blocking),
            available=self.available.to(device, non_blocking=non_blocking),
        )


@dataclass
class Batch:
    """A padded batch. Padding is zero (token id 0 is the tokenizer's pad id).

    Attributes:
        ids: utterance ids, length B.
        tokens: (B, L) long.
        token_lengths: (B,) long.
        mels: (B, T, n_mels) float.
        mel_lengths: (B,) long.
        speakers: (B,) long speaker indices.
        labels: B dicts of known prosody factors (may be empty).
        indices: (B,) long positions of the items in their dataset (stable per item: the
            associative prior's code bank is indexed by them); None for hand-built batches.
        f0: (B, T) float F0 in Hz on the mel frame grid, 0 where unvoiced and in padding (the
            targets of a decoder that predicts pitch); None when the items have no F0 track.
        partner: the items' partner utterances (datasets built with ``partners=True``), else None.
    """

    ids: list[str]
    tokens: Tensor
    token_lengths: Tensor
    mels: Tensor
    mel_lengths: Tensor
    speakers: Tensor
    labels: list[dict[str, float]]
    indices: Tensor | None = None
    f0: Tensor | None = None
    partner: PartnerBatch | None = None

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        """A copy with every tensor moved to ``device``."""
        return Batch(
            ids=self.ids,
            tokens=self.tokens.to(device, non_blocking=non_blocking),
            token_lengths=self.token_lengths.to(device, non_blocking=non_blocking),
            mels=self.mels.to(device, non_blocking=non_blocking),
            mel_lengths=self.mel_lengths.to(device, non_blocking=non_blocking),
            speakers=self.speakers.to(device, non_blocking=non_blocking),
            labels=self.labels,
            indices=None if self.indices is None else self.indices.to(device, non_blocking=non_blocking),
            f0=None if self.f0 is None else self.f0.to(device, non_blocking=non_blocking),
            partner=None if self.partner is None else self.partner.to(device, non_blocking=non_blocking),
        )

    def __len__(self) -> int:
        return len(self.ids)


class ProsodyDataset(Dataset):
    """Utterances with cached log-mels, tokenised text and speaker indices.

    Args:
        utterances: the utterances (their features must be in ``cache_dir``).
        cache_dir: the feature cache written by ``extract_features``.
        tokenizer: any object with ``encode(text) -> list[int]``; called on every access (the
            phoneme tokenizer caches its own results).
        speakers: the speaker inventory, which fixes the index of each speaker. Pass the training
            set's list to validation/test sets so indices agree; default is the sorted speakers of
            ``utterances``.
        partners: also give each item its partner utterance (:mod:`prosody_vae.data.partners`), for
            paired-reference training.

    Items are ``dict(id, index int, tokens (L,) long, mel (T, n_mels), speaker int, labels dict)``;
    ``index`` is the item's position in ``utterances``. With ``partners``, an item whose group has
    another member in ``utterances`` also has ``partner``: ``dict(tokens, mel[, f0])`` of that member.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        cache_dir: str | Path,
        tokenizer: _Encoder,
        speakers: list[str] | None = None,
        *,
        partners: bool = False,
    ) -> None:
        if not callable(getattr(tokenizer, "encode", None)):
            raise TypeError(f"tokenizer must have an encode(text) method, got {type(tokenizer).__name__}")
        self.utterances = list(utterances)
        self.cache_dir = Path(cache_dir)
        self.tokenizer = tokenizer
        self.speakers = (
            sorted({utt.speaker for utt in self.utterances}) if speakers is None else list(speakers)
        )
        self._speaker_index = {name: index for index, name in enumerate(self.speakers)}
        unknown = sorted({utt.speaker for utt in self.utterances} - set(self._speaker_index))
        if unknown:
            raise ValueError(f"speakers {unknown} are not in the speaker list {self.speakers}")
        self.partners = partner_indices(self.utterances) if partners else None

    @property
    def n_partnered(self) -> int:
        """How many items have a partner (0 for a dataset built without ``partners``)."""
        return 0 if self.partners is None else sum(index >= 0 for index in self.partners)

    def __len__(self) -> int:
        return len(self.utterances)

    def _tokens(self, utt: Utterance) -> Tensor:
        tokens = self.tokenizer.encode(utt.text)
        if len(tokens) == 0:
            raise ValueError(f"utterance {utt.id!r}: text {utt.text!r} encodes to no tokens")
        return torch.tensor(tokens, dtype=torch.long)

    def __getitem__(self, index: int) -> dict[str, Any]:
        utt = self.utterances[index]
        item = {
            "id": utt.id,
            "index": index,
            "tokens": self._tokens(utt),
            **_mel_and_f0(load_features(self.cache_dir, utt.id)),
            "speaker": self._speaker_index[utt.speaker],
            "labels": dict(utt.labels),
        }
        if self.partners is not None and self.partners[index] >= 0:
            partner = self.utterances[self.partners[index]]
            item["partner"] = {
                "tokens": self._tokens(partner),
                **_mel_and_f0(load_features(self.cache_dir, partner.id)),
            }
        return item

    def frame_lengths(self, config: AudioConfig | None = None) -> list[int]:
        """Mel lengths (frames) for bucketing, without loading mels where possible.

        With ``config`` and a known ``duration`` the length is ``num_frames`` of the file's sample
        count at the target rate: the length before silence trimming, an upper bound that is close
        enough for bucketing. Otherwise the cached mel is loaded.
        """
        lengths = []
        for utt in self.utterances:
            if config is not None and utt.duration is not None:
                lengths.append(num_frames(round(utt.duration * config.sample_rate), config))
            else:
                lengths.append(int(load_features(self.cache_dir, utt.id)["mel"].shape[0]))
        return lengths


def _mel_and_f0(features: dict[str, Tensor]) -> dict[str, Tensor]:
    """The cached mel and, when the cache has one, its F0 track (same frame grid)."""
    out = {"mel": features["mel"]}
    if "f0" in features:
        out["f0"] = features["f0"]
    return out


def _pad(items: Sequence[dict[str, Any]]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
    """tokens (B, L), token_lengths (B,), mels (B, T, n_mels), mel_lengths (B,), f0 (B, T) or None
    of items with ``tokens``, ``mel`` and, all or none, ``f0``; zero padding."""
    token_lengths = torch.tensor([len(item["tokens"]) for item in items], dtype=torch.long)
    mel_lengths = torch.tensor([item["mel"].shape[0] for item in items], dtype=torch.long)
    first_mel = items[0]["mel"]
    tokens = torch.zeros(len(items), int(token_lengths.max()), dtype=torch.long)
    mels = torch.zeros(len(items), int(mel_lengths.max()), first_mel.shape[1], dtype=first_mel.dtype)
    f0 = torch.zeros(mels.shape[:2]) if all("f0" in item for item in items) else None
    for row, item in enumerate(items):
        tokens[row, : len(item["tokens"])] = item["tokens"]
        mels[row, : item["mel"].shape[0]] = item["mel"]
        if f0 is not None:
            f0[row, : item["f0"].shape[0]] = item["f0"]
    return tokens, token_lengths, mels, mel_lengths, f0


def collate(items: Sequence[dict[str, Any]]) -> Batch:
    """Pad a list of dataset items into a :class:`Batch` (zero padding, input order kept).

    Returns:
        Batch with tokens (B, L), mels (B, T, n_mels), lengths (B,), speakers (B,); ``partner`` when
        any item has one (an item without one stands in for itself there).
    """
    if len(items) == 0:
        raise ValueError("cannot collate an empty list of items")
    tokens, token_lengths, mels, mel_lengths, f0 = _pad(items)
    partner = None
    if any("partner" in item for item in items):
        # _pad's tensors in PartnerBatch's field order
        partner = PartnerBatch(
            *_pad([item.get("partner", item) for item in items]),
            available=torch.tensor(["partner" in item for item in items], dtype=torch.bool),
        )
    return Batch(
        ids=[item["id"] for item in items],
        tokens=tokens,
        token_lengths=token_lengths,
        mels=mels,
        mel_lengths=mel_lengths,
        speakers=torch.tensor([item["speaker"] for item in items], dtype=torch.long),
        labels=[item["labels"] for item in items],
        indices=torch.tensor([item.get("index", -1) for item in items], dtype=torch.long),
        f0=f0,
        partner=partner,
    )
