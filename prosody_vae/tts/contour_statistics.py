"""An auxiliary decoder of the utterance's F0 contour statistics from z (``prosody.contour_weight``).

Why: the spectrogram decoder is teacher-forced, so it reads the contour's course from the previous
real frames and gains little from having it in z; only the explicit pitch heads need it from z, and
their likelihood is about 2 % of the reconstruction's nats, its gradient into the posterior drowned
by the mel's. Measured on the built-in multi-voice corpus (docs/transfer.md): with context-only pitch
heads, a position-aware pitch refiner and an utterance contour head
(:mod:`~prosody_vae.tts.pitch_contour`), at C = 10 or 20 nats, or with the pitch term weighted five
times more, z held the F0 level and the rate (linear probe r 0.93, 0.89) but neither the contour's
height nor its peak position (|r| <= 0.2), after 500-1500 steps of fine-tuning each.

What: a small network reads the sampled z and predicts two statistics of the utterance's own F0
track (:func:`contour_statistics`): its spread, the 90th minus the 10th percentile of log-F0 over
voiced frames (natural-log units: 0.058 per semitone), and where its highest fifth lies in the
utterance (the mean time of those frames, 0 = first frame, 1 = last). Its Laplace negative
log-likelihood (scales 0.05 and 0.1) is added to the training loss with ``prosody.contour_weight``,
beside the capacity objective, as the stop and guided-attention terms are: the KL stays held at C
by beta, and the term decides what z spends its nats on. The statistics come from the F0 track the
pitch heads already reconstruct, so any corpus with F0 has them; no corpus label is read. It is not
in Capacitron; at synthesis it is not used.

With ``rate=True`` (``prosody.contour_rate``) a second small network also predicts the utterance's
speaking rate, log(tokens / frames) (:func:`rate_statistic`), Laplace scale 0.05 (5 %). Why: with
the contour term z's linear probe read the rate at r 0.88 and cross-voice rate transfer stayed at
0.86-0.89 against espeak-ng's own 0.89-0.94 (docs/transfer.md); the decoder is teacher-forced and
the attention reads the rate from the previous real frames as much as from z. It is its own network
so that a model trained without it starts from that model's contour head unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ContourStatisticsHead", "contour_statistics", "rate_statistic"]

_MIN_VOICED = 5  # fewer voiced frames: the statistics are left out of the loss
_TOP = 0.8  # the peak: frames at or above this quantile of the utterance's log-F0
SCALES = (0.05, 0.1)  # Laplace scales: spread (natural-log units, 0.87 st), peak position (share)
RATE_SCALE = 0.05  # Laplace scale of log(tokens / frames): 5 % of the rate


def contour_statistics(f0: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """(B, T) F0 in Hz (0 unvoiced), (B,) valid frames -> ((B, 2) [spread, peak position], (B,) valid).

    Spread: the 90th minus the 10th percentile of log-F0 over voiced frames. Peak position: the mean
    of ``t / (length - 1)`` over the voiced frames at or above the 80th percentile. ``valid`` is False
    (and the statistics 0) where an item has fewer than 5 voiced frames.
    """
    batch, frames = f0.shape
    stats = f0.new_zeros(batch, 2)
    valid = torch.zeros(batch, dtype=torch.bool, device=f0.device)
    for b in range(batch):
        length = int(lengths[b])
        track = f0[b, :length]
        voiced = torch.nonzero(track > 0).flatten()
        if voiced.numel() < _MIN_VOICED:
            continue
        log_f0 = torch.log(track[voiced])
        low, high, top = torch.quantile(log_f0, torch.tensor([0.1, 0.9, _TOP], dtype=log_f0.dtype))
        times = voiced[log_f0 >= top].to(f0.dtype) / max(length - 1, 1)
        stats[b, 0] = high - low
        stats[b, 1] = times.mean()
        valid[b] = True
    return stats, valid


def rate_statistic(token_lengths: Tensor, lengths: Tensor) -> Tensor:
    """(B,) text tokens, (B,) valid frames -> (B,) log(tokens / frames): the utterance's speaking rate.

    Tokens per frame rather than syllables per second: both lengths are in the batch already, and on
    one corpus's sentences the phonemes per syllable vary little from utterance to utterance.
    """
    return torch.log(token_lengths.float() / lengths.float().clamp(min=1.0))


def _mlp(latent_dim: int, hidden_dim: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, outputs))


class ContourStatisticsHead(nn.Module):
    """z (B, D) -> predicted [spread, peak position] (B, 2), and their negative log-likelihood.

    Args:
        latent_dim: D.
        hidden_dim: width of the one hidden layer.
        rate: also predict the speaking rate (:func:`rate_statistic`) with its own network.
    """

    def __init__(self, *, latent_dim: int, hidden_dim: int = 64, rate: bool = False) -> None:
        super().__init__()
        if latent_dim < 1 or hidden_dim < 1:
            raise ValueError(f"latent_dim and hidden_dim must be >= 1, got {latent_dim} and {hidden_dim}")
        self.net = _mlp(latent_dim, hidden_dim, 2)
        self.rate_net = _mlp(latent_dim, hidden_dim, 1) if rate else None

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)

    def nll(self, z: Tensor, f0: Tensor, lengths: Tensor, token_lengths: Tensor | None = None) -> Tensor:
        """Laplace negative log-likelihood (nats, constants left out) of the utterances' own contour
        statistics given z: (B, D), (B, T) Hz, (B,) -> (B,), 0 for items without enough voiced frames.
        With a rate network, ``token_lengths`` (B,) is required and the rate's term is added for
        every item (voiced or not)."""
        target, valid = contour_statistics(f0.detach(), lengths)
        scales = torch.tensor(SCALES, dtype=z.dtype, device=z.device)
        nll = ((self(z) - target).abs() / scales).sum(dim=-1) * valid.to(z.dtype)  # (B,)
        if self.rate_net is not None:
            if token_lengths is None:
                raise ValueError("a contour head with a rate network needs token_lengths")
            rate = rate_statistic(token_lengths, lengths).to(z.dtype)
            nll = nll + (self.rate_net(z).squeeze(-1) - rate).abs() / RATE_SCALE
        return nll
