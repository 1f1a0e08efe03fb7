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


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory) -> Path:
    """A 16-utterance built-in corpus, with features and splits (the prepare stage's layout)."""
    from prosody_vae.audio import AudioConfig
    from prosody_vae.corpus.espeak import build_corpus
    from prosody_vae.data import prepare_corpus

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
