"""Absent conditioning in the prosody module: the learned null text summary and unknown-speaker vector.

The posterior of a reference without a transcript, or from a voice outside the speaker table, uses a
learned stand-in; training replaces a share of items' text or speaker with it. Modules built without
them keep their old state dict and refuse absent inputs.
"""

from __future__ import annotations

import pytest
import torch

from prosody_vae.config import ExperimentConfig, ProsodyConfig
from prosody_vae.prosody.vae import CapacitronVAE
from prosody_vae.tts.model import UNKNOWN_SPEAKER, build_model

N_MELS, D, E, S, P = 16, 5, 10, 7, 3


def _vae(**kwargs) -> CapacitronVAE:
    torch.manual_seed(0)
    defaults = dict(
        n_mels=N_MELS,
        latent_dim=D,
        reference_encoder=dict(channels=(4, 8), rnn_size=12),
        text_embedding_dim=E,
        text_summary_dim=S,
        speaker_dim=P,
        posterior_hidden_dim=16,
        text_dropout=0.3,
        speaker_dropout=0.3,
    )
    vae = CapacitronVAE(**{**defaults, **kwargs})
    with torch.no_grad():  # trained stand-ins are not zero; make them distinguishable from zero input
        for parameter in (vae.null_text_summary, vae.unknown_speaker):
            if parameter is not None:
                parameter.copy_(torch.linspace(-0.5, 0.5, parameter.numel()))
    return vae


def _inputs(batch: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([24, 15, 9, 20][:batch])
    text_lengths = torch.tensor([8, 3, 6, 1][:batch])
    mel = torch.randn(batch, 24, N_MELS, generator=gen)
    text = torch.randn(batch, 8, E, generator=gen)
    speaker = torch.randn(batch, P, generator=gen)
    return mel, lengths, text, text_lengths, speaker


def _by_hand(vae: CapacitronVAE, mel, lengths, summary, speaker) -> torch.Tensor:
    """The posterior mean computed from its parts, with the given summary and speaker rows."""
    return vae.posterior(vae.reference_encoder(mel, lengths), text=summary, speaker=speaker)[0]


def test_absent_text_and_unknown_voice_use_the_learned_vectors() -> None:
    vae = _vae().eval()
    mel, lengths, text, text_lengths, speaker = _inputs()
    null = vae.null_text_summary.expand(3, -1)
    unknown = vae.unknown_speaker.expand(3, -1)
    no_text = vae.posterior_of(mel, lengths, speaker=speaker).mean
    torch.testing.assert_close(no_text, _by_hand(vae, mel, lengths, null, speaker))
    no_voice = vae.posterior_of(mel, lengths, text=text, text_lengths=text_lengths).mean
    summary = vae.text_summary(text, text_lengths)
    torch.testing.assert_close(no_voice, _by_hand(vae, mel, lengths, summary, unknown))
    full = vae.posterior_of(mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker).mean
    assert not torch.allclose(full, no_text) and not torch.allclose(full, no_voice)


def test_single_items_without_text_or_voice_in_a_batch() -> None:
    """text_lengths == 0 and speaker_known False act on their item only, as if it were alone."""
    vae = _vae().eval()
    mel, lengths, text, text_lengths, speaker = _inputs()
    mixed = vae.posterior_of(
        mel,
        lengths,
        text=text,
        text_lengths=torch.tensor([8, 0, 6]),
        speaker=speaker,
        speaker_known=torch.tensor([True, True, False]),
    ).mean
    alone_1 = vae.posterior_of(mel[1:2], lengths[1:2], speaker=speaker[1:2]).mean
    alone_2 = vae.posterior_of(mel[2:], lengths[2:], text=text[2:], text_lengths=text_lengths[2:]).mean
    full_0 = vae.posterior_of(
        mel[:1], lengths[:1], text=text[:1], text_lengths=text_lengths[:1], speaker=speaker[:1]
    )
    torch.testing.assert_close(mixed[1:2], alone_1)
    torch.testing.assert_close(mixed[2:], alone_2)
    torch.testing.assert_close(mixed[:1], full_0.mean)


def test_training_drops_each_items_text_and_voice_at_the_given_rate() -> None:
    torch.manual_seed(1)
    vae = _vae(text_dropout=0.3, speaker_dropout=0.0).train()
    n = 600
    mel = torch.randn(n, 12, N_MELS)
    lengths = torch.full((n,), 12)
    text, text_lengths = torch.randn(n, 5, E), torch.full((n,), 5)
    speaker = torch.randn(n, P)
    with torch.no_grad():  # same batch, same batch-norm statistics: items differ only by their summary
        dropped = vae.posterior_of(mel, lengths, speaker=speaker).mean
        kept = vae.posterior_of(mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker).mean
    share = (kept - dropped).abs().amax(dim=-1).lt(1e-6).float().mean().item()
    assert 0.24 < share < 0.36  # 0.3 +- 3 standard errors of a share over 600 items
    vae.eval()  # and never at inference
    with torch.no_grad():
        eval_kept = vae.posterior_of(mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker).mean
        eval_dropped = vae.posterior_of(mel, lengths, speaker=speaker).mean
    assert (eval_kept - eval_dropped).abs().amax(dim=-1).gt(1e-6).all()


def test_the_stand_ins_learn_from_dropped_items_only() -> None:
    vae = _vae(text_dropout=0.5, speaker_dropout=0.5).train()
    mel, lengths, text, text_lengths, speaker = _inputs()
    torch.manual_seed(3)
    out = vae.encode(mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker)
    out.mean.sum().backward()
    assert vae.null_text_summary.grad is not None and vae.unknown_speaker.grad is not None
    vae.zero_grad()
    vae.eval()  # nothing dropped: the stand-ins get an exactly zero gradient
    vae.encode(mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker).mean.sum().backward()
    assert vae.null_text_summary.grad.abs().max() == 0 and vae.unknown_speaker.grad.abs().max() == 0


def test_without_dropout_there_are_no_new_weights_and_absent_inputs_are_refused() -> None:
    vae = _vae(text_dropout=0.0, speaker_dropout=0.0)
    assert vae.null_text_summary is None and vae.unknown_speaker is None
    assert not any("null_text_summary" in k or "unknown_speaker" in k for k in vae.state_dict())
    mel, lengths, text, text_lengths, speaker = _inputs()
    with pytest.raises(ValueError, match="no null summary"):
        vae.posterior_of(mel, lengths, speaker=speaker)
    with pytest.raises(ValueError, match="no unknown-speaker vector"):
        vae.posterior_of(
            mel,
            lengths,
            text=text,
            text_lengths=text_lengths,
            speaker=speaker,
            speaker_known=torch.tensor([1, 0, 1]).bool(),
        )
    with pytest.raises(ValueError, match="text lengths"):  # an empty transcript is not silently accepted
        vae.posterior_of(mel, lengths, text=text, text_lengths=torch.tensor([8, 0, 6]), speaker=speaker)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(text_dropout=1.0), "text_dropout"),
        (dict(speaker_dropout=-0.1), "speaker_dropout"),
        (dict(text_embedding_dim=0, text_dropout=0.2), "needs a text summary"),
        (dict(speaker_dim=0, speaker_dropout=0.2), "needs a speaker input"),
    ],
)
def test_bad_dropout_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        _vae(**kwargs)


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(text_summary_dropout=1.0), "text_summary_dropout must lie in"),
        (dict(speaker_dropout=-0.5), "speaker_dropout must be a finite number"),
        (dict(text_summary=False, text_summary_dropout=0.3), "needs prosody.text_summary"),
    ],
)
def test_config_checks_the_dropout_fields(values, message) -> None:
    with pytest.raises(ValueError, match=message):
        ProsodyConfig(**values)


