"""The approximate posterior q(z | x, text, speaker) = N(mean, diag(std^2)) and its text summary.

Capacitron (Battenberg et al. 2019, arXiv 1906.03402) conditions the posterior on the reference
embedding and optionally on a "text summary" (the final state of an RNN over the reference
transcript's token embeddings) and on a speaker embedding, and maps them through an MLP to the
parameters of a diagonal Gaussian. Both extra inputs describe the *reference*: its transcript and
the voice that spoke it (the true posterior p(z | x, y_T, y_S) is conditioned on x's own text and
speaker), whatever text and voice the decoder is then asked for; see :mod:`prosody_vae.tts.model`
for what that means at inter-speaker transfer. Standing in for an absent transcript or an unknown
voice is the composer's job (:class:`~prosody_vae.prosody.vae.CapacitronVAE`), not this head's.

Where we deviate from the public reference implementation (Coqui TTS), and why:

* The head outputs an explicit **standard deviation**, ``softplus(.) + min_std``, and everything
  downstream treats it as one. Coqui feeds its softplus output to a full-covariance
  ``MultivariateNormal`` as a *variance* while calling it sigma, and has no floor, which produces NaN
  posteriors when the softplus underflows.
* The conditioning inputs are concatenated in one **fixed, documented order**:
  ``[reference (B, H) | text summary (B, S) | speaker (B, P)]``, identical in training and inference.
* No host round trips and no full-covariance distributions: mean and std are plain tensors.
* The text summary runs its LSTM over the padded batch and reads each item's output at its last valid
  token (as the reference encoder does, and for the same reason: no packing, so the module traces as
  it is and export wraps it unchanged).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from prosody_vae.prosody.masking import last_valid, lengths_to_mask

__all__ = ["GaussianPosterior", "TextSummary"]


def _check_batch(name: str, x: Tensor, batch: int, dim: int) -> None:
    if x.dim() != 2 or x.shape[0] != batch or x.shape[1] != dim:
        raise ValueError(f"{name} must have shape ({batch}, {dim}), got {tuple(x.shape)}")


class TextSummary(nn.Module):
    """LSTM over token embeddings; its final hidden state summarises the reference transcript.

    Args:
        input_dim: E, the size of each token embedding.
        hidden_dim: S, the size of the summary.
    """

    def __init__(self, *, input_dim: int, hidden_dim: int = 128) -> None:
        super().__init__()
        if input_dim < 1 or hidden_dim < 1:
            raise ValueError(f"input_dim and hidden_dim must be >= 1, got {input_dim} and {hidden_dim}")
        self.input_dim = input_dim
        self.out_dim = hidden_dim
        self.rnn = nn.LSTM(input_dim, hidden_dim, batch_first=True)

    def forward(self, embeddings: Tensor, lengths: Tensor) -> Tensor:
        """Summarise a batch of token-embedding sequences.

        Args:
            embeddings: (B, L, E) token embeddings; positions at or past ``lengths[b]`` are ignored.
            lengths: (B,) integer valid lengths, 1 <= lengths <= L.

        Returns:
            (B, S) final LSTM hidden state after each item's last valid token.
        """
        if embeddings.dim() != 3 or embeddings.shape[-1] != self.input_dim:
            raise ValueError(
                f"text embeddings must have shape (B, L, {self.input_dim}), got {tuple(embeddings.shape)}"
            )
        if lengths.dim() != 1 or lengths.shape[0] != embeddings.shape[0]:
            raise ValueError(
                f"text lengths must have shape ({embeddings.shape[0]},), got {tuple(lengths.shape)}"
            )
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise TypeError(f"text lengths must be an integer tensor, got {lengths.dtype}")
        if not torch.jit.is_tracing():  # a trace would bake the host copy and the check in as constants
            lengths_cpu = lengths.to("cpu")
            if lengths_cpu.numel() and (
                int(lengths_cpu.min()) < 1 or int(lengths_cpu.max()) > embeddings.shape[1]
            ):
                raise ValueError(
                    f"text lengths must lie in [1, L={embeddings.shape[1]}], got {lengths_cpu.tolist()}"
                )
            lengths = lengths.to(embeddings.device)
        # Zero the padding (where, not a multiply: NaN garbage must not leak into the gradient of the
        # steps after the last valid one, which are run but never read).
        valid = lengths_to_mask(lengths, embeddings.shape[1]).unsqueeze(-1)  # (B, L, 1)
        outputs, _ = self.rnn(torch.where(valid, embeddings, embeddings.new_zeros(())))  # (B, L, S)
        return last_valid(outputs, lengths)  # (B, S): the state after each item's last valid token


class GaussianPosterior(nn.Module):
    """MLP head: ``[reference | text summary | speaker] -> (mean, std)`` of a diagonal Gaussian.

    ``Linear -> tanh -> Linear`` to ``2 * D`` outputs, split into the mean and a pre-activation whose
    ``softplus`` plus ``min_std`` is the standard deviation (as in Coqui's head, but read as a std,
    with a floor). The floor keeps ``log(std)`` finite, so the KL stays finite on any input.

    Args:
        reference_dim: H, size of the reference embedding.
        latent_dim: D, size of z.
        text_dim: S, size of the text summary; 0 if the posterior does not read text.
        speaker_dim: P, size of the speaker embedding; 0 if it does not read speakers.
        hidden_dim: width of the hidden layer.
        min_std: lower bound on the standard deviation.
    """

    def __init__(
        self,
        *,
        reference_dim: int,
        latent_dim: int,
        text_dim: int = 0,
        speaker_dim: int = 0,
        hidden_dim: int = 128,
        min_std: float = 1e-4,
    ) -> None:
        super().__init__()
        if reference_dim < 1 or latent_dim < 1 or hidden_dim < 1:
            raise ValueError(
                f"reference_dim, latent_dim and hidden_dim must be >= 1, got {reference_dim}, {latent_dim}, {hidden_dim}"
            )
        if text_dim < 0 or speaker_dim < 0:
            raise ValueError(f"text_dim and speaker_dim must be >= 0, got {text_dim} and {speaker_dim}")
        if not min_std > 0:
            raise ValueError(f"min_std must be > 0, got {min_std}")
        self.reference_dim = reference_dim
        self.text_dim = text_dim
        self.speaker_dim = speaker_dim
        self.latent_dim = latent_dim
        self.min_std = float(min_std)
        self.net = nn.Sequential(
            nn.Linear(reference_dim + text_dim + speaker_dim, hidden_dim),
            nn.Tanh(),
            nn.Linear(hidden_dim, 2 * latent_dim),
        )

    def forward(
        self, ref: Tensor, text: Tensor | None = None, speaker: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Posterior parameters.

        Args:
            ref: (B, H) reference embedding.
            text: (B, S) text summary of the reference transcript; required iff ``text_dim > 0``.
            speaker: (B, P) embedding of the reference's voice; required iff ``speaker_dim > 0``.

        Returns:
            mean (B, D) and std (B, D), with std >= min_std.
        """
        if ref.dim() != 2:
            raise ValueError(f"ref must have shape (B, {self.reference_dim}), got {tuple(ref.shape)}")
        batch = ref.shape[0]
        _check_batch("ref", ref, batch, self.reference_dim)
        parts = [ref]  # fixed order: reference, text summary, speaker
        for name, value, dim in (("text", text, self.text_dim), ("speaker", speaker, self.speaker_dim)):
            if dim == 0:
                if value is not None:
                    raise ValueError(f"{name} was given but this posterior was built with {name}_dim=0")
                continue
            if value is None:
                raise ValueError(f"this posterior reads a {name} input ({name}_dim={dim}) but none was given")
            _check_batch(name, value, batch, dim)
            parts.append(value.to(ref.dtype))
        out = self.net(torch.cat(parts, dim=-1))  # (B, 2 * D)
        mean, raw = out.chunk(2, dim=-1)
        std = F.softplus(raw) + self.min_std
        return mean, std
