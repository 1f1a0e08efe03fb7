"""prosody.reference_warp: the posterior's reference mel gets a random vocal-tract-length warp in
training; energy moves from f to alpha * f, padding stays zero, eval mode and alpha = 1 change nothing."""

from __future__ import annotations

import librosa
import pytest
import torch

from prosody_vae.tts.reference_warp import ReferenceWarp


def _warp(max_warp: float = 0.2) -> ReferenceWarp:
    return ReferenceWarp(n_mels=80, f_min=0.0, f_max=8000.0, max_warp=max_warp)


def test_alpha_one_is_the_identity_and_eval_mode_never_warps() -> None:
    mels = torch.randn(3, 20, 80)
    warp = _warp()
    torch.testing.assert_close(warp.warp(mels, torch.ones(3)), mels)
    assert torch.equal(warp.eval()(mels), mels)
    assert torch.equal(_warp(0.0).train()(mels), mels)
    with pytest.raises(ValueError, match="max_warp"):
        _warp(0.6)


def test_energy_moves_from_f_to_alpha_f() -> None:
    centres = librosa.mel_frequencies(82, fmin=0.0, fmax=8000.0, htk=False)[1:-1]
    peak = int(abs(centres - 1000.0).argmin())  # a formant-like peak near 1 kHz
    mels = torch.full((2, 5, 80), -5.0)
    mels[:, :, peak] = 0.0
    out = _warp().warp(mels, torch.tensor([1.2, 1 / 1.2]))
    for item, alpha in enumerate((1.2, 1 / 1.2)):
        moved = int(out[item, 0].argmax())
        assert abs(centres[moved] - alpha * centres[peak]) < 1.5 * (centres[moved + 1] - centres[moved])
        assert moved != peak
    torch.testing.assert_close(out[:, 0], out[:, 4])  # every frame alike: the warp is along frequency only


def test_training_warp_is_per_item_and_keeps_padding_zero() -> None:
    torch.manual_seed(0)
    mels = torch.randn(4, 30, 80)
    mels[1, 20:] = 0.0  # padding of a shorter item
    warp = _warp().train()
    out = warp(mels)
    assert torch.equal(out[1, 20:], torch.zeros(10, 80))
    changed = [not torch.allclose(out[i], mels[i]) for i in range(4)]
    assert all(changed)
    alphas = torch.tensor([1.1, 0.95])
    alone = warp.warp(mels[:1], alphas[:1])
    together = warp.warp(mels[:2], alphas)
    torch.testing.assert_close(together[:1], alone)  # an item's warp does not depend on its companions


def test_the_model_warps_the_posterior_s_input_only_in_training() -> None:
    from conftest import TINY_MODEL

    from prosody_vae.config import ExperimentConfig
    from prosody_vae.tts.model import build_model

    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["prosody"].update(text_summary=False, reference_warp=0.2)
    torch.manual_seed(0)
    model = build_model(ExperimentConfig.from_dict(raw), n_symbols=20)
    assert model.reference_warp is not None
    assert "reference_warp.centres" not in model.state_dict()  # old checkpoints load as they are
    tokens, token_lengths = torch.randint(1, 20, (2, 7)), torch.tensor([7, 5])
    mels, mel_lengths = torch.randn(2, 30, 80), torch.tensor([30, 24])
    model.eval()
    plain = model(tokens, token_lengths, mels, mel_lengths).prosody.mean
    torch.testing.assert_close(plain, model.prosody_posterior(mels, mel_lengths).mean)
    model.train()
    seen = []
    original = model.prosody.posterior_of
    model.prosody.posterior_of = lambda mel, *a, **k: seen.append(mel) or original(mel, *a, **k)
    targets = []
    backbone = model.backbone.forward
    model.backbone.forward = lambda t, tl, m, *a, **k: targets.append(m) or backbone(t, tl, m, *a, **k)
    model(tokens, token_lengths, mels, mel_lengths)
    assert not torch.allclose(seen[0], mels)  # the posterior read a warped reference ...
    assert torch.equal(targets[0], mels)  # ... while the decoder was teacher-forced on the mels as they are
