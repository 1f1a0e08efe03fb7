"""Shared fixtures: a tiny espeak-ng corpus prepared once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

# Tiny models on a 2-core machine run several times faster on one thread than on two.
torch.set_num_threads(1)

TINY_MODEL = {
    "text": {"tokenizer": "phonemes"},
    "backbone": {
        "r": 3,
        "embedding_dim": 32,
        "encoder_dim": 32,
        "attention_dim": 16,
        "attention_rnn_dim": 32,
        "decoder_dim": 64,
        "prenet_dim": 32,
        "postnet_dim": 32,
        "postnet_n_convs": 2,
    },
    "prosody": {"latent_dim": 4, "ref_channels": [8, 8, 16], "ref_rnn_size": 16, "text_summary_dim": 16},
    "capacity": {"capacity": 5.0, "beta_optimizer": "adam", "beta_lr": 0.01},
    "optim": {"lr": 0.002, "warmup_steps": 2},
    "train": {"log_every": 1, "valid_every": 1000, "checkpoint_every": 1000, "valid_audio": False},
}

# Smaller still, for models built in memory and run on random tensors (no corpus).
MICRO_BACKBONE = {
    "r": 2,
    "embedding_dim": 8,
    "encoder_dim": 8,
    "attention_dim": 4,
    "attention_rnn_dim": 8,
    "decoder_dim": 8,
    "prenet_dim": 8,
    "postnet_dim": 8,
    "postnet_n_convs": 2,
}


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory) -> Path:
    """A 16-utterance built-in corpus, with features and splits (the prepare stage's layout)."""
    from prosody_vae.audio import AudioConfig
    from prosody_vae.data import prepare_corpus
    from prosody_vae.data.espeak.synthesis import build_corpus

    root = tmp_path_factory.mktemp("tiny_corpus")
    manifest = build_corpus(root / "corpus", n_utterances=16, seed=3, num_workers=2, progress=False)
    out = root / "prepared"
    prepare_corpus(
        "manifest",
        manifest,
        out,
        config=AudioConfig(),
        num_workers=2,
        valid_fraction=0.15,
        test_fraction=0.0,
    )
    return out


@pytest.fixture
def tiny_config_file(tiny_prepared: Path, tmp_path: Path):
    """Write a tiny experiment YAML pointing at the tiny corpus; returns a function of overrides."""

    def write(**sections) -> Path:
        raw = {key: dict(value) for key, value in TINY_MODEL.items()}
        raw["data"] = {"root": str(tiny_prepared), "batch_size": 4}
        for section, values in sections.items():
            raw.setdefault(section, {}).update(values)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    return write


def train_tiny(root: Path, data_root: Path, *, steps: int = 2, **sections) -> Path:
    """Train ``TINY_MODEL`` (sections updated by ``sections``) on ``data_root`` for ``steps`` steps
    through the command line, into ``root/exp``; returns the last checkpoint."""
    from prosody_vae.cli import main

    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["data"] = {"root": str(data_root), "batch_size": 4}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    config = root / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    argv = ["train", "--config", str(config), "--out", str(root / "exp"), "--max-steps", str(steps)]
    assert main([*argv, "--threads", "1"]) == 0
    checkpoint = root / "exp" / "checkpoints" / f"step_{steps}.pt"
    assert checkpoint.is_file()
    return checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_prepared: Path, tmp_path_factory) -> Path:
    """A tiny model trained for 2 steps on ``tiny_prepared`` (shared: treat it as read-only)."""
    return train_tiny(tmp_path_factory.mktemp("tiny_model"), tiny_prepared)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile librosa's pYIN helpers in this process before any test starts F0 workers
    (prosody_vae.metrics.intonation.warm_up_trackers says why)."""
    from prosody_vae.metrics import warm_up_trackers

    warm_up_trackers()
