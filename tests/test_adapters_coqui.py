"""Our Capacitron module inside Coqui TTS' own Tacotron 2, trained by Coqui's loss and optimiser.

Runs only where coqui-tts is installed (``pip install prosody_vae[coqui]``); CI's default run skips
it. Run it with ``pytest -m coqui tests/test_adapters_coqui.py`` (see README.md).
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.coqui
pytest.importorskip("TTS", reason="coqui-tts is not installed (pip install prosody_vae[coqui])")

from prosody_vae.integrations.coqui import CoquiCapacitronLayer, use_prosody_vae  # noqa: E402


def _coqui_model(seed: int = 0):
    from TTS.tts.configs.shared_configs import CapacitronVAEConfig
    from TTS.tts.configs.tacotron2_config import Tacotron2Config
    from TTS.tts.models.tacotron2 import Tacotron2

    config = Tacotron2Config(
        use_capacitron_vae=True,
        capacitron_vae=CapacitronVAEConfig(capacitron_capacity=50),
        optimizer="CapacitronOptimizer",
        optimizer_params={
            "RAdam": {"betas": [0.9, 0.998], "weight_decay": 1e-6},
            "SGD": {"lr": 1e-5, "momentum": 0.9},
        },
        r=2,
        use_phonemes=False,
        phonemizer=None,
        text_cleaner="basic_cleaners",
        loss_masking=False,
        ga_alpha=0.0,
        double_decoder_consistency=False,
        # As Coqui's Capacitron recipe: no SSIM or spectral-difference terms (they need loss masking).
        decoder_ssim_alpha=0.0,
        postnet_ssim_alpha=0.0,
        decoder_diff_spec_alpha=0.0,
        postnet_diff_spec_alpha=0.0,
    )
    torch.manual_seed(seed)
    return Tacotron2(config)


def _batch(model, lengths=(40, 30), text_lengths=(12, 9)):
    import numpy as np
    from TTS.tts.utils.data import prepare_stop_target

    gen = torch.Generator().manual_seed(1)
    n, frames, tokens_max = len(lengths), max(lengths), max(text_lengths)
    tokens = torch.zeros(n, tokens_max, dtype=torch.long)
    mel = torch.zeros(n, frames, model.config.audio.num_mels)
    for i, (t, m) in enumerate(zip(text_lengths, lengths, strict=True)):
        tokens[i, :t] = torch.randint(1, model.config.num_chars, (t,), generator=gen)
        mel[i, :m] = (torch.randn(m, mel.shape[-1], generator=gen) * 2 - 5).clamp(-11.5, 2)
    stop = torch.FloatTensor(
        prepare_stop_target([np.array([0.0] * (m - 1) + [1.0]) for m in lengths], model.config.r)
    )
    raw = {
        "token_id": tokens,
        "token_id_lengths": torch.LongTensor(text_lengths),
        "speaker_names": ["a"] * n,
        "linear": None,
        "mel": mel,
        "mel_lengths": torch.LongTensor(lengths),
        "stop_targets": stop,
        "item_idxs": list(range(n)),
        "d_vectors": None,
        "speaker_ids": None,
        "attns": None,
        "waveform": None,
        "raw_text": [""] * n,
        "pitch": None,
        "energy": None,
        "language_ids": None,
        "audio_unique_names": [str(i) for i in range(n)],
    }
    return model.format_batch(raw)


def test_replaces_the_layer_and_keeps_coquis_optimiser_split():
    model = _coqui_model()
    layer = use_prosody_vae(model)
    assert (
        isinstance(model.capacitron_vae_layer, CoquiCapacitronLayer) and layer is model.capacitron_vae_layer
    )
    assert layer.prosody.uses_text  # the recipe's default: text summary on
    optimizer = model.get_optimizer()  # Coqui's CapacitronOptimizer, split by parameter name
    secondary = [p for group in optimizer.secondary_optimizer.param_groups for p in group["params"]]
    assert len(secondary) == 1 and secondary[0] is layer.beta
    primary = {id(p) for group in optimizer.primary_optimizer.param_groups for p in group["params"]}
    assert all(id(p) in primary for p in layer.prosody.parameters())


def test_trains_inside_coquis_tacotron2_with_coquis_loss_and_optimiser():
    model = _coqui_model()
    layer = use_prosody_vae(model)
    batch = _batch(model)
    criterion = model.get_criterion()
    optimizer = model.get_optimizer()
    before = {name: p.detach().clone() for name, p in layer.named_parameters()}
    model.train()
    losses, betas = [], []
    for _ in range(3):  # Trainer.optimize for this model, fp32
        _, loss_dict = model.train_step(batch, criterion)
        model.before_backward_pass(loss_dict, [optimizer])  # beta backward + SGD step
        loss_dict["loss"].backward()
        model.before_gradient_clipping()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss_dict["loss"]))
        betas.append(float(loss_dict["capacitron_beta"]))
        assert float(loss_dict["capacitron_vae_kl_term"]) > 0
    assert all(torch.isfinite(torch.tensor(losses)))
    assert betas[-1] != betas[0], "Coqui's SGD moved our beta"
    moved = [name for name, p in layer.named_parameters() if not torch.equal(p.detach(), before[name])]
    assert "prosody.reference_encoder.convs.0.weight" in moved and "prosody.posterior.net.2.weight" in moved


def test_kl_seen_by_coquis_loss_is_ours_and_eval_z_is_padding_invariant():
    from torch.distributions import kl_divergence

    model = _coqui_model()
    layer = use_prosody_vae(model).eval()
    batch = _batch(model)
    mel, lengths = batch["mel_input"], batch["mel_lengths"]
    text = model.embedding(batch["text_input"])
    with torch.no_grad():
        z, posterior, prior, beta = layer([mel, lengths], [text, batch["text_lengths"]])
        ours = layer.prosody.encode(mel, lengths, text=text, text_lengths=batch["text_lengths"])
        torch.testing.assert_close(kl_divergence(posterior, prior), ours.kl)
        torch.testing.assert_close(z[:, 0], ours.mean)  # eval mode: z is the posterior mean, no noise
        # The shorter item alone gives the z it had beside the longer, padded one.
        n, t = int(lengths[1]), int(batch["text_lengths"][1])
        alone, *_ = layer([mel[1:, :n], lengths[1:]], [text[1:, :t], batch["text_lengths"][1:]])
        torch.testing.assert_close(alone[0], z[1], atol=1e-5, rtol=0)
        prior_z, none, _, _ = layer(None)
    assert prior_z.shape == (1, 1, layer.prosody.latent_dim) and none is None
