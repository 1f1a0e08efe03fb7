"""Posterior over z: text summary, Gaussian head, standard-normal prior and the CapacitronVAE composer."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from prosody_vae.prosody.posterior import GaussianPosterior, TextSummary
from prosody_vae.prosody.priors import AssociativePrior, Prior, StandardNormalPrior
from prosody_vae.prosody.vae import CapacitronVAE, Posterior, ProsodyOutput

N_MELS, D, E, P = 16, 6, 10, 3


def _vae(**kwargs) -> CapacitronVAE:
    torch.manual_seed(0)
    defaults = dict(
        n_mels=N_MELS,
        latent_dim=D,
        reference_encoder=dict(channels=(4, 8), rnn_size=12),
        text_embedding_dim=E,
        text_summary_dim=7,
        speaker_dim=P,
        posterior_hidden_dim=16,
    )
    return CapacitronVAE(**{**defaults, **kwargs})


def _inputs(batch: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([24, 15, 9, 20][:batch])
    text_lengths = torch.tensor([8, 3, 6, 1][:batch])
    mel = torch.randn(batch, 24, N_MELS, generator=gen)
    text = torch.randn(batch, 8, E, generator=gen)
    speaker = torch.randn(batch, P, generator=gen)
    return mel, lengths, text, text_lengths, speaker


# --- prior and KL ---------------------------------------------------------------------------------


def test_kl_is_zero_when_the_posterior_equals_the_prior():
    prior = StandardNormalPrior(D)
    kl = prior.kl(torch.zeros(4, D), torch.ones(4, D))
    assert kl.shape == (4, D)
    assert torch.equal(kl, torch.zeros(4, D))


def test_kl_matches_torch_distributions_and_a_monte_carlo_estimate():
    torch.manual_seed(0)
    prior = StandardNormalPrior(D)
    mean = torch.randn(2, D)
    std = torch.rand(2, D) * 2 + 0.05
    ours = prior.kl(mean, std)
    reference = kl_divergence(Normal(mean, std), Normal(torch.zeros(D), torch.ones(D)))
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    # Monte Carlo: E_q[log q(z) - log p(z)], independent of any closed form.
    n = 200_000
    z = mean + std * torch.randn(n, 2, D, dtype=torch.float64).float()
    log_ratio = (Normal(mean, std).log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1)  # (n, 2)
    estimate, stderr = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(n)
    assert ((estimate - ours.sum(-1)).abs() < 4 * stderr + 1e-3).all(), (estimate, ours.sum(-1), stderr)


def test_kl_stays_finite_at_the_std_floor_and_for_huge_means():
    prior = StandardNormalPrior(D)
    kl = prior.kl(torch.full((2, D), 1e4), torch.full((2, D), 1e-4))
    assert torch.isfinite(kl).all()
    # log(std) of the std itself: the value -log(1e-4) is kept, not lost to a var underflow.
    torch.testing.assert_close(kl[0, 0], torch.tensor(-math.log(1e-4) + 0.5 * (1e-8 + 1e8) - 0.5))


def test_prior_sample_log_prob_and_buffers():
    prior = StandardNormalPrior(D)
    assert prior.sample(5).shape == (5, D)
    assert torch.equal(prior.sample(3, temperature=0.0), torch.zeros(3, D))
    z = torch.randn(2, 4, D)
    torch.testing.assert_close(prior.log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1))
    assert prior.state_dict() == {}  # constants are non-persistent buffers
    assert prior.to(torch.float64).sample(2).dtype == torch.float64
    with pytest.raises(ValueError):
        prior.sample(0)
    with pytest.raises(ValueError):
        prior.kl(torch.zeros(2, D + 1), torch.ones(2, D + 1))


# --- text summary and Gaussian head ---------------------------------------------------------------


def test_text_summary_ignores_padding_and_batch_companions():
    torch.manual_seed(0)
    summary = TextSummary(input_dim=E, hidden_dim=7)
    _, _, text, text_lengths, _ = _inputs()
    text[1, 3:] = float("nan")
    out = summary(text, text_lengths)
    assert out.shape == (3, 7)
    for i, length in enumerate(text_lengths.tolist()):
        torch.testing.assert_close(summary(text[i : i + 1, :length], text_lengths[i : i + 1])[0], out[i])


def test_posterior_head_reads_inputs_in_the_documented_order():
    """[reference | text | speaker]: with only the text columns of the first layer live, only text matters."""
    head = GaussianPosterior(reference_dim=5, latent_dim=D, text_dim=4, speaker_dim=P, hidden_dim=8)
    with torch.no_grad():
        head.net[0].weight[:, :5] = 0.0
        head.net[0].weight[:, 9:] = 0.0
    ref, text, speaker = torch.randn(2, 5), torch.randn(2, 4), torch.randn(2, P)
    mean, std = head(ref, text=text, speaker=speaker)
    mean2, std2 = head(torch.randn(2, 5), text=text, speaker=torch.randn(2, P))
    torch.testing.assert_close((mean, std), (mean2, std2))
    mean3, _ = head(ref, text=torch.randn(2, 4), speaker=speaker)
    assert not torch.allclose(mean, mean3)


def test_posterior_std_is_softplus_plus_floor_not_a_variance():
    head = GaussianPosterior(reference_dim=2, latent_dim=1, hidden_dim=2, min_std=1e-3)
    with torch.no_grad():
        head.net[2].weight.zero_()
        head.net[2].bias.copy_(torch.tensor([0.5, 2.0]))  # mean 0.5, std pre-activation 2
    mean, std = head(torch.randn(3, 2))
    torch.testing.assert_close(mean, torch.full((3, 1), 0.5))
    torch.testing.assert_close(std, torch.full((3, 1), math.log1p(math.exp(2.0)) + 1e-3))


# --- CapacitronVAE --------------------------------------------------------------------------------


def test_encode_returns_consistent_prosody_output():
    vae = _vae().eval()
    mel, lengths, text, text_lengths, speaker = _inputs()
    out = vae.encode(mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker)
    assert isinstance(out, ProsodyOutput)
    assert out.z.shape == out.mean.shape == out.std.shape == out.kl_per_dim.shape == (3, D)
    assert out.kl.shape == (3,)
    torch.testing.assert_close(out.kl, out.kl_per_dim.sum(-1))
    torch.testing.assert_close(out.kl_per_dim, StandardNormalPrior(D).kl(out.mean, out.std))


def test_eval_mode_is_deterministic_and_training_mode_samples():
    vae = _vae()
    mel, lengths, text, text_lengths, speaker = _inputs()
    kwargs = dict(text=text, text_lengths=text_lengths, speaker=speaker)
    vae.eval()
    out = vae.encode(mel, lengths, **kwargs)
    assert torch.equal(out.z, out.mean)
    assert torch.equal(vae.encode(mel, lengths, **kwargs).z, out.z)
    sampled = vae.encode(mel, lengths, sample=True, **kwargs)
    assert not torch.allclose(sampled.z, sampled.mean)
    vae.train()
    out = vae(mel, lengths, **kwargs)  # forward is encode
    assert not torch.allclose(out.z, out.mean)
    assert torch.equal(
        vae.encode(mel, lengths, sample=False, **kwargs).z,
        vae.encode(mel, lengths, sample=False, **kwargs).mean,
    )


def test_eval_posterior_is_invariant_to_padding_and_batch_companions():
    vae = _vae()
    mel, lengths, text, text_lengths, speaker = _inputs(batch=4)
    vae.train()
    vae.encode(mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker)  # move BN stats
    vae.eval()
    mel[1, 15:] = 1e5
    text[2, 6:] = float("nan")
    with torch.no_grad():
        batched = vae.encode(mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker)
        for i in range(4):
            frames, tokens = int(lengths[i]), int(text_lengths[i])
            alone = vae.encode(
                mel[i : i + 1, :frames],
                lengths[i : i + 1],
                text=text[i : i + 1, :tokens],
                text_lengths=text_lengths[i : i + 1],
                speaker=speaker[i : i + 1],
            )
            torch.testing.assert_close(alone.mean[0], batched.mean[i], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(alone.std[0], batched.std[i], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(alone.kl[0], batched.kl[i], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("fill", [math.log(1e-5), 1e4, -1e4])
def test_extreme_inputs_give_a_valid_distribution(train, fill):
    vae = _vae(min_std=1e-4).train(train)
    mel, lengths, text, text_lengths, speaker = _inputs()
    mel = torch.full_like(mel, fill)  # a batch of silence at the log floor, or huge values
    out = vae.encode(mel, lengths, text=text * 1e4, text_lengths=text_lengths, speaker=speaker * 1e4)
    for name in ("z", "mean", "std", "kl", "kl_per_dim"):
        assert torch.isfinite(getattr(out, name)).all(), name
    assert (out.std >= 1e-4).all()
    assert (out.kl_per_dim >= 0).all()


@pytest.mark.parametrize("train", [True, False])
def test_batch_size_one(train):
    vae = _vae().train(train)
    mel, lengths, text, text_lengths, speaker = _inputs(batch=1)
    out = vae.encode(mel, lengths, text=text, text_lengths=text_lengths, speaker=speaker)
    assert out.z.shape == (1, D) and out.kl.shape == (1,)
    if train:
        out.kl.sum().backward()


def test_minimal_module_without_text_or_speaker():
    vae = _vae(text_embedding_dim=0, speaker_dim=0)
    mel, lengths, *_ = _inputs()
    assert not vae.uses_text
    assert vae.encode(mel, lengths).z.shape == (3, D)


@pytest.mark.parametrize(
    "change",
    [
        dict(text=None),  # text summary needs text
        dict(text_lengths=None),
        dict(text="2d"),  # (B, E) instead of (B, L, E)
        dict(text="wrong_E"),
        dict(speaker=None),  # speaker_dim > 0 needs a speaker
        dict(speaker="wrong_P"),
    ],
)
def test_missing_or_misshapen_conditioning_raises_value_error(change):
    vae = _vae()
    mel, lengths, text, text_lengths, speaker = _inputs()
    kwargs = dict(text=text, text_lengths=text_lengths, speaker=speaker)
    kwargs.update(change)
    if kwargs["text"] == "2d":
        kwargs["text"] = text[:, 0]
    elif kwargs["text"] == "wrong_E":
        kwargs["text"] = torch.randn(3, 8, E + 1)
    if kwargs["speaker"] == "wrong_P":
        kwargs["speaker"] = torch.randn(3, P + 1)
    with pytest.raises(ValueError):
        vae.encode(mel, lengths, **kwargs)


def test_text_given_without_a_text_summary_raises():
    vae = _vae(text_embedding_dim=0, speaker_dim=0)
    mel, lengths, text, text_lengths, _ = _inputs()
    with pytest.raises(ValueError, match="text_embedding_dim=0"):
        vae.encode(mel, lengths, text=text, text_lengths=text_lengths)


class _ShiftedPrior(nn.Module):
    """A prior of our own making that follows the Prior protocol: N(context, I), N(0, I) without one."""

    needs_context = True

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim = D
        self.register_buffer("anchor", torch.zeros(D), persistent=False)

    def held_out_context(self, mean):
        return self.anchor.expand_as(mean)

    def kl(self, mean, std, context=None):
        loc = self.anchor if context is None else context
        return kl_divergence(Normal(mean, std), Normal(loc, torch.ones_like(loc)))

    def sample(self, n, temperature=1.0, context=None):
        return self.anchor.expand(n, D) + temperature * torch.randn(n, D, device=self.anchor.device)

    def log_prob(self, z, context=None):
        return Normal(0.0, 1.0).log_prob(z).sum(-1)


def test_any_prior_with_the_interface_is_used_with_its_context():
    vae = _vae(text_embedding_dim=0, speaker_dim=0, prior=_ShiftedPrior()).eval()
    mel, lengths, *_ = _inputs()
    out = vae.encode(mel, lengths)
    context = out.mean.detach().clone()
    at_mean = vae.encode(mel, lengths, prior_context=context)
    # KL to N(mean, I) only has the std part left, so it is smaller than KL to N(0, I).
    assert (at_mean.kl < out.kl).all()
    assert vae.sample_prior(4, temperature=0.0).shape == (4, D)


def test_the_separate_steps_compose_to_encode():
    """posterior_of + kl + latent give what encode reports, with one encoder pass each."""
    vae = _vae().eval()
    mel, lengths, text, text_lengths, speaker = _inputs()
    kwargs = dict(text=text, text_lengths=text_lengths, speaker=speaker)
    out = vae.encode(mel, lengths, **kwargs)
    calls = []
    vae.reference_encoder.register_forward_hook(lambda *_: calls.append(1))
    posterior = vae.posterior_of(mel, lengths, **kwargs)
    assert isinstance(posterior, Posterior) and len(calls) == 1
    divergence = vae.kl(posterior)
    assert len(calls) == 1  # the KL never runs the encoder
    torch.testing.assert_close(posterior.mean, out.mean)
    torch.testing.assert_close(posterior.std, out.std)
    torch.testing.assert_close(divergence.kl, out.kl)
    torch.testing.assert_close(divergence.kl_per_dim, out.kl_per_dim)
    assert (divergence.kl > 0).all()  # not the trivial posterior == prior
    assert torch.equal(vae.latent(posterior), posterior.mean)  # eval: the mean
    vae.train()
    assert not torch.allclose(vae.latent(posterior), posterior.mean)  # training: a sample
    assert torch.equal(vae.latent(posterior, sample=False), posterior.mean)


def test_kl_of_a_posterior_takes_the_context_of_a_conditional_prior():
    prior = AssociativePrior(D, k_neighbours=2, hidden_dim=8)
    prior.refresh(torch.randn(6, D), torch.arange(6))
    vae = _vae(text_embedding_dim=0, speaker_dim=0, prior=prior).eval()
    mel, lengths, *_ = _inputs()
    posterior = vae.posterior_of(mel, lengths)
    with pytest.raises(ValueError, match="needs context"):
        vae.kl(posterior)
    context = prior.held_out_context(posterior.mean)
    out = vae.encode(mel, lengths, prior_context=context)
    torch.testing.assert_close(vae.kl(posterior, context).kl_per_dim, out.kl_per_dim)
    torch.testing.assert_close(out.kl_per_dim, prior.kl(out.mean, out.std, context=context))


def test_a_prior_without_the_protocol_is_refused():
    assert isinstance(_ShiftedPrior(), Prior) and not isinstance(nn.Linear(D, D), Prior)
    with pytest.raises(TypeError, match="Prior protocol"):
        _vae(prior=nn.Linear(D, D))


def test_sample_prior_shape_temperature_and_dtype():
    vae = _vae().to(torch.float64)
    assert vae.sample_prior(5).shape == (5, D)
    assert vae.sample_prior(2).dtype == torch.float64
    assert torch.equal(vae.sample_prior(3, temperature=0.0), torch.zeros(3, D, dtype=torch.float64))


def test_construction_errors():
    with pytest.raises(ValueError, match="n_mels"):
        CapacitronVAE(n_mels=N_MELS, reference_encoder=dict(n_mels=N_MELS + 1, channels=(4,)))
    with pytest.raises(TypeError):
        CapacitronVAE(n_mels=N_MELS, reference_encoder=nn.Linear(2, 2))
    with pytest.raises(ValueError, match="latent_dim"):
        CapacitronVAE(n_mels=N_MELS, latent_dim=D, prior=StandardNormalPrior(D + 1))
