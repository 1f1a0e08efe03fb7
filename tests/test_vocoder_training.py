"""Training our own HiFi-GAN vocoder: it learns, resumes exactly, exports a generator that ``--vocoder``
loads, fine-tunes on teacher-forced mels on the audio's frame grid, and survives bad utterances."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from prosody_vae.audio import AudioConfig, load_audio, log_mel, num_frames
from prosody_vae.audio.hifigan import HifiGanConfig, HifiGanVocoder
from prosody_vae.audio.vocoders import load_vocoder, vocode
from prosody_vae.cli import main
from prosody_vae.vocoder.config import VocoderConfig
from prosody_vae.vocoder.data import SegmentBatch, SegmentDataset, read_split
from prosody_vae.vocoder.export import build_generator
from prosody_vae.vocoder.loop import train_vocoder
from prosody_vae.vocoder.state import setup_vocoder_training
from prosody_vae.vocoder.step import vocoder_step
from prosody_vae.vocoder.teacher_forced import cache_teacher_forced

AUDIO = AudioConfig()
SR, HOP = AUDIO.sample_rate, AUDIO.hop_length


def tiny(root: Path, **sections) -> VocoderConfig:
    """A generator and discriminators of a few thousand parameters, segments of 8 frames."""
    raw = {
        "generator": {
            "resblock": "2",
            "upsample_rates": [8, 8, 4],
            "upsample_kernel_sizes": [16, 16, 8],
            "upsample_initial_channel": 16,
            "resblock_kernel_sizes": [3],
            "resblock_dilation_sizes": [[1, 2]],
        },
        "discriminator": {
            "periods": [2, 3],
            "period_channels": [4, 8],
            "scales": 1,
            "scale_channels": [4, 4, 8, 8, 8, 8, 8],
            "scale_groups": [1, 1, 1, 1, 1, 1, 1],
        },
        "optim": {"lr": 1e-3},
        "data": {"root": str(root), "segment_size": 8 * HOP, "batch_size": 2},
        "train": {"steps": 8, "log_every": 1, "valid_every": 4, "checkpoint_every": 4, "valid_items": 1},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return VocoderConfig.from_dict(raw)


def _tone(seconds: float, f0: float, seed: int) -> np.ndarray:
    """A voiced-like signal: harmonics of a gliding F0 plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) / SR
    wav = sum(np.sin(k * phase) / k for k in range(1, 12)) + 0.02 * rng.standard_normal(t.shape)
    return (0.9 * wav / np.abs(wav).max()).astype(np.float32)


