"""check-corpus: corpus, features, splits and the label check, on a reduced setting."""

from __future__ import annotations

import json

import pytest

from prosody_vae.cli import main

pytestmark = pytest.mark.slow


def test_check_corpus_builds_prepares_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["check-corpus", "--out", str(out), "--n", "12", "--num-workers", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sum(summary["splits"].values()) == 12
    assert len(list((out / "prepared" / "features").glob("*.pt"))) == 12
    correlations = summary["label_correlations"]
    # The drawn pitch setting moves the measured F0 level: a real label, not decoration.
    assert correlations["pitch~f0_mean_hz"] > 0.5
    assert "r = " in capsys.readouterr().out
    # A second run reuses everything it made (idempotent stages) and reports the same numbers.
    assert main(["check-corpus", "--out", str(out), "--n", "12", "--num-workers", "1"]) == 0
    assert json.loads((out / "summary.json").read_text()) == summary