def _model(n_speakers: int, **prosody):
    from conftest import TINY_MODEL

    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["prosody"].update({"speaker_dim": 4, **prosody})
    torch.manual_seed(0)
    return build_model(ExperimentConfig.from_dict(raw), n_symbols=20, n_speakers=n_speakers).eval()


def test_build_model_creates_the_stand_ins_only_when_configured() -> None:
    plain = _model(2)
    assert not any("null_text_summary" in k or "unknown_speaker" in k for k in plain.state_dict())
    both = _model(2, text_summary_dropout=0.3, speaker_dropout=0.3)
    assert both.prosody.text_optional and both.prosody.speaker_optional
    single = _model(1, speaker_dropout=0.3)  # one speaker: no speaker table, so no unknown voice
    assert single.speaker_embedding is None and not single.prosody.speaker_optional


def test_posterior_reads_the_references_voice_and_the_decoder_the_target() -> None:
    model = _model(2, text_summary_dropout=0.3, speaker_dropout=0.3)
    mel, lengths = torch.randn(2, 20, 80), torch.tensor([20, 14])
    tokens, token_lengths = torch.randint(1, 20, (2, 6)), torch.tensor([6, 4])
    as_0 = model.prosody_posterior(
        mel, lengths, tokens=tokens, token_lengths=token_lengths, speakers=torch.tensor([0, 0])
    )
    as_1 = model.prosody_posterior(
        mel, lengths, tokens=tokens, token_lengths=token_lengths, speakers=torch.tensor([1, 1])
    )
    unknown = torch.full((2,), UNKNOWN_SPEAKER)
    as_unknown = model.prosody_posterior(
        mel, lengths, tokens=tokens, token_lengths=token_lengths, speakers=unknown
    )
    assert not torch.allclose(as_0.mean, as_1.mean) and not torch.allclose(as_0.mean, as_unknown.mean)
    expected = model.prosody.posterior_of(
        mel, lengths, text=model.backbone.embed_tokens(tokens), text_lengths=token_lengths
    )  # speaker=None: the unknown-speaker vector for every item
    torch.testing.assert_close(as_unknown.mean, expected.mean)
    no_text = model.prosody_posterior(mel, lengths, speakers=torch.tensor([0, 1]))
    assert no_text.mean.shape == (2, model.prosody.latent_dim)
    # a model without the unknown-speaker vector refuses an unknown voice in one clear line
    with pytest.raises(ValueError, match="no unknown-speaker vector"):
        _model(2).prosody_posterior(
            mel, lengths, tokens=tokens, token_lengths=token_lengths, speakers=unknown
        )
