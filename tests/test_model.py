"""ProsodyTTS: one prosody-encoder pass per batch, the KL against the right prior context, no KL where
none is asked for, whatever the prior."""

from __future__ import annotations

import pytest
import torch

from prosody_vae.config import ExperimentConfig
from prosody_vae.tts.model import ProsodyTTS, build_model

N_MELS, N_SYMBOLS, BATCH = 20, 12, 3


def _model(prior: str, *, n_speakers: int = 1) -> ProsodyTTS:
    from conftest import TINY_MODEL

    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["text"] = {"tokenizer": "characters"}
    raw["audio"] = {"n_mels": N_MELS}
    raw["prosody"].update(prior=prior, acn_neighbours=2)
    torch.manual_seed(0)
    model = build_model(ExperimentConfig.from_dict(raw), n_symbols=N_SYMBOLS, n_speakers=n_speakers)
    if prior == "associative":  # a bank of 8 training codes; the batch below is not among them
        model.prosody.prior.refresh(torch.randn(8, model.prosody.latent_dim), torch.arange(8))
    return model


def _batch():
    gen = torch.Generator().manual_seed(1)
    token_lengths = torch.tensor([7, 4, 5])
    tokens = torch.randint(1, N_SYMBOLS, (BATCH, 7), generator=gen)
    mel_lengths = torch.tensor([30, 21, 12])
    mels = torch.randn(BATCH, 30, N_MELS, generator=gen)
    for i in range(BATCH):
        tokens[i, token_lengths[i] :] = 0
        mels[i, mel_lengths[i] :] = 0.0
    return tokens, token_lengths, mels, mel_lengths


def _count_encoder_calls(model: ProsodyTTS) -> list[int]:
    calls: list[int] = []
    model.prosody.reference_encoder.register_forward_hook(
        lambda module, args, out: calls.append(out.shape[0])
    )
    return calls


@pytest.mark.parametrize("prior", ["standard", "associative"])
@pytest.mark.parametrize("train", [True, False])
def test_forward_runs_the_reference_encoder_once_per_batch(prior: str, train: bool) -> None:
    """Also for an ACN model in eval mode on references outside the bank, whose context (the nearest
    training code) depends on the posterior: the KL is taken after the one encoder pass."""
    model = _model(prior).train(train)
    tokens, token_lengths, mels, mel_lengths = _batch()
    context = None
    if train and prior == "associative":  # training items need a neighbour's code
        context = model.prosody.prior.training_context(torch.arange(BATCH))
    calls = _count_encoder_calls(model)
    out = model(tokens, token_lengths, mels, mel_lengths, prior_context=context)
    assert calls == [BATCH]

    # The KL is the prior's KL of this very posterior, against the context the prior asks for.
    post = out.prosody
    if context is None:
        context = model.prosody.prior.held_out_context(post.mean)
    assert (context is not None) == (prior == "associative")
    expected = model.prosody.prior.kl(post.mean, post.std, context=context)
    torch.testing.assert_close(post.kl_per_dim, expected)
    torch.testing.assert_close(post.kl, expected.sum(-1))
    assert (post.kl > 0).all()


def test_held_out_acn_kl_is_taken_against_the_nearest_training_code() -> None:
    """Guard for the test above: with another context the KL differs, so the context matters."""
    model = _model("associative").eval()
    tokens, token_lengths, mels, mel_lengths = _batch()
    post = model.encode_prosody(mels, mel_lengths, tokens=tokens, token_lengths=token_lengths)
    prior = model.prosody.prior
    bank = prior.bank.codes[:8]
    nearest = bank[torch.cdist(post.mean, bank).argmin(-1)]
    torch.testing.assert_close(post.kl_per_dim, prior.kl(post.mean, post.std, context=nearest))
    farthest = bank[torch.cdist(post.mean, bank).argmax(-1)]
    assert not torch.allclose(post.kl, prior.kl(post.mean, post.std, context=farthest).sum(-1))


def test_training_an_acn_model_without_a_context_is_refused() -> None:
    model = _model("associative").train()
    tokens, token_lengths, mels, mel_lengths = _batch()
    with pytest.raises(ValueError, match="prior_context"):
        model(tokens, token_lengths, mels, mel_lengths)


@pytest.mark.parametrize("prior", ["standard", "associative"])
def test_posterior_means_compute_no_kl_and_need_no_bank(prior: str, monkeypatch) -> None:
    model = _model(prior).eval()
    tokens, token_lengths, mels, mel_lengths = _batch()
    expected = model.encode_prosody(mels, mel_lengths, tokens=tokens, token_lengths=token_lengths).mean
    if prior == "associative":
        model.prosody.prior.refresh(
            torch.zeros(0, model.prosody.latent_dim), torch.zeros(0, dtype=torch.long)
        )

    def no_kl(*args, **kwargs):
        raise AssertionError("posterior_means computed a KL")

    monkeypatch.setattr(model.prosody.prior, "kl", no_kl)
    calls = _count_encoder_calls(model)
    means = model.posterior_means(mels, mel_lengths, tokens=tokens, token_lengths=token_lengths)
    assert calls == [BATCH]
    torch.testing.assert_close(means, expected)


def test_uses_associative_prior_follows_the_prior() -> None:
    assert _model("associative").uses_associative_prior
    assert not _model("standard").uses_associative_prior


def test_latent_dropout_decodes_dropped_items_from_the_prior_mean() -> None:
    """prosody.latent_dropout: in training a share of items decode from z = 0; the posterior (and its
    KL) is untouched."""
    from conftest import TINY_MODEL

    raw = {key: dict(value) for key, value in TINY_MODEL.items()}
    raw["text"], raw["audio"] = {"tokenizer": "characters"}, {"n_mels": N_MELS}
    raw["prosody"].update(latent_dropout=0.5)
    model = build_model(ExperimentConfig.from_dict(raw), n_symbols=N_SYMBOLS)
    tokens, token_lengths, mels, mel_lengths = _batch()
    model.train()

    def replay(seed: int, drop: bool):
        """forward's random draws by hand: the posterior's sample, the dropout draw, the decoder."""
        torch.manual_seed(seed)
        prosody = model.encode_prosody(mels, mel_lengths, tokens=tokens, token_lengths=token_lengths)
        keep = (torch.rand(BATCH, 1) >= 0.5).float()
        z = prosody.z * keep if drop else prosody.z
        return prosody, keep, model.backbone(tokens, token_lengths, mels, mel_lengths, conditioning=z)

    seed = next(s for s in range(100) if 0 < replay(s, True)[1].sum() < BATCH)  # some dropped, some kept
    torch.manual_seed(seed)
    out = model(tokens, token_lengths, mels, mel_lengths)
    prosody, keep, dropped = replay(seed, True)
    torch.testing.assert_close(out.prosody.z, prosody.z)  # the posterior's own sample, unchanged
    torch.testing.assert_close(out.tacotron.mel, dropped.mel)
    _, _, kept = replay(seed, False)
    differs = (out.tacotron.mel - kept.mel).abs().flatten(1).amax(dim=1) > 1e-6  # (B,)
    assert differs.tolist() == (keep[:, 0] == 0).tolist()  # exactly the dropped items changed
    with pytest.raises(ValueError, match="latent_dropout"):
        ExperimentConfig.from_dict({**raw, "prosody": {**raw["prosody"], "prior": "associative"}})
