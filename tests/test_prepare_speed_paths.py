"""The fast paths of data preparation: F0 trackers of the feature cache, their record, their guard."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import librosa
import numpy as np
import pytest
import pyworld
import soundfile as sf
import torch

from prosody_vae.audio import AudioConfig, load_audio, log_mel, num_frames
from prosody_vae.audio.features import decimated_harvest_rate, harvest_f0
from prosody_vae.data.dataset import ProsodyDataset, collate
from prosody_vae.data.feature_cache import (
    F0_TRACKERS,
    extract_features,
    feature_path,
    load_features,
    read_f0_tracker,
)
from prosody_vae.data.manifest import Utterance
from prosody_vae.data.prepare import PreparedElsewhereError, prepare_corpus, prepared_f0_tracker

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
SR = 16000
SMALL = AudioConfig(sample_rate=SR, n_fft=512, hop_length=128, win_length=512, n_mels=20, f_max=7600.0)


def _tones(folder: Path, count: int) -> list[Utterance]:
    folder.mkdir(parents=True, exist_ok=True)
    utts = []
    for i in range(count):
        t = np.arange(int((0.6 + 0.05 * i) * SR)) / SR
        x = sum(0.3 / k * np.sin(2 * np.pi * k * (110 + 25 * i) * t) for k in range(1, 5))
        path = folder / f"t{i}.wav"
        sf.write(path, x.astype(np.float32), SR)
        utts.append(Utterance(id=f"t{i}", audio=str(path), text=f"Tone number {i}."))
    return utts


def _old_features(audio: str, config: AudioConfig) -> dict[str, np.ndarray]:
    """The cache's analysis as it was before the trackers, written out step by step."""
    wav = load_audio(audio, config)
    x64 = np.ascontiguousarray(wav, dtype=np.float64)
    f0, times = pyworld.harvest(
        x64,
        config.sample_rate,
        f0_floor=config.f0_min,
        f0_ceil=config.f0_max,
        frame_period=config.frame_period_ms,
    )
    f0 = pyworld.stonemask(x64, f0, times, config.sample_rate)
    length = num_frames(wav.shape[0], config)
    f0 = (f0[:length] if f0.shape[0] >= length else np.pad(f0, (0, length - f0.shape[0]))).astype(np.float32)
    energy = librosa.feature.rms(
        y=wav, frame_length=config.n_fft, hop_length=config.hop_length, center=True, pad_mode="reflect"
    )[0]
    energy = energy[:length] if energy.shape[0] >= length else np.pad(energy, (0, length - energy.shape[0]))
    return {"mel": log_mel(wav, config).numpy(), "f0": f0, "energy": energy.astype(np.float32)}


@pytest.mark.parametrize("num_workers", [0, 2])
def test_every_tracker_keeps_the_mel_and_energy_bitwise(tmp_path: Path, num_workers: int) -> None:
    utts = _tones(tmp_path / "wavs", 3)
    old = {utt.id: _old_features(utt.audio, SMALL) for utt in utts}
    for tracker in F0_TRACKERS:
        cache = tmp_path / tracker
        report = extract_features(
            utts, cache, SMALL, num_workers=num_workers, progress=False, f0_tracker=tracker
        )
        assert report.ok == [utt.id for utt in utts]
        for utt in utts:
            features = load_features(cache, utt.id)
            np.testing.assert_array_equal(features["mel"].numpy(), old[utt.id]["mel"])
            np.testing.assert_array_equal(features["energy"].numpy(), old[utt.id]["energy"])
            if tracker == "harvest":  # the reference tracker is the old F0, bit for bit
                np.testing.assert_array_equal(features["f0"].numpy(), old[utt.id]["f0"])
            if tracker == "none":
                assert "f0" not in features
            else:
                assert features["f0"].shape == features["mel"].shape[:1]


