"""torchaudio's Tacotron 2 as a ProsodyTTS backbone: z changes the output, and our loop trains it."""

from __future__ import annotations

import pytest
import torch

from prosody_vae.config import BackboneConfig, ExperimentConfig
from prosody_vae.tts.backbones.torchaudio_tacotron2 import TorchaudioTacotron2Backbone
from prosody_vae.tts.model import build_model

TINY = dict(
    embedding_dim=16,
    encoder_dim=16,
    attention_dim=8,
    attention_rnn_dim=16,
    decoder_dim=16,
    prenet_dim=8,
    postnet_dim=8,
    postnet_n_convs=2,
)


def _batch(n_mels: int = 10):
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, 12, (3, 7), generator=gen)
    token_lengths = torch.tensor([4, 7, 5])  # deliberately unsorted: the adapter sorts for torchaudio
    mels = torch.randn(3, 20, n_mels, generator=gen)
    mel_lengths = torch.tensor([15, 20, 11])
    return tokens, token_lengths, mels, mel_lengths


def test_conditioning_changes_the_output_and_shapes_follow_the_interface():
    torch.manual_seed(0)
    backbone = TorchaudioTacotron2Backbone(n_symbols=12, n_mels=10, conditioning_dim=4, **TINY).eval()
    tokens, token_lengths, mels, mel_lengths = _batch()
    z1, z2 = torch.zeros(3, 4), torch.full((3, 4), 3.0)

    def run(z):
        torch.manual_seed(1)  # torchaudio's prenet keeps its dropout on at inference too
        return backbone(tokens, token_lengths, mels, mel_lengths, conditioning=z)

    a, a_again, b = run(z1), run(z1), run(z2)
    assert a.mel.shape == a.mel_post.shape == (3, 20, 10)
    assert a.stop_logits.shape == (3, 20) and a.alignments.shape == (3, 20, 7)
    torch.testing.assert_close(a.mel_post, a_again.mel_post)  # same z, same noise: same output
    valid = torch.arange(20)[None, :] < mel_lengths[:, None]
    per_item = (a.mel_post - b.mel_post).abs().sum(dim=(1, 2))
    assert (per_item > 1e-3).all(), "a different z must change every item's mel"
    assert (a.mel_post[~valid] == 0).all(), "frames past each length are zero"
    # Attention stays on each item's own tokens after the sort and unsort.
    assert torch.allclose(a.alignments.sum(-1), torch.ones(3, 20))
    assert (a.alignments[0, :, 4:] == 0).all()

    torch.manual_seed(2)
    inference = backbone.infer(tokens, token_lengths, conditioning=z1, max_steps=6)
    assert inference.mel_post.shape[0] == 3 and inference.mel_post.shape[1] <= 6
    assert (inference.mel_lengths <= 6).all() and inference.alignments.shape[2] == 7


def test_config_switch_is_validated():
    with pytest.raises(ValueError, match="r: 1 and backbone.attention: location"):
        BackboneConfig(kind="torchaudio_tacotron2")
    with pytest.raises(ValueError, match="embedding_dim == encoder_dim"):
        BackboneConfig(
            kind="torchaudio_tacotron2", r=1, attention="location", embedding_dim=8, encoder_dim=16
        )
    with pytest.raises(ValueError, match="backbone.kind: unknown"):
        BackboneConfig(kind="espnet")
    config = ExperimentConfig.from_dict(
        {"backbone": {"kind": "torchaudio_tacotron2", "r": 1, "attention": "location", **TINY}}
    )
    model = build_model(config, n_symbols=12)
    assert isinstance(model.backbone, TorchaudioTacotron2Backbone)
    assert model.backbone.conditioning_dim == config.prosody.latent_dim


@pytest.mark.slow
def test_trains_with_our_loop_and_z_changes_synthesis(tiny_config_file, tmp_path):
    from prosody_vae.config import load_config
    from prosody_vae.inference.synthesizer import Synthesizer
    from prosody_vae.training.loop import train

    path = tiny_config_file(
        backbone={"kind": "torchaudio_tacotron2", "r": 1, "attention": "location"},
        train={"steps": 3, "valid_every": 3, "checkpoint_every": 3},
    )
    config = load_config(path)
    result = train(config, tmp_path / "exp", device="cpu", progress=False)
    assert result.step == 3 and result.skipped_steps == 0
    assert torch.isfinite(torch.tensor(result.last_valid["valid/lagrangian"]))

    state = torch.load(result.checkpoint, weights_only=True)
    fresh = build_model(config, n_symbols=Synthesizer.from_checkpoint(result.checkpoint).tokenizer.vocab_size)
    trained = {
        k.removeprefix("model."): v for k, v in state["training_module"].items() if k.startswith("model.")
    }
    moved = (
        trained["backbone.conditioning_projection.weight"]
        - fresh.state_dict()["backbone.conditioning_projection.weight"]
    )
    assert moved.abs().max() > 0, "the projection of z is trained"
    assert float(state["training_module"]["objective.beta_raw"]) != pytest.approx(
        float(torch.log(torch.expm1(torch.tensor(config.capacity.beta_init))))
    ), "the multiplier's own optimiser stepped"

    synth = Synthesizer.from_checkpoint(result.checkpoint)
    tokens, lengths = synth.tokens(["a short test"])
    outputs = []
    for value in (-2.0, 2.0):
        torch.manual_seed(0)
        z = torch.full((1, config.prosody.latent_dim), value)
        outputs.append(synth.model.infer(tokens, lengths, z, max_steps=8).mel_post)
    frames = min(o.shape[1] for o in outputs)
    assert (outputs[0][:, :frames] - outputs[1][:, :frames]).abs().max() > 1e-4
