"""The reference F0 track is computed once: the corpus build stores it, prepare reuses it bit for bit
where it provably matches, and a model that needs F0 refuses a cache without it at set-up."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from prosody_vae.audio import AudioConfig, f0_energy, load_audio
from prosody_vae.data import feature_cache
from prosody_vae.data.f0_store import read_track, reference_computation, track_path, write_track
from prosody_vae.data.feature_cache import extract_features, load_features, read_f0_tracker
from prosody_vae.data.manifest import read_manifest
from prosody_vae.data.prepare import prepare_corpus

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
CONFIG = AudioConfig()  # the built-in corpus's analysis


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A 4-utterance built-in corpus with its stored tracks (read-only: copy it to change it)."""
    from prosody_vae.data.espeak import build_corpus

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    out = tmp_path_factory.mktemp("f0_corpus") / "corpus"
    build_corpus(out, n_utterances=4, seed=1, num_workers=1, progress=False)
    return out


@pytest.fixture
def corpus(built: Path, tmp_path: Path) -> Path:
    """A private copy of ``built`` (file times kept)."""
    return Path(shutil.copytree(built, tmp_path / "corpus"))


def _no_harvest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the feature cache's Harvest fail, so that only reused tracks can give F0."""

    def refuse(*args, **kwargs):
        raise AssertionError("Harvest ran although a stored track matched")

    monkeypatch.setattr(feature_cache, "harvest_f0", refuse)


@needs_espeak
def test_the_build_stores_the_track_its_labels_were_measured_on(built: Path) -> None:
    description = json.loads((built / "corpus.json").read_text())
    assert description["f0_tracks"]["folder"] == "f0"
    assert description["f0_tracks"] == {"folder": "f0", **reference_computation(CONFIG)}
    assert description["counts"]["f0_tracked_this_run"] == 4
    for utt in read_manifest(built / "manifest.jsonl"):
        wav = load_audio(utt.audio, CONFIG)
        reference = f0_energy(wav, CONFIG)[0]
        with np.load(built / "f0" / f"{utt.id}.npz") as stored:
            assert stored["f0"].dtype == np.float32
            np.testing.assert_array_equal(stored["f0"], reference)  # bit for bit
        voiced = reference[reference > 0]
        assert utt.labels["f0_mean_hz"] == pytest.approx(float(voiced.astype(np.float64).mean()), abs=0)


@needs_espeak
def test_a_rebuild_measures_from_the_stored_tracks_and_changes_nothing(corpus: Path) -> None:
    from prosody_vae.data.espeak import build_corpus

    before = read_manifest(corpus / "manifest.jsonl")
    stamps = {path: path.stat().st_mtime_ns for path in (corpus / "f0").iterdir()}
    build_corpus(corpus, n_utterances=4, seed=1, num_workers=1, progress=False)
    counts = json.loads((corpus / "corpus.json").read_text())["counts"]
    assert counts["f0_tracked_this_run"] == 0 and counts["synthesised_this_run"] == 0
    assert read_manifest(corpus / "manifest.jsonl") == before
    assert {path: path.stat().st_mtime_ns for path in (corpus / "f0").iterdir()} == stamps
    # a corpus built before the tracks were kept gets them on its next run
    shutil.rmtree(corpus / "f0")
    build_corpus(corpus, n_utterances=4, seed=1, num_workers=1, progress=False)
    assert json.loads((corpus / "corpus.json").read_text())["counts"]["f0_tracked_this_run"] == 4
    assert read_manifest(corpus / "manifest.jsonl") == before
    assert sorted(path.name for path in (corpus / "f0").iterdir()) == sorted(
        f"{utt.id}.npz" for utt in before
    )


@needs_espeak
@pytest.mark.parametrize("num_workers", [0, 2])
def test_prepare_reuses_stored_tracks_bitwise(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, num_workers: int
) -> None:
    utterances = read_manifest(corpus / "manifest.jsonl")
    ids = [utt.id for utt in utterances]
    computed = extract_features(utterances, tmp_path / "computed", CONFIG, num_workers=0, progress=False)
    assert computed.ok == ids and computed.reused_f0 == []
    if num_workers == 0:
        _no_harvest(monkeypatch)  # in this process: reuse is the only way to get F0 now
    messages: list[str] = []
    result = prepare_corpus(
        "manifest",
        corpus / "manifest.jsonl",
        tmp_path / "prepared",
        config=CONFIG,
        num_workers=num_workers,
        valid_fraction=0.25,
        test_fraction=0.0,
        progress=False,
        log=messages.append,
    )
    assert result.extraction.ok == ids and result.extraction.reused_f0 == ids
    assert any("F0 of 4 from stored tracks" in message for message in messages)
    for utt_id in ids:
        reused = load_features(result.features, utt_id)
        fresh = load_features(tmp_path / "computed", utt_id)
        assert set(reused) == set(fresh) == {"mel", "energy", "f0"}
        for key in fresh:
            assert reused[key].dtype == fresh[key].dtype
            assert reused[key].numpy().tobytes() == fresh[key].numpy().tobytes(), key
    # idempotent as before: a second prepare does nothing
    again = prepare_corpus(
        "manifest",
        corpus / "manifest.jsonl",
        tmp_path / "prepared",
        config=CONFIG,
        num_workers=num_workers,
        valid_fraction=0.25,
        test_fraction=0.0,
        progress=False,
        log=lambda _: None,
    )
    assert again.extraction is None


