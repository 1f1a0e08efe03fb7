"""Tacotron 2 building blocks: text encoder, prenet, postnet.

Following Shen et al. 2018 (Tacotron 2) and torchaudio's ``models/tacotron2.py``, with two deviations
that make padding exact: every convolution's output is multiplied by the length mask, so the next
convolution sees zeros past the end of each item exactly as it would without batch padding, and the
bidirectional LSTM runs its backward direction over each item's own reversed prefix instead of using
``pack_padded_sequence`` (which needs the lengths on the CPU, a device round trip we avoid).
BatchNorm still pools statistics over padded positions in training mode; in eval mode the layers are
exactly padding-invariant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Postnet", "Prenet", "TextEncoder", "reverse_padded"]


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each item's valid prefix along time, leaving padding in place.

    Args:
        x: (B, T, C).
        lengths: (B,) valid lengths.

    Returns:
        (B, T, C) with ``out[b, t] = x[b, lengths[b] - 1 - t]`` for ``t < lengths[b]``.
    """
    positions = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
    reversed_positions = lengths.unsqueeze(1) - 1 - positions  # (B, T)
    index = torch.where(reversed_positions >= 0, reversed_positions, positions)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class _ConvBlock(nn.Module):
    """Conv1d + BatchNorm + activation + dropout, masked on output."""

    def __init__(self, *, in_dim: int, out_dim: int, kernel_size: int, activation: str, dropout: float):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep the length, got {kernel_size}")
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm1d(out_dim)
        self.activation = activation
        self.dropout = dropout

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """(B, C_in, T), (B, 1, T) -> (B, C_out, T)."""
        x = self.norm(self.conv(x))
        if self.activation == "relu":
            x = F.relu(x)
        elif self.activation == "tanh":
            x = torch.tanh(x)
        return F.dropout(x, self.dropout, self.training) * mask


class TextEncoder(nn.Module):
    """Token embeddings -> convolutions -> bidirectional LSTM (Tacotron 2, section 2.2).

    Args:
        embedding_dim: input size E.
        encoder_dim: output size; each LSTM direction has ``encoder_dim // 2`` units.
        n_convs: number of convolution blocks (3 in Tacotron 2).
        kernel_size: convolution width (5 in Tacotron 2).
        dropout: dropout after each convolution block (0.5 in Tacotron 2).
    """

    def __init__(
        self,
        *,
        embedding_dim: int,
        encoder_dim: int,
        n_convs: int = 3,
        kernel_size: int = 5,
        dropout: float = 0.5,
    ):
        super().__init__()
        if encoder_dim % 2 != 0:
            raise ValueError(f"encoder_dim must be even (two LSTM directions), got {encoder_dim}")
        dims = [embedding_dim] + [encoder_dim] * n_convs
        self.convs = nn.ModuleList(
            _ConvBlock(in_dim=i, out_dim=o, kernel_size=kernel_size, activation="relu", dropout=dropout)
            for i, o in zip(dims[:-1], dims[1:], strict=True)
        )
        self.forward_lstm = nn.LSTM(dims[-1], encoder_dim // 2, batch_first=True)
        self.backward_lstm = nn.LSTM(dims[-1], encoder_dim // 2, batch_first=True)

    def forward(self, embedded: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        """Encode embedded tokens.

        Args:
            embedded: (B, L, E) token embeddings.
            mask: (B, L) bool, True on valid tokens.
            lengths: (B,) token counts.

        Returns:
            (B, L, encoder_dim), zero on padded tokens.
        """
        conv_mask = mask.unsqueeze(1).to(embedded.dtype)  # (B, 1, L)
        x = embedded.transpose(1, 2) * conv_mask  # (B, E, L)
        for block in self.convs:
            x = block(x, conv_mask)
        x = x.transpose(1, 2)  # (B, L, C)
        # The forward direction only ever reads the past, so padding after an item cannot reach it.
        forward, _ = self.forward_lstm(x)
        backward, _ = self.backward_lstm(reverse_padded(x, lengths))
        out = torch.cat([forward, reverse_padded(backward, lengths)], dim=-1)
        return out * mask.unsqueeze(-1).to(out.dtype)


class Prenet(nn.Module):
    """Two ReLU layers with dropout that stays on at inference (Tacotron 2, section 2.3).

    Keeping dropout on at synthesis time is the paper's choice: it is the only source of output
    variation and it keeps the autoregressive decoder from copying its input. ``dropout=0`` switches
    it off (tests use this to compare two forward passes exactly).

    Args:
        in_dim: n_mels.
        dim: layer size (256 in Tacotron 2; 128 is the CPU default).
        n_layers: number of layers.
        dropout: dropout probability, applied in training and eval mode.
    """

    def __init__(self, *, in_dim: int, dim: int, n_layers: int = 2, dropout: float = 0.5):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"prenet dropout must be in [0, 1), got {dropout}")
        dims = [in_dim] + [dim] * n_layers
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims[:-1], dims[1:], strict=True))
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        """(..., n_mels) -> (..., dim)."""
        for layer in self.layers:
            x = F.dropout(F.relu(layer(x)), self.dropout, training=True)
        return x


class Postnet(nn.Module):
    """Residual convolutional refinement of the decoder's mel (Tacotron 2, section 2.3).

    Args:
        n_mels: mel bins.
        dim: channels of the hidden convolutions (512 in Tacotron 2; 256 is the CPU default).
        n_convs: number of convolutions including the output one (5 in Tacotron 2).
        kernel_size: convolution width (5 in Tacotron 2).
        dropout: dropout after each block (0.5 in Tacotron 2).
    """

    def __init__(
        self, *, n_mels: int, dim: int, n_convs: int = 5, kernel_size: int = 5, dropout: float = 0.5
    ):
        super().__init__()
        if n_convs < 2:
            raise ValueError(f"postnet needs at least 2 convolutions, got n_convs={n_convs}")
        dims = [n_mels] + [dim] * (n_convs - 1) + [n_mels]
        self.convs = nn.ModuleList(
            _ConvBlock(
                in_dim=i,
                out_dim=o,
                kernel_size=kernel_size,
                activation="tanh" if k < n_convs - 1 else "linear",
                dropout=dropout,
            )
            for k, (i, o) in enumerate(zip(dims[:-1], dims[1:], strict=True))
        )

    def forward(self, mel: Tensor, mask: Tensor) -> Tensor:
        """Residual to add to the decoder's mel.

        Args:
            mel: (B, T, n_mels), zero past each item's length.
            mask: (B, T) bool, True on valid frames.

        Returns:
            (B, T, n_mels) residual, zero on padded frames.
        """
        conv_mask = mask.unsqueeze(1).to(mel.dtype)  # (B, 1, T)
        x = mel.transpose(1, 2)  # (B, n_mels, T)
        for block in self.convs:
            x = block(x, conv_mask)
        return x.transpose(1, 2)
