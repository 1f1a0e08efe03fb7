"""Dataset items and the padding collate function."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prosody_vae.audio import AudioConfig
from prosody_vae.data.dataset import Batch, ProsodyDataset, collate
from prosody_vae.data.feature_cache import feature_path
from prosody_vae.data.manifest import Utterance

N_MELS = 6


class _Letters:
    """Stands in for the text module's tokenizers: anything with encode(text) -> list[int]."""

    def encode(self, text: str) -> list[int]:
        return [ord(c) - ord("a") + 1 for c in text if c.isalpha()]


def _cache(tmp_path: Path, frames: dict[str, int]) -> Path:
    cache = tmp_path / "cache"
    cache.mkdir()
    for utt_id, count in frames.items():
        mel = torch.arange(count * N_MELS, dtype=torch.float32).reshape(count, N_MELS) + 1.0
        torch.save(
            {"mel": mel, "f0": torch.zeros(count), "energy": torch.ones(count)}, feature_path(cache, utt_id)
        )
    return cache


def _utts() -> list[Utterance]:
    return [
        Utterance(id="a", audio="a.wav", text="abc", speaker="bob", duration=0.5, labels={"pitch": 1.0}),
        Utterance(id="b", audio="b.wav", text="de", speaker="amy", duration=1.0),
        Utterance(id="c", audio="c.wav", text="fghij", speaker="bob"),
    ]


def test_items_and_speaker_indices(tmp_path: Path) -> None:
    cache = _cache(tmp_path, {"a": 4, "b": 7, "c": 3})
    dataset = ProsodyDataset(_utts(), cache, _Letters())
    assert len(dataset) == 3 and dataset.speakers == ["amy", "bob"]
    item = dataset[0]
    assert item["id"] == "a" and item["speaker"] == 1 and item["labels"] == {"pitch": 1.0}
    assert item["tokens"].dtype == torch.long and item["tokens"].tolist() == [1, 2, 3]
    assert item["mel"].shape == (4, N_MELS)
    fixed = ProsodyDataset(_utts(), cache, _Letters(), speakers=["bob", "amy", "carl"])
    assert fixed[1]["speaker"] == 1
    with pytest.raises(ValueError, match="amy"):
        ProsodyDataset(_utts(), cache, _Letters(), speakers=["bob"])
    with pytest.raises(TypeError, match="encode"):
        ProsodyDataset(_utts(), cache, object())  # type: ignore[arg-type]


def test_collate_pads_with_zeros_and_keeps_values(tmp_path: Path) -> None:
    cache = _cache(tmp_path, {"a": 4, "b": 7, "c": 3})
    dataset = ProsodyDataset(_utts(), cache, _Letters())
    items = [dataset[i] for i in range(3)]
    batch = collate(items)
    assert batch.ids == ["a", "b", "c"]
    assert batch.tokens.shape == (3, 5) and batch.mels.shape == (3, 7, N_MELS)
    assert batch.token_lengths.tolist() == [3, 2, 5] and batch.mel_lengths.tolist() == [4, 7, 3]
    assert batch.speakers.tolist() == [1, 0, 1]
    assert batch.labels == [{"pitch": 1.0}, {}, {}]
    for row, item in enumerate(items):
        length, count = len(item["tokens"]), item["mel"].shape[0]
        assert torch.equal(batch.tokens[row, :length], item["tokens"])
        assert torch.equal(batch.mels[row, :count], item["mel"])
        assert not batch.tokens[row, length:].any() and not batch.mels[row, count:].any()
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and moved.mels.device.type == "cpu" and len(moved) == 3
    with pytest.raises(ValueError, match="empty"):
        collate([])


def test_frame_lengths(tmp_path: Path) -> None:
    cache = _cache(tmp_path, {"a": 4, "b": 7, "c": 3})
    dataset = ProsodyDataset(_utts(), cache, _Letters())
    assert dataset.frame_lengths() == [4, 7, 3]
    config = AudioConfig(sample_rate=16000, hop_length=160, n_fft=512, win_length=512)
    # Known durations give 1 + samples // hop; "c" has no duration and is read from the cache.
    assert dataset.frame_lengths(config) == [1 + 8000 // 160, 1 + 16000 // 160, 3]


def test_text_without_tokens_is_an_error(tmp_path: Path) -> None:
    cache = _cache(tmp_path, {"x": 3})
    dataset = ProsodyDataset([Utterance(id="x", audio="x.wav", text="123")], cache, _Letters())
    with pytest.raises(ValueError, match="'x'"):
        dataset[0]
