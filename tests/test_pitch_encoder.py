"""The reference F0 path of the posterior (prosody.reference_pitch): padding, zero start, contract,
warm start from a mel-only model, and synthesis from audio references."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from prosody_vae.prosody.pitch_encoder import PitchEncoder
from prosody_vae.prosody.reference_encoder import ReferenceEncoder
from prosody_vae.prosody.vae import CapacitronVAE


def _contour(frames: int, start_hz: float, end_hz: float) -> torch.Tensor:
    f0 = torch.linspace(start_hz, end_hz, frames)
    f0[::7] = 0.0  # some unvoiced frames
    return f0


def _randomised(encoder: PitchEncoder) -> PitchEncoder:
    torch.manual_seed(0)
    torch.nn.init.normal_(encoder.projection.weight, std=0.5)
    return encoder.eval()


def test_pitch_encoder_starts_at_zero_and_ignores_padding():
    encoder = PitchEncoder(out_dim=8)
    f0 = torch.stack([_contour(40, 90, 140), _contour(40, 140, 90)])
    assert torch.equal(encoder(f0, torch.tensor([40, 40])), torch.zeros(2, 8))  # zero-initialised
    encoder = _randomised(encoder)
    alone = encoder(_contour(23, 100, 160)[None], torch.tensor([23]))
    padded = torch.cat([_contour(23, 100, 160), torch.full((17,), 300.0)])  # garbage in the padding
    batch = torch.stack([padded, _contour(40, 140, 90)])
    together = encoder(batch, torch.tensor([23, 40]))
    torch.testing.assert_close(together[:1], alone, atol=1e-6, rtol=0)
    # a rising and a falling contour over the same frames are told apart
    assert not torch.allclose(together[1], encoder(_contour(40, 90, 140)[None], torch.tensor([40]))[0])


def test_posterior_contract_and_contour_dependence():
    ref = {"channels": (4, 4), "rnn_size": 8}
    vae = CapacitronVAE(n_mels=8, latent_dim=3, reference_encoder=ref, reference_pitch=True).eval()
    mel, lengths = torch.randn(2, 30, 8), torch.tensor([30, 30])
    with pytest.raises(ValueError, match="reference_pitch"):
        vae.posterior_of(mel, lengths)
    with pytest.raises(ValueError, match="reads no F0"):
        CapacitronVAE(n_mels=8, latent_dim=3, reference_encoder=ref).posterior_of(
            mel, lengths, f0=torch.zeros(2, 30)
        )
    rising = torch.stack([_contour(30, 90, 140)] * 2)
    falling = torch.stack([_contour(30, 140, 90)] * 2)
    # zero-initialised: the contour does not matter yet, the mel-only posterior is unchanged
    torch.testing.assert_close(
        vae.posterior_of(mel, lengths, f0=rising).mean, vae.posterior_of(mel, lengths, f0=falling).mean
    )
    _randomised(vae.pitch_encoder)
    a = vae.posterior_of(mel, lengths, f0=rising).mean
    b = vae.posterior_of(mel, lengths, f0=falling).mean
    assert (a - b).abs().max() > 1e-3  # same mel, other contour: another posterior


def test_a_mel_only_module_starts_a_pitch_reading_one_unchanged():
    ref = {"channels": (4, 4), "rnn_size": 8}
    torch.manual_seed(1)
    old = CapacitronVAE(n_mels=8, latent_dim=3, reference_encoder=ref).eval()
    new = CapacitronVAE(
        n_mels=8, latent_dim=3, reference_encoder=ReferenceEncoder(n_mels=8, **ref), reference_pitch=True
    )
    missing = new.load_state_dict(old.state_dict(), strict=False).missing_keys
    assert missing and all(key.startswith("pitch_encoder.") for key in missing)
    new.eval()
    mel, lengths = torch.randn(2, 30, 8), torch.tensor([30, 21])
    f0 = torch.stack([_contour(30, 90, 140), _contour(30, 140, 90)])
    torch.testing.assert_close(
        new.posterior_of(mel, lengths, f0=f0).mean, old.posterior_of(mel, lengths).mean
    )


def test_gradient_reaches_the_pitch_encoder():
    vae = CapacitronVAE(
        n_mels=8, latent_dim=3, reference_encoder={"channels": (4, 4), "rnn_size": 8}, reference_pitch=True
    )
    out = vae.encode(
        torch.randn(2, 30, 8), torch.tensor([30, 25]), f0=torch.stack([_contour(30, 90, 140)] * 2)
    )
    (out.mean.square().sum() + out.kl.sum()).backward()
    assert vae.pitch_encoder.projection.weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_trained_model_transfers_from_audio_and_refuses_a_mel(tiny_prepared: Path, tmp_path: Path):
    from conftest import train_tiny

    from prosody_vae.data.manifest import read_manifest
    from prosody_vae.inference.synthesizer import Synthesizer

    checkpoint = train_tiny(
        tmp_path, tiny_prepared, steps=2, backbone={"pitch": True}, prosody={"reference_pitch": True}
    )
    synth = Synthesizer.from_checkpoint(checkpoint)
    assert synth.model.reads_reference_f0
    item = read_manifest(tiny_prepared / "splits" / "train.jsonl")[0]
    mel, f0 = synth.reference_features(item.audio)
    assert f0 is not None and f0.shape == (mel.shape[0],) and (f0 > 0).any()
    result = synth.transfer("A short test.", item.audio, reference_text=item.text)
    assert result.mel.shape[0] > 0 and torch.isfinite(result.z).all()
    with pytest.raises(ValueError, match="not as a mel"):
        synth.transfer("A short test.", mel, reference_text=item.text)
