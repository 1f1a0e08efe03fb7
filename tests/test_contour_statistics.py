"""The contour-statistics head: its targets against hand values, its gradient into z, and training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import train_tiny

from prosody_vae.checkpoint import load_checkpoint
from prosody_vae.config import ExperimentConfig
from prosody_vae.tts.contour_statistics import SCALES, ContourStatisticsHead, contour_statistics


def test_contour_statistics_match_hand_values_and_ignore_padding_and_unvoiced_frames():
    # item 0: 11 frames rising from 100 to 200 Hz in equal log steps, one unvoiced frame at t = 5;
    # item 1: 4 voiced frames only (too few); both padded to 14 frames with junk past the length
    rising = 100.0 * 2.0 ** (torch.arange(11) / 10.0)
    rising[5] = 0.0
    f0 = torch.full((2, 14), 500.0)
    f0[0, :11] = rising
    f0[1, :6] = torch.tensor([0.0, 120.0, 0.0, 130.0, 140.0, 150.0])
    stats, valid = contour_statistics(f0, torch.tensor([11, 6]))
    assert valid.tolist() == [True, False]
    voiced_logs = torch.log(rising[rising > 0])
    spread = torch.quantile(voiced_logs, 0.9) - torch.quantile(voiced_logs, 0.1)
    assert stats[0, 0].item() == pytest.approx(spread.item())
    # the top fifth of 10 voiced frames: log-F0 at or above the 80th percentile, frames 9 and 10
    assert stats[0, 1].item() == pytest.approx((9 / 10 + 10 / 10) / 2)
    falling = torch.flip(f0[0, :11], dims=[0]).unsqueeze(0)
    fall_stats, _ = contour_statistics(falling, torch.tensor([11]))
    assert fall_stats[0, 1].item() == pytest.approx((0 / 10 + 1 / 10) / 2)
    assert fall_stats[0, 0].item() == pytest.approx(spread.item())  # a spread has no direction
    assert stats[1].tolist() == [0.0, 0.0]


def test_head_nll_matches_hand_values_and_reaches_z():
    head = ContourStatisticsHead(latent_dim=3)
    z = torch.randn(2, 3, requires_grad=True)
    f0 = torch.zeros(2, 12)
    f0[:, :10] = 100.0 * 2.0 ** (torch.arange(10) / 12.0)  # one semitone per frame
    lengths = torch.tensor([12, 12])
    nll = head.nll(z, f0, lengths)
    target, _ = contour_statistics(f0, lengths)
    expected = ((head(z) - target).abs() / torch.tensor(SCALES)).sum(dim=-1)
    torch.testing.assert_close(nll, expected)
    nll.sum().backward()
    assert z.grad.abs().max() > 0  # the term teaches the posterior, not only the head


def test_a_model_trains_with_the_contour_head_and_logs_it(tiny_prepared: Path, tmp_path: Path):
    checkpoint = train_tiny(
        tmp_path,
        tiny_prepared,
        steps=3,
        backbone={"pitch": True},
        prosody={"contour_weight": 0.05},
    )
    state = load_checkpoint(checkpoint)
    assert any(key.startswith("model.contour_head.") for key in state["training_module"])
    assert ExperimentConfig.from_dict(state["config"]).prosody.contour_weight == 0.05
    records = [json.loads(line) for line in (tmp_path / "exp" / "log.jsonl").read_text().splitlines()]
    contour = [r["contour"] for r in records if "contour" in r]
    assert contour and all(math.isfinite(c) and c > 0 for c in contour)


def test_a_negative_contour_weight_is_refused():
    with pytest.raises(ValueError, match="contour_weight"):
        ExperimentConfig.from_dict({"prosody": {"contour_weight": -1.0}})
