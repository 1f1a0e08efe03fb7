"""The adversarial voice classifier on z (prosody.voice_adversary_weight): gradient reversal, and what
training with it does to the classifier and to the prosody encoder."""

from __future__ import annotations

import pytest
import torch
from conftest import MICRO_BACKBONE

from prosody_vae.config import ExperimentConfig
from prosody_vae.data.dataset import Batch
from prosody_vae.prosody.capacity import CapacityObjective
from prosody_vae.training.objective import TrainingModule
from prosody_vae.tts.model import build_model
from prosody_vae.tts.voice_adversary import VoiceAdversary, reverse_gradient

SIZES = {
    "backbone": MICRO_BACKBONE,
    "prosody": {
        "latent_dim": 3,
        "ref_channels": [4, 4],
        "ref_rnn_size": 8,
        "text_summary": False,
        "speaker_dim": 4,
    },
}


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.randn(5, 3, requires_grad=True)
    (reverse_gradient(x, 0.5) * torch.arange(3.0)).sum().backward()
    torch.testing.assert_close(x.grad, -0.5 * torch.arange(3.0).expand(5, 3))


def test_the_classifier_learns_while_z_is_pushed_to_hide_the_voice():
    torch.manual_seed(0)
    adversary = VoiceAdversary(latent_dim=2, n_speakers=2, hidden_dim=8)
    speakers = torch.tensor([0, 1] * 8)
    z = (speakers.float().unsqueeze(-1) * 2 - 1).repeat(1, 2) + 0.1 * torch.randn(16, 2)  # voice in z
    z.requires_grad_(True)
    first = adversary(z, speakers).mean()
    first.backward()
    # reversed: a step along -grad (what the optimiser does to the encoder) raises the classifier's loss
    with torch.no_grad():
        moved = adversary(z - 0.5 * z.grad, speakers).mean()
    assert moved > first
    optimiser = torch.optim.Adam(adversary.parameters(), lr=0.05)
    for _ in range(50):  # the classifier itself descends: it learns to name the voice
        optimiser.zero_grad()
        loss = adversary(z.detach(), speakers).mean()
        loss.backward()
        optimiser.step()
    assert loss < 0.5 * first.detach()
    with pytest.raises(ValueError, match="n_speakers >= 2"):
        VoiceAdversary(latent_dim=2, n_speakers=1)


def test_training_module_adds_the_weighted_cross_entropy():
    config = ExperimentConfig.from_dict(
        {**SIZES, "prosody": {**SIZES["prosody"], "voice_adversary_weight": 0.5}}
    )
    torch.manual_seed(0)
    model = build_model(config, n_symbols=10, n_speakers=3)
    assert model.voice_adversary is not None
    assert build_model(ExperimentConfig.from_dict(SIZES), n_symbols=10, n_speakers=3).voice_adversary is None
    assert build_model(config, n_symbols=10, n_speakers=1).voice_adversary is None  # single voice: none
    batch = Batch(
        ids=["a", "b", "c"],
        tokens=torch.randint(1, 10, (3, 6)),
        token_lengths=torch.tensor([6, 5, 4]),
        mels=torch.randn(3, 12, 80),
        mel_lengths=torch.tensor([12, 10, 8]),
        speakers=torch.tensor([0, 1, 2]),
        labels=[{}, {}, {}],
    )
    module = TrainingModule(model=model, objective=CapacityObjective(5.0), voice_adversary_weight=0.5)
    parts, _ = module(batch)
    assert parts.voice_adversary > 0
    torch.manual_seed(0)
    plain = TrainingModule(model=model, objective=CapacityObjective(5.0), voice_adversary_weight=0.0)
    torch.manual_seed(0)
    parts, _ = module(batch)
    torch.manual_seed(0)
    without, _ = plain(batch)
    torch.testing.assert_close(parts.loss - without.loss, 0.5 * parts.voice_adversary)