def _write_split(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A prepared-corpus layout: 8 training and 2 validation tones, with cached features."""
    root = tmp_path_factory.mktemp("vocoder_corpus")
    (root / "features").mkdir()
    (root / "features" / "audio_config.json").write_text(json.dumps(dataclasses.asdict(AUDIO)))
    rows = []
    for i in range(10):
        path = root / "wavs" / f"u{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, _tone(0.5 + 0.05 * i, 100 + 15 * i, i), SR)
        mel = log_mel(load_audio(path, AUDIO), AUDIO)
        zeros = torch.zeros(mel.shape[0])
        torch.save({"mel": mel, "f0": zeros, "energy": zeros}, root / "features" / f"u{i}.pt")
        rows.append({"id": f"u{i}", "audio": str(path), "text": "a tone", "duration": 0.5 + 0.05 * i})
    _write_split(root / "splits" / "train.jsonl", rows[:8])
    _write_split(root / "splits" / "valid.jsonl", rows[8:])
    return root


def test_losses_fall_on_a_fixed_clip(corpus, tmp_path):
    state = setup_vocoder_training(tiny(corpus), tmp_path / "run", progress=False)
    item = state.train_set[(0, 0)]
    batch = SegmentBatch([item["id"]], item["audio"][None], item["mel"][None], [])
    results = [vocoder_step(state, batch) for _ in range(40)]
    state.monitor.close()
    mel = [float(r.generator.mel_l1) for r in results]
    assert all(r.stepped for r in results) and state.step == 40
    assert np.mean(mel[-5:]) < 0.6 * np.mean(mel[:5]), mel
    # the adversarial game ran: both losses are positive, and weighting sums the named parts
    last = results[-1].generator
    assert float(results[-1].discriminator.loss) > 0 and float(last.adversarial) > 0
    assert float(last.loss) == pytest.approx(
        float(last.adversarial + 2 * last.feature_matching + 45 * last.mel_l1), rel=1e-5
    )


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)  # the loading guarantee itself


def test_resume_continues_exactly(corpus, tmp_path):
    config = tiny(corpus)
    train_vocoder(config, tmp_path / "straight", max_steps=7, progress=False)
    train_vocoder(config, tmp_path / "split", max_steps=3, progress=False)  # mid-epoch (4 batches each)
    result = train_vocoder(config, tmp_path / "split", resume=True, max_steps=7, progress=False)
    assert result.step == 7
    straight = _weights(tmp_path / "straight" / "checkpoints" / "step_7.pt")
    resumed = _weights(tmp_path / "split" / "checkpoints" / "step_7.pt")
    early = _weights(tmp_path / "split" / "checkpoints" / "step_3.pt")
    for part in ("generator", "discriminators"):
        for key, value in straight[part].items():
            assert torch.equal(value, resumed[part][key]), f"{part}.{key}"
    # not vacuous: training moved the weights between steps 3 and 7
    assert any(not torch.equal(v, early["generator"][k]) for k, v in straight["generator"].items())
    assert straight["optimizer_g"]["state"][0]["exp_avg"].equal(resumed["optimizer_g"]["state"][0]["exp_avg"])
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert sorted(set(steps)) == list(range(1, 8)) and steps == sorted(steps)  # no step logged twice over


def test_exported_generator_is_what_vocoder_loads(corpus, tmp_path):
    config = tiny(corpus)
    result = train_vocoder(config, tmp_path / "run", max_steps=4, progress=False)
    assert result.generator == tmp_path / "run" / "g_00000004"
    release = HifiGanConfig.from_json(tmp_path / "run" / "config.json")
    assert release.front_end_mismatches(AUDIO) == []
    vocoder = load_vocoder(result.generator, AUDIO)
    assert isinstance(vocoder, HifiGanVocoder)
    generator = build_generator(config)
    generator.load_state_dict(_weights(result.checkpoint)["generator"])
    mel = log_mel(load_audio(corpus / "wavs" / "u9.wav", AUDIO), AUDIO)
    wav = vocode(vocoder, mel)
    assert wav.shape == (mel.shape[0] * HOP,)
    with torch.no_grad():
        expected = generator.eval()(mel[None])[0]
    assert torch.equal(wav, expected)  # the folded weights are the ones training ran with, bit for bit
    # train.init_from starts a new run from that file: the same generator, weight norm and all
    state = setup_vocoder_training(
        tiny(corpus, train={"init_from": str(result.generator)}), tmp_path / "tuned", progress=False
    )
    state.monitor.close()
    with torch.no_grad():
        assert torch.equal(state.generator.eval()(mel[None])[0], expected)
    with pytest.raises(ValueError, match="init_from"):
        wide = tiny(
            corpus, generator={"upsample_initial_channel": 32}, train={"init_from": str(result.generator)}
        )
        setup_vocoder_training(wide, tmp_path / "wide", progress=False)


@pytest.fixture(scope="module")
def acoustic_checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny acoustic model in the packed layout (characters: no espeak-ng needed)."""
    from prosody_vae.checkpoint import save_checkpoint
    from prosody_vae.config import ExperimentConfig
    from prosody_vae.text import build_tokenizer
    from prosody_vae.tts.model import build_model

    raw = {
        "text": {"tokenizer": "characters"},
        "backbone": {
            "r": 3,
            "embedding_dim": 16,
            "encoder_dim": 16,
            "attention_dim": 8,
            "attention_rnn_dim": 16,
            "decoder_dim": 16,
            "prenet_dim": 8,
            "postnet_dim": 8,
            "postnet_n_convs": 2,
        },
        "prosody": {"latent_dim": 2, "ref_channels": [4, 4], "ref_rnn_size": 8, "text_summary_dim": 8},
    }
    config = ExperimentConfig.from_dict(raw)
    tokenizer = build_tokenizer("characters")
    model = build_model(config, n_symbols=tokenizer.vocab_size, n_speakers=1)
    path = tmp_path_factory.mktemp("acoustic") / "model.pt"
    state = {"config": config.to_dict(), "tokenizer": tokenizer.config(), "speakers": ["default"]}
    save_checkpoint(path, {**state, "model": model.state_dict()})
    return path


def test_teacher_forced_mels_lie_on_the_audio_frame_grid(corpus, acoustic_checkpoint, tmp_path):
    utterances = read_split(corpus, "train")[:3]
    cache = tmp_path / "tf"
    report = cache_teacher_forced(
        acoustic_checkpoint, utterances, corpus / "features", cache, AUDIO, batch_size=2
    )
    assert sorted(report.written) == ["u0", "u1", "u2"] and report.skipped == []
    for utt in utterances:
        mel = torch.load(cache / f"{utt.id}.pt", weights_only=True)["mel"]
        assert mel.shape == (num_frames(load_audio(utt.audio, AUDIO).shape[0], AUDIO), AUDIO.n_mels)
        assert not torch.allclose(mel, torch.load(corpus / "features" / f"{utt.id}.pt")["mel"])  # the model's
    again = cache_teacher_forced(acoustic_checkpoint, utterances, corpus / "features", cache, AUDIO)
    assert again.written == [] and sorted(again.cached) == ["u0", "u1", "u2"]
    # a training item pairs a slice of the cached mel with the audio of the same frames
    dataset = SegmentDataset(utterances, AUDIO, segment_frames=8, teacher_forced=cache)
    item = dataset[(1, 0)]
    full = torch.load(cache / "u1.pt", weights_only=True)["mel"]
    wav = torch.from_numpy(load_audio(utterances[1].audio, AUDIO))
    start = next(s for s in range(full.shape[0] - 7) if torch.equal(full[s : s + 8], item["mel"]))
    assert torch.equal(item["audio"], wav[start * HOP : (start + 8) * HOP])
    # the command line's --teacher-forced-from: the run caches its training and validation items
    config = tmp_path / "vocoder.yaml"
    config.write_text(yaml.safe_dump(tiny(corpus).to_dict()))
    out = tmp_path / "run"
    argv = ["train-vocoder", "--config", str(config), "--out", str(out), "--max-steps", "2", "--threads", "1"]
    assert main([*argv, "--teacher-forced-from", str(acoustic_checkpoint)]) == 0
    assert sorted(p.stem for p in (out / "teacher_forced").glob("*.pt")) == [f"u{i}" for i in range(9)]
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["teacher_forced_from"] == str(
        acoustic_checkpoint
    )


def test_bad_and_short_utterances_are_skipped_and_reported(corpus, tmp_path):
    root = tmp_path / "corpus"
    rows = [json.loads(line) for line in (corpus / "splits" / "train.jsonl").read_text().splitlines()][:4]
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF not really a wave file")
    sf.write(tmp_path / "short.wav", _tone(0.05, 120, 0), SR)  # shorter than a segment once read
    rows += [
        {"id": "corrupt", "audio": str(tmp_path / "corrupt.wav"), "text": "x", "duration": 1.0},
        {"id": "short", "audio": str(tmp_path / "short.wav"), "text": "x", "duration": 1.0},
        {"id": "listed_short", "audio": str(tmp_path / "short.wav"), "text": "x", "duration": 0.01},
    ]
    _write_split(root / "splits" / "train.jsonl", rows)
    _write_split(root / "splits" / "valid.jsonl", rows[:1])
    result = train_vocoder(tiny(root, train={"steps": 4}), tmp_path / "run", progress=False)
    assert result.step == 4 and set(result.skipped) == {"corrupt", "short", "listed_short"}
    assert (
        "shorter than a segment" in result.skipped["short"]
        and "cannot read audio" in result.skipped["corrupt"]
    )
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert sorted(r["skipped"] for r in records if "skipped" in r) == ["corrupt", "listed_short", "short"]


def test_cli_help_and_one_line_errors(corpus, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train-vocoder", "--help"])
    assert exit_info.value.code == 0 and "--teacher-forced-from" in capsys.readouterr().out
    config = tmp_path / "vocoder.yaml"
    config.write_text(yaml.safe_dump({"data": {"root": str(corpus), "segment_size": 1000}}))
    status = main(
        ["train-vocoder", "--config", str(config), "--out", str(tmp_path / "run"), "--threads", "1"]
    )
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: ") and "segment_size" in err and str(config) in err
    assert not (tmp_path / "run").exists()  # refused at the door, before anything was written
