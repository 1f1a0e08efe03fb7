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
from prosody_vae.tts.contour_statistics import (
    RATE_SCALE,
    SCALES,
    ContourStatisticsHead,
    contour_statistics,
    rate_statistic,
)


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


def test_rate_statistic_is_log_tokens_per_frame_and_faster_speech_scores_higher():
    tokens = torch.tensor([20, 20, 30])
    frames = torch.tensor([100, 50, 100])
    rate = rate_statistic(tokens, frames)
    torch.testing.assert_close(rate, torch.log(torch.tensor([0.2, 0.4, 0.3])))
    assert rate[1] > rate[2] > rate[0]  # the same text in half the frames is twice as fast


def test_rate_network_adds_its_own_term_even_without_voiced_frames():
    torch.manual_seed(0)
    head = ContourStatisticsHead(latent_dim=3, rate=True)
    z = torch.randn(2, 3, requires_grad=True)
    f0 = torch.zeros(2, 12)
    f0[0, :10] = 100.0 * 2.0 ** (torch.arange(10) / 12.0)  # item 1 is unvoiced: no contour term
    lengths, tokens = torch.tensor([12, 8]), torch.tensor([6, 6])
    nll = head.nll(z, f0, lengths, tokens)
    target, valid = contour_statistics(f0, lengths)
    contour = ((head(z) - target).abs() / torch.tensor(SCALES)).sum(dim=-1) * valid.float()
    rate = (head.rate_net(z).squeeze(-1) - torch.log(tokens / lengths)).abs() / RATE_SCALE
    torch.testing.assert_close(nll, contour + rate)
    assert nll[1] > 0  # the rate is told for every item
    nll.sum().backward()
    assert z.grad[1].abs().max() > 0  # and teaches z through the rate alone
    with pytest.raises(ValueError, match="token_lengths"):
        head.nll(z, f0, lengths)


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


def test_contour_rate_without_the_contour_head_is_refused():
    with pytest.raises(ValueError, match="contour_rate"):
        ExperimentConfig.from_dict({"prosody": {"contour_rate": True}})


def test_a_model_with_the_rate_network_trains_and_starts_from_one_without_it(
    tiny_prepared: Path, tmp_path: Path
):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = train_tiny(
        tmp_path / "a", tiny_prepared, steps=2, backbone={"pitch": True}, prosody={"contour_weight": 0.05}
    )
    second = train_tiny(
        tmp_path / "b",
        tiny_prepared,
        steps=2,
        backbone={"pitch": True},
        prosody={"contour_weight": 0.05, "contour_rate": True},
        train={"init_from": str(first)},
    )
    before = load_checkpoint(first)["training_module"]
    after = load_checkpoint(second)["training_module"]
    assert any(key.startswith("model.contour_head.rate_net.") for key in after)
    assert not any(key.startswith("model.contour_head.rate_net.") for key in before)
    records = [json.loads(line) for line in (tmp_path / "b" / "exp" / "log.jsonl").read_text().splitlines()]
    assert [r["contour"] for r in records if "contour" in r]
