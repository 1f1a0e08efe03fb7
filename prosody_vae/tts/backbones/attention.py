"""Attention for the Tacotron decoder: location-sensitive and dynamic convolution attention.

Both share one step interface so the decoder does not care which it has::

    processed = attention.process_memory(memory)                       # once per utterance
    context, weights = attention(query, memory, processed, mask, previous, cumulative)

``previous`` is the last step's weights and ``cumulative`` their running sum; the decoder threads both
through its state. :meth:`initial_weights` gives the weights "before the first step".

Padded tokens get an energy of -inf before the softmax, so their weight is exactly zero and the valid
weights sum to one (Coqui masks after the softmax, which leaves the weights unnormalised).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DynamicConvolutionAttention", "LocationSensitiveAttention", "beta_binomial_prior"]


def beta_binomial_prior(size: int, alpha: float, beta: float) -> Tensor:
    """Beta-binomial pmf over shifts 0..size-1 (n = size - 1), as a float64 (size,) tensor."""
    n = size - 1
    log_beta = lambda a, b: math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)  # noqa: E731
    pmf = [
        math.comb(n, k) * math.exp(log_beta(k + alpha, n - k + beta) - log_beta(alpha, beta))
        for k in range(size)
    ]
    return torch.tensor(pmf, dtype=torch.float64)


def _masked_softmax(energies: Tensor, mask: Tensor) -> Tensor:
    """Softmax over tokens with padded tokens at exactly zero. (B, L), (B, L) -> (B, L)."""
    return torch.softmax(energies.masked_fill(~mask, float("-inf")), dim=-1)


def _context(weights: Tensor, memory: Tensor) -> Tensor:
    """(B, L), (B, L, M) -> (B, M)."""
    return torch.bmm(weights.unsqueeze(1), memory).squeeze(1)


class LocationSensitiveAttention(nn.Module):
    """Additive attention with location features (Chorowski et al. 2015; Tacotron 2, section 2.3).

    ``e_ij = v^T tanh(W q_i + V h_j + U (F * [a_{i-1}; sum_{k<i} a_k])_j)``. The memory term ``V h``
    does not depend on the step and is computed once per utterance by :meth:`process_memory`.

    Args:
        query_dim: attention-RNN size.
        memory_dim: encoder output size (plus conditioning).
        attention_dim: size of the energy MLP.
        n_filters: location convolution filters (32 in Tacotron 2).
        kernel_size: location convolution width (31 in Tacotron 2).
    """

    def __init__(
        self,
        *,
        query_dim: int,
        memory_dim: int,
        attention_dim: int,
        n_filters: int = 32,
        kernel_size: int = 31,
    ):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"location kernel_size must be odd, got {kernel_size}")
        self.query_layer = nn.Linear(query_dim, attention_dim, bias=False)
        self.memory_layer = nn.Linear(memory_dim, attention_dim, bias=False)
        self.location_conv = nn.Conv1d(2, n_filters, kernel_size, padding=kernel_size // 2, bias=False)
        self.location_layer = nn.Linear(n_filters, attention_dim, bias=False)
        self.v = nn.Linear(attention_dim, 1, bias=True)

    def process_memory(self, memory: Tensor) -> Tensor:
        """(B, L, M) -> (B, L, attention_dim)."""
        return self.memory_layer(memory)

    def initial_weights(self, mask: Tensor, dtype: torch.dtype) -> Tensor:
        """No attention yet: zeros. (B, L) -> (B, L)."""
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device)

    def forward(
        self,
        query: Tensor,
        memory: Tensor,
        processed_memory: Tensor,
        mask: Tensor,
        previous: Tensor,
        cumulative: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """One attention step.

        Args:
            query: (B, query_dim).
            memory: (B, L, M).
            processed_memory: (B, L, attention_dim) from :meth:`process_memory`.
            mask: (B, L) bool, True on valid tokens.
            previous: (B, L) last step's weights.
            cumulative: (B, L) sum of all previous weights.

        Returns:
            context (B, M) and weights (B, L).
        """
        location = self.location_conv(torch.stack([previous, cumulative], dim=1))  # (B, n_filters, L)
        location = self.location_layer(location.transpose(1, 2))  # (B, L, A)
        energies = self.v(torch.tanh(self.query_layer(query).unsqueeze(1) + processed_memory + location))
        weights = _masked_softmax(energies.squeeze(-1), mask)
        return _context(weights, memory), weights


class DynamicConvolutionAttention(nn.Module):
    """Dynamic convolution attention (DCA; Battenberg et al. 2020, arXiv 1910.10288, section 2.4).

    Purely location-relative: the energies depend on the previous weights and the query, never on the
    memory content, which is what makes it robust on long and out-of-domain text::

        f_i = F * a_{i-1}                      static filters
        g_i = G(q_i) * a_{i-1}                 dynamic filters, G(q) = V tanh(W q + b)
        p_i = log(P * a_{i-1})                 causal beta-binomial prior filter
        e_i = v^T tanh(U f_i + T g_i + b) + p_i
        a_i = softmax(e_i)

    The softmax of ``e + log(prior)`` is the same thing as ``prior * exp(e)`` normalised by its sum:
    the prior multiplies the un-normalised weights, so attention can only move forward by 0..P-1 tokens
    per step. Paper defaults: 8 static and 8 dynamic filters of width 21, a prior of width 11 with
    alpha = 0.1, beta = 0.9, and a one-hot initial alignment on the first token.

    Implementation: static and dynamic filters share one width, so both filter banks and their
    projections fold into one per-item kernel (B, K, A) per step, applied to the (B, L, K) windows of
    the previous weights with one batched matmul. Same function as the paper, fewer kernel launches.

    Args:
        query_dim: attention-RNN size.
        attention_dim: size of the energy MLP.
        n_filters: number of static filters and of dynamic filters.
        filter_size: width K of both (odd).
        prior_size: width P of the prior filter.
        prior_alpha, prior_beta: beta-binomial parameters of the prior.
    """

    def __init__(
        self,
        *,
        query_dim: int,
        attention_dim: int,
        n_filters: int = 8,
        filter_size: int = 21,
        prior_size: int = 11,
        prior_alpha: float = 0.1,
        prior_beta: float = 0.9,
    ):
        super().__init__()
        if filter_size % 2 != 1:
            raise ValueError(f"DCA filter_size must be odd, got {filter_size}")
        if prior_size < 2:
            raise ValueError(f"DCA prior_size must be >= 2, got {prior_size}")
        if prior_alpha <= 0 or prior_beta <= 0:
            raise ValueError(f"prior_alpha and prior_beta must be > 0, got {prior_alpha}, {prior_beta}")
        self.n_filters = n_filters
        self.filter_size = filter_size
        self.static_filters = nn.Parameter(torch.empty(n_filters, filter_size))
        self.static_layer = nn.Linear(n_filters, attention_dim, bias=False)
        self.dynamic_hidden = nn.Linear(query_dim, attention_dim)
        self.dynamic_filters = nn.Linear(attention_dim, n_filters * filter_size, bias=False)
        self.dynamic_layer = nn.Linear(n_filters, attention_dim, bias=True)
        self.v = nn.Linear(attention_dim, 1, bias=False)
        nn.init.kaiming_uniform_(self.static_filters, a=math.sqrt(5))  # what Conv1d(1, F, K) would use
        # Flipped so that a correlation over the left-padded window applies pmf[m] to a_{i-1}[j - m].
        prior = beta_binomial_prior(prior_size, prior_alpha, prior_beta).flip(0).float()
        self.register_buffer("prior", prior, persistent=False)

    def process_memory(self, memory: Tensor) -> Tensor:
        """DCA never looks at the memory content; returns an empty (B, L, 0) tensor."""
        return memory.new_empty(memory.shape[0], memory.shape[1], 0)

    def initial_weights(self, mask: Tensor, dtype: torch.dtype) -> Tensor:
        """All attention on the first token. (B, L) -> (B, L)."""
        weights = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
        weights[:, 0] = 1.0
        return weights

    def forward(
        self,
        query: Tensor,
        memory: Tensor,
        processed_memory: Tensor,
        mask: Tensor,
        previous: Tensor,
        cumulative: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """One attention step (``processed_memory`` and ``cumulative`` are unused).

        Args:
            query: (B, query_dim).
            memory: (B, L, M).
            processed_memory: ignored.
            mask: (B, L) bool, True on valid tokens.
            previous: (B, L) last step's weights.
            cumulative: ignored.

        Returns:
            context (B, M) and weights (B, L).
        """
        batch, k = query.shape[0], self.filter_size
        windows = F.pad(previous, (k // 2, k // 2)).unfold(1, k, 1)  # (B, L, K): a_{i-1}[j-K//2 .. j+K//2]
        # Static: (K, F) @ (F, A) -> (K, A). Dynamic: per item (K, F) @ (F, A) -> (B, K, A).
        static_kernel = self.static_filters.t() @ self.static_layer.weight.t()
        dynamic = self.dynamic_filters(torch.tanh(self.dynamic_hidden(query)))  # (B, F * K)
        dynamic = dynamic.view(batch, self.n_filters, k).transpose(1, 2)  # (B, K, F)
        kernel = static_kernel + dynamic @ self.dynamic_layer.weight.t()  # (B, K, A)
        hidden = torch.tanh(torch.bmm(windows, kernel) + self.dynamic_layer.bias)  # (B, L, A)
        p = self.prior.shape[0]
        prior_windows = F.pad(previous, (p - 1, 0)).unfold(1, p, 1)  # (B, L, P): a_{i-1}[j-P+1 .. j]
        prior = prior_windows @ self.prior.to(previous.dtype)  # (B, L)
        # log(0) would make a token unreachable for good; the floor (as in Coqui) keeps it recoverable.
        energies = self.v(hidden).squeeze(-1) + torch.log(prior.clamp_min(1e-6))
        weights = _masked_softmax(energies, mask)
        return _context(weights, memory), weights
