"""End-to-end corpus preparation: stages, markers, idempotence, failures left out of splits, CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from prosody_vae.audio import AudioConfig
from prosody_vae.data.feature_cache import feature_path
from prosody_vae.data.manifest import read_manifest
from prosody_vae.data.prepare import prepare_corpus, read_audio_config

SR = 16000
CONFIG = AudioConfig(sample_rate=SR, n_fft=512, hop_length=128, win_length=512, n_mels=20, f_max=7600.0)
REPO = Path(__file__).resolve().parents[1]


def _ljspeech(root: Path, count: int = 6) -> Path:
    (root / "wavs").mkdir(parents=True)
    lines = []
    for i in range(count):
        t = np.arange(int(0.6 * SR)) / SR
        x = 0.3 * np.sin(2 * np.pi * (120 + 15 * i) * t) if i != 2 else np.zeros_like(t)  # LJ-2 is silent
        sf.write(root / "wavs" / f"LJ-{i}.wav", x.astype(np.float32), SR)
        lines.append(f"LJ-{i}|Text {i}.|Text number {i}.")
    lines.append("LJ-99|No audio.|No audio.")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_prepare_runs_all_stages_and_is_idempotent(tmp_path: Path) -> None:
    root = _ljspeech(tmp_path / "LJ")
    out = tmp_path / "dump"
    messages: list[str] = []
    kwargs = dict(config=CONFIG, num_workers=0, valid_fraction=0.2, test_fraction=0.2, progress=False)
    result = prepare_corpus("ljspeech", root, out, log=messages.append, **kwargs)

    assert result.validation is not None and result.extraction is not None
    assert [u.id for u in read_manifest(result.manifest)] == [f"LJ-{i}" for i in range(6)]
    assert (
        "LJ-99",
        f"missing audio: {(root / 'wavs' / 'LJ-99.wav').resolve()}",
    ) in result.validation.rejected
    assert [utt_id for utt_id, _ in result.extraction.failed] == ["LJ-2"]  # silent: found only by decoding
    assert "LJ-2" in (out / "features_failed.tsv").read_text()
    split_ids = sorted(u.id for name in ("train", "valid", "test") for u in read_manifest(result.split(name)))
    assert split_ids == ["LJ-0", "LJ-1", "LJ-3", "LJ-4", "LJ-5"]  # the failed utterance is left out
    assert sum(result.split_sizes.values()) == 5
    assert sorted(p.name for p in (out / ".done").iterdir()) == ["features", "manifest", "splits"]
    assert "kept 6 utterances" in (out / "validation.txt").read_text()

    # A second call does nothing: every stage is marked done.
    stamp = feature_path(result.features, "LJ-0").stat().st_mtime_ns
    messages.clear()
    again = prepare_corpus("ljspeech", root, out, log=messages.append, **kwargs)
    assert again.validation is None and again.extraction is None
    assert all("already done" in message for message in messages) and len(messages) == 3
    assert feature_path(result.features, "LJ-0").stat().st_mtime_ns == stamp

    # Forcing the manifest stage invalidates the stages after it.
    prepare_corpus("ljspeech", root, out, stages=["manifest"], force=True, log=messages.append, **kwargs)
    assert sorted(p.name for p in (out / ".done").iterdir()) == ["manifest"]


def test_stage_order_and_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="manifest stage first"):
        prepare_corpus("ljspeech", tmp_path, tmp_path / "out", stages=["features"], log=lambda _: None)
    with pytest.raises(ValueError, match="corpus"):
        prepare_corpus("librispeech", tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="stage"):
        prepare_corpus("ljspeech", tmp_path, tmp_path / "out", stages=["train"])


def test_read_audio_config(tmp_path: Path) -> None:
    path = tmp_path / "audio.yaml"
    path.write_text("audio:\n  sample_rate: 16000\n  hop_length: 200\n")
    assert read_audio_config(path) == AudioConfig(sample_rate=16000, hop_length=200)
    path.write_text("sample_rate: 16000\nhop: 200\n")
    with pytest.raises(ValueError, match=r"audio.yaml.*hop"):
        read_audio_config(path)
    path.write_text("f_max: 99999\n")
    with pytest.raises(ValueError, match="audio.yaml"):
        read_audio_config(path)


def test_read_audio_config_round_trips_json_and_keeps_floats(tmp_path: Path) -> None:
    # json writes log_floor=1e-5 as 1e-05, which a YAML 1.1 loader reads as a string
    config = dataclasses.replace(CONFIG, log_floor=1e-5, f0_min=55.5, trim_top_db=None)
    path = tmp_path / "audio_config.json"
    path.write_text(json.dumps(dataclasses.asdict(config), indent=2))
    assert "1e-05" in path.read_text()
    loaded = read_audio_config(path)
    assert loaded == config and type(loaded.log_floor) is float and loaded.trim_top_db is None
    # what prepare writes beside the manifest reads back as the config it was prepared with
    out = tmp_path / "dump"
    _prepare(_manifest_corpus(tmp_path / "corpus", {"a": "A text.", "b": "B text."}), out, config=config)
    assert read_audio_config(out / "audio_config.json") == config
    # YAML's 1e-5 (no dot: a string to YAML 1.1) is converted to the field's type, in a full config too
    yaml_path = tmp_path / "exp.yaml"
    yaml_path.write_text("audio:\n  log_floor: 1e-5\n  sample_rate: 16000\n")
    assert read_audio_config(yaml_path) == AudioConfig(sample_rate=16000, log_floor=1e-5)
    yaml_path.write_text("log_floor: tiny\n")
    with pytest.raises(ValueError, match=r"exp.yaml.*log_floor"):
        read_audio_config(yaml_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="audio_config.json"):
        read_audio_config(path)


def test_cli_on_a_filelist(tmp_path: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    rows = []
    for i in range(3):
        t = np.arange(int(0.6 * SR)) / SR
        sf.write(clips / f"c{i}.wav", (0.3 * np.sin(2 * np.pi * 150 * t)).astype(np.float32), SR)
        rows.append(f"clips/c{i}.wav|Clip {i}.|spk{i % 2}")
    (tmp_path / "list.txt").write_text("\n".join(rows) + "\n")
    (tmp_path / "audio.yaml").write_text(
        "sample_rate: 16000\nn_fft: 512\nhop_length: 128\nwin_length: 512\nn_mels: 20\nf_max: 7600.0\n"
    )
    command = [
        sys.executable,
        str(REPO / "recipes" / "prepare_corpus.py"),
        "--corpus=filelist",
        f"--root={tmp_path / 'list.txt'}",
        f"--out={tmp_path / 'out'}",
        f"--audio-config={tmp_path / 'audio.yaml'}",
        "--num-workers=0",
        "--no-progress",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "kept 3 utterances" in done.stdout
    train = read_manifest(tmp_path / "out" / "splits" / "train.jsonl")
    assert {u.speaker for u in train} <= {"spk0", "spk1"}
    assert len(list((tmp_path / "out" / "features").glob("*.pt"))) == 3


# --- validated at the door: texts training cannot read, changed input, repeated ids ---------------
def _manifest_corpus(root: Path, texts: dict[str, str]) -> Path:
    """A corpus in our manifest format, one 0.6 s tone per utterance; returns the manifest."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (utt_id, text) in enumerate(texts.items()):
        t = np.arange(int(0.6 * SR)) / SR
        sf.write(
            root / f"{utt_id}.wav", (0.3 * np.sin(2 * np.pi * (120 + 10 * i) * t)).astype(np.float32), SR
        )
        lines.append(json.dumps({"id": utt_id, "audio": f"{utt_id}.wav", "text": text}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root / "manifest.jsonl"


def _prepare(manifest: Path, out: Path, **kwargs):
    defaults = dict(config=CONFIG, num_workers=0, valid_fraction=0.25, test_fraction=0.0, progress=False)
    return prepare_corpus("manifest", manifest, out, log=lambda _: None, **{**defaults, **kwargs})


@pytest.mark.parametrize("tokenizer", ["phonemes", "characters"])
def test_texts_the_tokenizer_cannot_read_are_dropped_and_listed(tmp_path: Path, tokenizer: str) -> None:
    texts = {f"ok{i}": f"A fine sentence number {i}." for i in range(4)}
    texts |= {"ru": "Привет, мир.", "zh": "你好。", "sym": "Tea ☃ time."}
    out = tmp_path / "out"
    result = _prepare(_manifest_corpus(tmp_path / "corpus", texts), out, tokenizer=tokenizer)
    assert [u.id for u in read_manifest(result.manifest)] == [f"ok{i}" for i in range(4)]
    rejected = dict(result.validation.rejected)
    assert set(rejected) == {"ru", "zh", "sym"}
    assert all(reason.startswith("untokenisable text: cannot speak") for reason in rejected.values())
    assert "Cyrillic" in rejected["ru"] and "CJK" in rejected["zh"]
    assert "untokenisable text: 3" in (out / "validation.txt").read_text()
    split_ids = {u.id for name in ("train", "valid") for u in read_manifest(result.split(name))}
    assert split_ids == {f"ok{i}" for i in range(4)}  # training never meets the others


def test_prepare_refuses_changed_input_redoes_it_with_force_and_repeats_nothing(tmp_path: Path) -> None:
    from prosody_vae.data.prepare import PreparedElsewhereError

    texts = {f"u{i}": f"Sentence {i}." for i in range(4)}
    manifest = _manifest_corpus(tmp_path / "corpus", texts)
    out = tmp_path / "out"
    _prepare(manifest, out)
    before = {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = _prepare(manifest, out)  # the same input: nothing is redone
    assert again.validation is None and again.extraction is None
    assert {p.name: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before

    # another corpus listing, into the same --out: refused before anything is touched
    other = _manifest_corpus(tmp_path / "other", {f"v{i}": f"Other {i}." for i in range(4)})
    with pytest.raises(PreparedElsewhereError, match=r"corpus .*differ.*--force"):
        _prepare(other, out)
    with pytest.raises(PreparedElsewhereError, match=r"audio \(hop_length\)"):
        _prepare(manifest, out, config=dataclasses.replace(CONFIG, hop_length=160))
    with pytest.raises(PreparedElsewhereError, match="tokenizer"):
        _prepare(manifest, out, tokenizer="characters")
    assert [u.id for u in read_manifest(out / "manifest.jsonl")] == list(texts)
    # --force: the old manifest, features and splits go, and the new input is prepared
    redone = _prepare(other, out, force=True)
    assert [u.id for u in read_manifest(redone.manifest)] == [f"v{i}" for i in range(4)]
    assert sorted(p.stem for p in (out / "features").glob("*.pt")) == [f"v{i}" for i in range(4)]


def test_repeated_ids_are_skipped_and_reported_not_fatal(tmp_path: Path) -> None:
    manifest = _manifest_corpus(tmp_path / "corpus", {f"u{i}": f"Sentence {i}." for i in range(4)})
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join([*lines, lines[0].replace("Sentence 0.", "Again.")]) + "\n")
    result = _prepare(manifest, tmp_path / "out")
    assert [u.text for u in read_manifest(result.manifest)][:1] == ["Sentence 0."]
    assert [utt_id for utt_id, reason in result.validation.rejected if reason.startswith("duplicate id")] == [
        "u0"
    ]


def test_the_prepare_command_drops_what_it_cannot_read(tmp_path: Path, capsys) -> None:
    from prosody_vae.cli import main

    manifest = _manifest_corpus(tmp_path / "corpus", {"a": "Fine.", "b": "Also fine.", "c": "Привет."})
    config = tmp_path / "exp.yaml"
    config.write_text(
        "audio: {sample_rate: 16000, n_fft: 512, hop_length: 128, win_length: 512, n_mels: 20, f_max: 7600.0}\n"
        "text: {tokenizer: characters}\n"
    )
    argv = ["prepare", "--corpus", "manifest", "--root", str(manifest), "--out", str(tmp_path / "out")]
    assert main([*argv, "--config", str(config), "--num-workers", "0"]) == 0
    assert "untokenisable text: 1" in capsys.readouterr().out
    assert [u.id for u in read_manifest(tmp_path / "out" / "manifest.jsonl")] == ["a", "b"]
    assert main([*argv, "--tokenizer", "phonemes", "--num-workers", "0"]) == 2  # another input: refused
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already prepared from different input" in err[0]