def _rewrite(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Replace the file's audio, keeping its size and modification time."""
    stat = path.stat()
    sf.write(path, samples, sample_rate, subtype="PCM_16")
    assert path.stat().st_size == stat.st_size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@needs_espeak
def test_a_changed_wav_or_analysis_is_not_reused(corpus: Path, tmp_path: Path) -> None:
    utterances = read_manifest(corpus / "manifest.jsonl")
    first, second, third = (Path(utt.audio) for utt in utterances[:3])
    # other content of the same size and time stamp: louder by 10% in its second half
    samples, rate = sf.read(first, dtype="int16")
    louder = samples.astype(np.float64)
    louder[len(louder) // 2 :] *= 1.1
    _rewrite(first, np.clip(louder, -32768, 32767).astype(np.int16), rate)
    # another utterance's audio altogether
    shutil.copyfile(third, second)
    # a damaged track file is ignored too
    (corpus / "f0" / f"{utterances[3].id}.npz").write_bytes(b"not a track")

    report = extract_features(
        utterances, tmp_path / "cache", CONFIG, num_workers=0, progress=False, f0_store=corpus / "f0"
    )
    assert report.ok == [utt.id for utt in utterances]
    assert report.reused_f0 == [utterances[2].id]  # only the untouched utterance
    for utt in utterances:
        expected = f0_energy(load_audio(utt.audio, CONFIG), CONFIG)[0]  # the F0 of the audio as it is now
        np.testing.assert_array_equal(load_features(tmp_path / "cache", utt.id)["f0"].numpy(), expected)

    # the same audio under another analysis, or another tracker, computes its own F0
    other = dataclasses.replace(CONFIG, trim_top_db=30.0)
    elsewhere = extract_features(
        utterances[2:3], tmp_path / "other", other, num_workers=0, progress=False, f0_store=corpus / "f0"
    )
    assert elsewhere.ok == [utterances[2].id] and elsewhere.reused_f0 == []
    decimated = extract_features(
        utterances[2:3],
        tmp_path / "decimated",
        CONFIG,
        num_workers=0,
        progress=False,
        f0_tracker="harvest-decimated",
        f0_store=corpus / "f0",
    )
    assert decimated.reused_f0 == []


def test_a_track_records_its_audio_and_computation(tmp_path: Path) -> None:
    t = np.arange(11025) / 22050
    audio = tmp_path / "a.wav"
    sf.write(audio, (0.5 * np.sin(2 * np.pi * 150.0 * t)).astype(np.float32), 22050)
    f0 = np.linspace(100, 200, 44, dtype=np.float32)
    path = write_track(track_path(tmp_path / "f0", "a"), f0, audio=audio, config=CONFIG)
    assert path == tmp_path / "f0" / "a.npz" and not list((tmp_path / "f0").glob(".*"))
    np.testing.assert_array_equal(read_track(path, audio=audio, config=CONFIG, frames=44), f0)
    assert read_track(path, audio=audio, config=CONFIG, frames=45) is None  # another frame grid
    assert read_track(path, audio=audio, config=dataclasses.replace(CONFIG, f0_max=500.0), frames=44) is None
    assert read_track(tmp_path / "f0" / "b.npz", audio=audio, config=CONFIG, frames=44) is None
    with pytest.raises(ValueError, match="float32"):
        write_track(path, f0.astype(np.float64), audio=audio, config=CONFIG)
    with pytest.raises(ValueError, match="file name"):
        track_path(tmp_path, "../a")


# --- a model that needs F0 on a cache without it: refused at set-up ----------------------------------
@pytest.fixture(scope="module")
def no_f0_prepared(tiny_prepared: Path, tmp_path_factory) -> Path:
    """The tiny corpus prepared again with ``--f0 none``."""
    out = tmp_path_factory.mktemp("no_f0") / "prepared"
    prepare_corpus(
        "manifest",
        tiny_prepared.parent / "corpus" / "manifest.jsonl",
        out,
        config=AudioConfig(),
        num_workers=0,
        valid_fraction=0.15,
        test_fraction=0.0,
        f0_tracker="none",
        progress=False,
        log=lambda _: None,
    )
    assert read_f0_tracker(out / "features") == "none"
    return out


def _experiment(path: Path, data_root: Path, **sections) -> Path:
    from conftest import TINY_MODEL

    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["data"] = {"root": str(data_root), "batch_size": 4}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    "sections",
    [{"backbone": {"pitch": True}}, {"prosody": {"reference_pitch": True}}],
    ids=["backbone.pitch", "prosody.reference_pitch"],
)
def test_training_that_needs_f0_fails_at_setup_on_a_cache_without_it(
    no_f0_prepared: Path, tmp_path: Path, capsys: pytest.CaptureFixture, sections: dict
) -> None:
    from prosody_vae.cli import main

    ((section, values),) = sections.items()
    (name,) = values
    config = _experiment(tmp_path / "config.yaml", no_f0_prepared, **sections)
    exp = tmp_path / "exp"
    argv = ["train", "--config", str(config), "--out", str(exp), "--max-steps", "1", "--threads", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert str(no_f0_prepared) in err[0] and f"{section}.{name}" in err[0]
    assert "prepare" in err[0] and "--f0 harvest --force" in err[0]
    assert not (exp / "checkpoints").exists() and not (exp / "config.yaml").exists()  # nothing set up


def test_a_model_without_f0_still_sets_up_on_a_cache_without_it(no_f0_prepared: Path, tmp_path: Path) -> None:
    from prosody_vae.config import load_config
    from prosody_vae.training.data import build_training_data
    from prosody_vae.training.distributed import DistributedContext

    plain = load_config(_experiment(tmp_path / "plain.yaml", no_f0_prepared))
    data = build_training_data(plain, DistributedContext())
    assert len(data.train_set) > 0 and "f0" not in data.train_set[0]
    pitched = load_config(_experiment(tmp_path / "pitch.yaml", no_f0_prepared, backbone={"pitch": True}))
    with pytest.raises(ValueError, match="holds no F0"):
        build_training_data(pitched, DistributedContext())
