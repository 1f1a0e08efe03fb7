"""``prosody-vae make-corpus`` takes the corpus settings of the recipe: a YAML --config and the flags,
checked at the door; the recipe script is the same command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prosody_vae.cli import main
from prosody_vae.data.espeak.corpus_config import read_corpus_config, resolve_corpus_settings
from prosody_vae.data.manifest import read_manifest

REPO = Path(__file__).resolve().parents[1]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@needs_espeak
def test_config_file_with_a_flag_on_top(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "corpus.yaml"
    config.write_text(
        "n_utterances: 40   # the flag below wins\n"
        "seed: 2\n"
        "num_workers: 2\n"
        "held_out_fraction: 0.0\n"
        "intonation: contour\n"
        "voices: [en-us, en-us+f4]\n"
        "held_out_voices: [en-us+m3]\n"
    )
    out = tmp_path / "corpus"
    assert main(["make-corpus", "--out", str(out), "--config", str(config), "--n", "6", "-q"]) == 0
    assert f"corpus manifest: {out / 'manifest.jsonl'}" in capsys.readouterr().out
    description = json.loads((out / "corpus.json").read_text())
    assert description["seed"] == 2 and description["intonation"] == "contour"
    assert description["voices"] == ["en-us", "en-us+f4", "en-us+m3"]
    assert description["held_out_voices"] == ["en-us+m3"]
    utterances = read_manifest(out / "manifest.jsonl")
    assert len(utterances) == description["n_utterances"] == 6
    assert {utt.speaker for utt in utterances} <= {"en-us", "en-us+f4", "en-us+m3"}
    assert all("contour" in utt.labels and "f0_spread_st" in utt.labels for utt in utterances)
    assert sorted(path.stem for path in (out / "f0").glob("*.npz")) == [utt.id for utt in utterances]

    # the recipe is the same command: the same settings give the same corpus
    recipe = tmp_path / "recipe"
    done = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "make_espeak_corpus.py"), "--out", str(recipe)]
        + ["--config", str(config), "--n", "6", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert [(u.id, u.text, u.speaker, u.labels) for u in read_manifest(recipe / "manifest.jsonl")] == [
        (u.id, u.text, u.speaker, u.labels) for u in utterances
    ]


@needs_espeak
def test_voices_and_intonation_as_flags(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    argv = ["make-corpus", "--out", str(out), "--n", "6", "--seed", "4", "--num-workers", "1", "-q"]
    argv += ["--voices", "en-us, en-us+f4", "--held-out-voices", "en-us+m3"]
    argv += ["--intonation", "contour", "--held-out-fraction", "0"]
    assert main(argv) == 0
    description = json.loads((out / "corpus.json").read_text())
    assert description["voices"] == ["en-us", "en-us+f4", "en-us+m3"]
    assert description["held_out_voices"] == ["en-us+m3"]
    assert description["intonation"] == "contour" and description["held_out_fraction"] == 0.0
    utterances = read_manifest(out / "manifest.jsonl")
    assert len(utterances) == 6
    held_out = [utt for utt in utterances if utt.labels["held_out_voice"]]
    assert all(utt.speaker == "en-us+m3" for utt in held_out)
    assert all(utt.labels["held_out_text"] == 0.0 for utt in utterances)  # fraction 0: no held-out text


@needs_espeak
def test_texts_per_setting_speaks_each_draw_twice(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    argv = ["make-corpus", "--out", str(out), "--n", "4", "--seed", "5", "--num-workers", "1", "-q"]
    argv += ["--voices", "en-us,en-us+f4", "--intonation", "contour", "--held-out-fraction", "0"]
    assert main([*argv, "--texts-per-setting", "2"]) == 0
    assert json.loads((out / "corpus.json").read_text())["texts_per_setting"] == 2
    first, second, third, fourth = read_manifest(out / "manifest.jsonl")
    drawn = ("pitch", "pitch_range", "rate", "contour", "setting_group")
    for a, b in ((first, second), (third, fourth)):
        assert a.speaker == b.speaker and a.text != b.text
        assert {k: a.labels[k] for k in drawn} == {k: b.labels[k] for k in drawn}
    assert (first.labels["setting_group"], third.labels["setting_group"]) == (0.0, 1.0)
    # the same folder with one text per setting is another corpus: refused, naming the setting
    assert main(argv) != 0


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("n_utterances: 6\nseeds: 1\n", "seeds"),  # a misspelt key
        ("n_utterances: six\n", "n_utterances"),
        ("n_utterances: 0\n", "n_utterances"),
        ("num_workers: true\n", "num_workers"),  # YAML's true is no worker count
        ("multi_speaker: 1\n", "multi_speaker"),
        ("seed: -1\n", "seed"),
        ("held_out_fraction: 1.5\n", "held_out_fraction"),
        ("intonation: rising\n", "intonation"),
        ("voices: en-us\n", "voices"),  # one name, not a list
        ("voices: [en-us, en us]\n", "voices"),
        ("voices: [en-us]\nheld_out_voices: [en-us]\n", "held_out_voices"),
    ],
)
def test_a_bad_config_is_one_line_naming_the_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture, text: str, key: str
) -> None:
    config = tmp_path / "corpus.yaml"
    config.write_text(text)
    out = tmp_path / "corpus"
    assert main(["make-corpus", "--out", str(out), "--config", str(config)]) == 2
    line = _one_error_line(capsys)
    assert str(config) in line and key in line
    assert not out.exists()  # refused before anything was written
    with pytest.raises(ValueError, match=key):
        read_corpus_config(config)


def test_the_recipe_reports_a_bad_config_the_same_way(tmp_path: Path) -> None:
    config = tmp_path / "corpus.yaml"
    config.write_text("n_utterances: 6\nintonaton: contour\n")
    done = subprocess.run(
        [sys.executable, str(REPO / "recipes" / "make_espeak_corpus.py")]
        + ["--out", str(tmp_path / "corpus"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and str(config) in done.stderr and "intonaton" in done.stderr
    assert not (tmp_path / "corpus").exists()


def test_flags_override_the_file_and_bad_flags_are_named(tmp_path: Path, capsys) -> None:
    config = tmp_path / "corpus.yaml"
    config.write_text("n_utterances: 40\nseed: 3\nvoices: [en-us, en-us+f4]\n")
    settings = resolve_corpus_settings(
        config, {"n_utterances": 8, "seed": None, "held_out_voices": "en-us+m3"}
    )
    assert settings == {
        "n_utterances": 8,
        "seed": 3,
        "voices": ["en-us", "en-us+f4"],
        "held_out_voices": ["en-us+m3"],
    }
    assert resolve_corpus_settings(None, {"seed": None}) == {}
    with pytest.raises(ValueError, match="multi_speaker"):  # the file's voices with --multi-speaker
        resolve_corpus_settings(config, {"multi_speaker": True})
    assert main(["make-corpus", "--out", str(tmp_path / "c"), "--n", "0"]) == 2
    assert "n_utterances must be >= 1" in _one_error_line(capsys)
    assert main(["make-corpus", "--out", str(tmp_path / "c"), "--config", str(tmp_path / "none.yaml")]) == 2
    assert "none.yaml" in _one_error_line(capsys)
    assert not (tmp_path / "c").exists()