def _agreement(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Voicing decision error over all frames; on frames both call voiced, the gross error rate
    (more than 20% off) and the 90th percentile of the absolute deviation in cents."""
    both = (reference > 0) & (other > 0)
    ratio = other[both] / reference[both]
    return {
        "vde": float(np.mean((reference > 0) != (other > 0))),
        "gpe": float(np.mean(np.abs(ratio - 1.0) > 0.2)),
        "p90_cents": float(np.percentile(1200.0 * np.abs(np.log2(ratio)), 90)),
    }


def _within_tolerance(agreement: dict[str, float]) -> bool:
    # The stated tolerance: the pooled corpus figures (docs/corpus.md) are VDE 2.5%, GPE 1-1.3%, and
    # most frames come out identical, because StoneMask refines both on the same full-rate signal.
    return agreement["vde"] <= 0.05 and agreement["gpe"] <= 0.05 and agreement["p90_cents"] <= 10.0


@needs_espeak
def test_decimated_harvest_agrees_with_the_reference_on_a_real_utterance(tmp_path: Path) -> None:
    from prosody_vae.data.espeak import synthesize

    config = AudioConfig()
    path = synthesize(
        "The gardener borrowed a white candle from the old bakery on Sunday morning.",
        pitch=40,
        pitch_range=90,
        rate=200,
        out_path=tmp_path / "u.wav",
    )
    utt = Utterance(id="u", audio=str(path), text="x")
    extract_features([utt], tmp_path / "reference", config, num_workers=0, progress=False)
    extract_features(
        [utt], tmp_path / "fast", config, num_workers=0, progress=False, f0_tracker="harvest-decimated"
    )
    reference = load_features(tmp_path / "reference", "u")["f0"].numpy()
    fast = load_features(tmp_path / "fast", "u")["f0"].numpy()
    torch.testing.assert_close(  # only the F0 differs between the two caches
        load_features(tmp_path / "fast", "u")["mel"],
        load_features(tmp_path / "reference", "u")["mel"],
        rtol=0,
        atol=0,
    )
    assert np.mean(reference > 0) > 0.5  # a voiced utterance, so the comparison has frames to judge
    assert _within_tolerance(_agreement(reference, fast)), _agreement(reference, fast)
    # The tolerance is not vacuous: a track one semitone off, or one that drops every 10th voiced
    # frame, fails it.
    assert not _within_tolerance(_agreement(reference, reference * 2 ** (1 / 12)))
    dropped = reference.copy()
    dropped[np.flatnonzero(reference > 0)[::10]] = 0.0
    assert not _within_tolerance(_agreement(reference, dropped))


def test_decimated_rate_and_its_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert decimated_harvest_rate(AudioConfig()) == 4000  # 6 * 600 Hz, rounded up to whole kHz
    assert decimated_harvest_rate(AudioConfig(f0_max=400.0)) == 3000
    assert (
        decimated_harvest_rate(AudioConfig(sample_rate=8000, f_max=4000.0, f0_max=1500.0)) == 8000
    )  # capped
    wav = _tone()
    for bad in (1000, 0, 44100, 4000.0):
        with pytest.raises(ValueError, match="rate"):
            harvest_f0(wav, AudioConfig(), rate=bad)
    # Harvest itself runs at the lower rate (which is where the time goes); StoneMask at the full one.
    rates: dict[str, int] = {}
    real_harvest, real_stonemask = pyworld.harvest, pyworld.stonemask

    def harvest(x, fs, **kwargs):
        rates["harvest"] = fs
        return real_harvest(x, fs, **kwargs)

    def stonemask(x, f0, times, fs):
        rates["stonemask"] = fs
        return real_stonemask(x, f0, times, fs)

    monkeypatch.setattr(pyworld, "harvest", harvest)
    monkeypatch.setattr(pyworld, "stonemask", stonemask)
    harvest_f0(wav, AudioConfig(), rate=4000)
    assert rates == {"harvest": 4000, "stonemask": 22050}
    # the analysis rate itself is the reference track
    np.testing.assert_array_equal(harvest_f0(wav, AudioConfig(), rate=22050), harvest_f0(wav, AudioConfig()))


def _tone() -> np.ndarray:
    t = np.arange(11025) / 22050
    return (0.5 * np.sin(2 * np.pi * 150.0 * t)).astype(np.float32)


def test_the_tracker_is_recorded_in_the_cache_and_the_prepared_folder(tmp_path: Path) -> None:
    utts = _tones(tmp_path / "wavs", 2)
    for tracker in F0_TRACKERS:
        cache = tmp_path / "caches" / tracker
        assert read_f0_tracker(cache) is None
        extract_features(utts, cache, SMALL, num_workers=0, progress=False, f0_tracker=tracker)
        assert read_f0_tracker(cache) == tracker
        record = json.loads((cache / "f0_tracker.json").read_text())
        assert record["tracker"] == tracker
        if tracker == "harvest-decimated":
            assert "4000 Hz" in record["method"] and "16000 Hz" in record["method"]

    lines = [json.dumps({"id": u.id, "audio": u.audio, "text": u.text}) for u in utts]
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "prepared"
    kwargs = dict(config=SMALL, num_workers=0, valid_fraction=0.0, test_fraction=0.0, progress=False)
    prepare_corpus(
        "manifest", tmp_path / "manifest.jsonl", out, f0_tracker="none", log=lambda _: None, **kwargs
    )
    assert json.loads((out / "prepare.json").read_text())["options"]["f0_tracker"] == "none"
    assert read_f0_tracker(out / "features") == "none"
    # A cache without F0 trains a model without pitch: its batches simply carry no F0 track.
    train = [u for u in utts if feature_path(out / "features", u.id).is_file()]
    dataset = ProsodyDataset(train, out / "features", tokenizer=_Letters())
    assert collate([dataset[0], dataset[1]]).f0 is None


class _Letters:
    def encode(self, text: str) -> list[int]:
        return [ord(c) % 50 + 1 for c in text]


def test_a_cache_of_one_tracker_refuses_another(tmp_path: Path) -> None:
    utts = _tones(tmp_path / "wavs", 2)
    cache = tmp_path / "cache"
    extract_features(utts[:1], cache, SMALL, num_workers=0, progress=False, f0_tracker="harvest-decimated")
    for other in ("harvest", "none"):
        with pytest.raises(ValueError, match=rf"{cache}.*'harvest-decimated', not '{other}'"):
            extract_features(utts, cache, SMALL, num_workers=0, progress=False, f0_tracker=other)
    assert not feature_path(cache, "t1").exists()  # refused before anything was computed
    with pytest.raises(ValueError, match="F0 tracker must be one of"):
        extract_features(utts, tmp_path / "new", SMALL, num_workers=0, progress=False, f0_tracker="dio")
    (cache / "f0_tracker.json").write_text('{"tracker": "crepe"}')
    with pytest.raises(ValueError, match=r"f0_tracker.json.*crepe"):
        read_f0_tracker(cache)


def test_a_cache_from_before_the_record_counts_as_harvest(tmp_path: Path) -> None:
    utts = _tones(tmp_path / "wavs", 2)
    cache = tmp_path / "cache"
    extract_features(utts[:1], cache, SMALL, num_workers=0, progress=False)
    (cache / "f0_tracker.json").unlink()  # as an older version left it
    assert read_f0_tracker(cache) == "harvest"
    with pytest.raises(ValueError, match=rf"{cache}.*'harvest' \(built before trackers were recorded\)"):
        extract_features(utts, cache, SMALL, num_workers=0, progress=False, f0_tracker="harvest-decimated")
    report = extract_features(utts, cache, SMALL, num_workers=0, progress=False, f0_tracker="harvest")
    assert report.skipped_existing == ["t0"] and report.ok == ["t1"]
    assert json.loads((cache / "f0_tracker.json").read_text())["tracker"] == "harvest"


def test_prepare_refuses_another_tracker_and_reads_old_records_as_harvest(tmp_path: Path) -> None:
    utts = _tones(tmp_path / "wavs", 3)
    lines = [json.dumps({"id": u.id, "audio": u.audio, "text": u.text}) for u in utts]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    kwargs = dict(config=SMALL, num_workers=0, valid_fraction=0.0, test_fraction=0.0, progress=False)
    prepare_corpus("manifest", manifest, out, log=lambda _: None, **kwargs)
    with pytest.raises(PreparedElsewhereError, match=r"options \(f0_tracker\)"):
        prepare_corpus("manifest", manifest, out, f0_tracker="none", log=lambda _: None, **kwargs)

    # prepare.json of an older version has no f0_tracker option: it extracted Harvest, so the same call
    # is the same input and nothing is redone.
    record = json.loads((out / "prepare.json").read_text())
    del record["options"]["f0_tracker"]
    (out / "prepare.json").write_text(json.dumps(record))
    assert prepared_f0_tracker(out) == "harvest"
    again = prepare_corpus("manifest", manifest, out, log=lambda _: None, **kwargs)
    assert again.extraction is None
    with pytest.raises(PreparedElsewhereError, match=r"options \(f0_tracker\)"):
        prepare_corpus(
            "manifest", manifest, out, f0_tracker="harvest-decimated", log=lambda _: None, **kwargs
        )
    # --force: the features are extracted again with the new tracker
    redone = prepare_corpus(
        "manifest", manifest, out, f0_tracker="harvest-decimated", force=True, log=lambda _: None, **kwargs
    )
    assert redone.extraction is not None and len(redone.extraction.ok) == 3
    assert read_f0_tracker(out / "features") == "harvest-decimated"
    assert prepared_f0_tracker(out) == "harvest-decimated" and prepared_f0_tracker(tmp_path / "new") is None
    with pytest.raises(ValueError, match="f0_tracker must be one of"):
        prepare_corpus("manifest", manifest, tmp_path / "other", f0_tracker="dio", **kwargs)


def test_the_prepare_command_takes_the_tracker_from_the_config(tmp_path: Path, capsys) -> None:
    from prosody_vae.cli import main

    utts = _tones(tmp_path / "wavs", 3)
    lines = [json.dumps({"id": u.id, "audio": u.audio, "text": u.text}) for u in utts]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    audio = "audio: {sample_rate: 16000, n_fft: 512, hop_length: 128, win_length: 512, n_mels: 20, f_max: 7600.0}\n"
    plain, pitched, reference = tmp_path / "plain.yaml", tmp_path / "pitch.yaml", tmp_path / "ref.yaml"
    plain.write_text(audio)
    pitched.write_text(audio + "backbone: {pitch: true}\n")
    reference.write_text(audio + "prosody: {reference_pitch: true}\n")  # the posterior reads F0
    argv = ["prepare", "--corpus", "manifest", "--root", str(manifest), "--num-workers", "0"]
    cases = [
        (["--config", str(plain)], "none"),
        (["--config", str(pitched)], "harvest"),
        (["--config", str(plain), "--f0", "harvest-decimated"], "harvest-decimated"),
        (["--config", str(reference)], "harvest"),
    ]
    for index, (extra, expected) in enumerate(cases):
        out = tmp_path / f"out{index}"
        assert main([*argv, "--out", str(out), *extra]) == 0
        assert read_f0_tracker(out / "features") == expected
        stored = load_features(out / "features", "t0")
        assert ("f0" in stored) == (expected != "none")
    assert "--f0 none" in capsys.readouterr().out
    # A folder prepared before keeps its tracker when --f0 is not given: the same command with a
    # config without pitch finds it prepared and does nothing; an explicit other --f0 is refused.
    stamp = feature_path(tmp_path / "out1" / "features", "t0").stat().st_mtime_ns
    assert main([*argv, "--out", str(tmp_path / "out1"), "--config", str(plain)]) == 0
    assert "already done" in capsys.readouterr().out
    assert read_f0_tracker(tmp_path / "out1" / "features") == "harvest"
    assert feature_path(tmp_path / "out1" / "features", "t0").stat().st_mtime_ns == stamp
    assert main([*argv, "--out", str(tmp_path / "out1"), "--config", str(plain), "--f0", "none"]) == 2
    assert "f0_tracker" in capsys.readouterr().err
    torch.testing.assert_close(
        load_features(tmp_path / "out0" / "features", "t0")["mel"],
        load_features(tmp_path / "out1" / "features", "t0")["mel"],
        rtol=0,
        atol=0,
    )


def test_in_process_extraction_runs_on_one_torch_thread_and_restores_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prosody_vae.data import feature_cache

    utts = _tones(tmp_path / "wavs", 2)
    seen: list[int] = []
    real_compute = feature_cache._compute

    def compute(*args):
        seen.append(torch.get_num_threads())
        return real_compute(*args)

    monkeypatch.setattr(feature_cache, "_compute", compute)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        extract_features(utts, tmp_path / "cache", SMALL, num_workers=1, progress=False, f0_tracker="none")
        assert seen == [1, 1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_recipes_pass_the_tracker_to_stage_1(tmp_path: Path) -> None:
    import subprocess
    import sys

    template = Path(__file__).resolve().parents[1] / "egs" / "TEMPLATE" / "tts.sh"
    utts = _tones(tmp_path / "wavs", 3)
    (tmp_path / "list.txt").write_text("".join(f"{u.audio}|{u.text}\n" for u in utts))
    (tmp_path / "audio.yaml").write_text(
        "sample_rate: 16000\nn_fft: 512\nhop_length: 128\nwin_length: 512\nn_mels: 20\nf_max: 7600.0\n"
    )
    args = ["--corpus", "filelist", "--corpus_dir", str(tmp_path / "list.txt"), "--dump", "dump", "--nj", "1"]
    args += ["--prepare_opts", f"--no-progress --audio-config {tmp_path / 'audio.yaml'}", "--stop_stage", "1"]
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(template), *args, "--f0", "none"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert read_f0_tracker(tmp_path / "dump" / "features") == "none"
    assert prepared_f0_tracker(tmp_path / "dump") == "none"
    assert "f0" not in load_features(tmp_path / "dump" / "features", "t0")
    # a tracker the recipe script does not know is its usage error
    bad = subprocess.run(
        ["bash", str(template), *args, "--f0", "dio", "--dump", "other"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--f0" in bad.stderr and "dio" in bad.stderr
