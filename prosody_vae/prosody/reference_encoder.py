"""Reference encoder: a log-mel spectrogram of any length -> one fixed-size vector (B, H).

Architecture after the reference encoder that Capacitron (Battenberg et al. 2019, arXiv 1906.03402)
takes from Skerry-Ryan et al. 2018: a stack of 3x3, stride-2 Conv2d layers (32-32-64-64-128-128
channels) with batch norm and ReLU over the (time, frequency) plane, then a recurrent layer (GRU 128)
over time whose final state is the embedding. With 80 mel bins, six stride-2 layers leave 2 frequency
bins, so the recurrent layer reads 128 * 2 = 256 features per frame.

Where we deviate, and why:

* **Exact length handling.** The reference implementations run the convolutions over zero-padded
  batches and let padding leak into valid frames and into batch-norm statistics, so an utterance's
  embedding depends on what it was batched with. Here the input frames past each item's length are
  zeroed, and after every convolution the frames past the item's *output* length (see
  :meth:`ReferenceEncoder.output_lengths`) are zeroed again. Because a convolution's own zero padding
  and our zeroed frames are indistinguishable, every valid output frame sees exactly what it would
  see if the item were alone: in eval mode the embedding is invariant to padding and to batch
  companions (up to float rounding). In training mode batch norm uses statistics of the valid frames
  only, so garbage in the padding cannot change them either.
* **RNN read at the last valid frame.** The RNN runs over the padded conv frames (zeros past each
  item's end) and the embedding is its output at each item's last valid frame. For a unidirectional
  RNN that is the final state of a run over the valid frames alone: the padding comes after it and
  never reaches it. We do not pack the sequence, because packing needs the lengths on the host and is
  data-dependent, which tracing bakes in; with one plain tensor path the module traces as it is, and
  the exported encoder (:mod:`prosody_vae.inference.export`) wraps this very module. The cost is the
  RNN steps over padding, few after the conv stack's downsampling in time and with batches of
  similar lengths.
* **Input checks and tracing.** ``forward`` checks its lengths on the host (one copy, one sync per
  call) except while being traced: a trace keeps tensor operations only, so a traced encoder checks
  its inputs in front of the graph instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from prosody_vae.prosody.masking import last_valid, lengths_to_mask

__all__ = ["ReferenceEncoder"]


class _MaskedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are taken over valid (unmasked) positions only.

    Same parameters, buffers and state-dict keys as :class:`torch.nn.BatchNorm2d`; eval mode is plain
    batch norm with the running statistics (which is per-position and therefore padding-invariant).
    """

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        """x: (B, C, T, F); mask: (B, 1, T, 1) with 1.0 on valid frames -> (B, C, T, F)."""
        if not self.training:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        # Statistics in float32 even under autocast (free for float32 inputs): sums over many
        # positions lose precision in 16 bit.
        xf = x.float()
        maskf = mask.to(xf.dtype)
        count = maskf.sum() * x.shape[-1]
        masked = xf * maskf  # padding -> 0
        mean = masked.sum(dim=(0, 2, 3)) / count  # (C,)
        # Two-pass variance (stable for large means); the deviation is zero on the padding.
        deviation = masked - mean.view(1, -1, 1, 1) * maskf
        var = torch.linalg.vector_norm(deviation, dim=(0, 2, 3)).square() / count  # (C,), biased
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            momentum = self.momentum if self.momentum is not None else 1.0 / self.num_batches_tracked
            # Running variance is the unbiased estimate, as in nn.BatchNorm2d.
            unbiased = var * (count / (count - 1).clamp_min(1.0))
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
            self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        # Normalise and apply the affine map in one fused pass: y = x * scale + shift per channel.
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = self.bias - mean * scale
        return torch.addcmul(shift.view(1, -1, 1, 1), xf, scale.view(1, -1, 1, 1)).to(x.dtype)


class ReferenceEncoder(nn.Module):
    """Conv2d stack + RNN over a (B, T, n_mels) log-mel batch with per-item lengths -> (B, H).

    Args:
        n_mels: mel bins of the input.
        channels: output channels of each conv layer; its length is the number of layers.
        kernel_size: square kernel of every conv layer ("same"-style padding ``kernel_size // 2``).
        stride: stride of every conv layer, on both time and frequency.
        rnn_type: ``"gru"`` (Skerry-Ryan et al. 2018, default) or ``"lstm"`` (as in Coqui TTS).
        rnn_size: hidden size of the RNN; this is ``out_dim`` (H).

    Attributes:
        out_dim: H, the size of the embedding.
    """

    def __init__(
        self,
        *,
        n_mels: int = 80,
        channels: Sequence[int] = (32, 32, 64, 64, 128, 128),
        kernel_size: int = 3,
        stride: int = 2,
        rnn_type: str = "gru",
        rnn_size: int = 128,
    ) -> None:
        super().__init__()
        if n_mels < 1:
            raise ValueError(f"n_mels must be >= 1, got {n_mels}")
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty sequence of positive ints, got {channels}")
        if kernel_size < 1 or stride < 1:
            raise ValueError(f"kernel_size and stride must be >= 1, got {kernel_size} and {stride}")
        if rnn_type not in ("gru", "lstm"):
            raise ValueError(f"rnn_type must be 'gru' or 'lstm', got {rnn_type!r}")
        if rnn_size < 1:
            raise ValueError(f"rnn_size must be >= 1, got {rnn_size}")
        self.n_mels = n_mels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = kernel_size // 2
        # Conv bias is redundant before batch norm (its shift is absorbed by the BN bias).
        in_channels = (1, *channels[:-1])
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=self.padding, bias=False)
            for c_in, c_out in zip(in_channels, channels, strict=True)
        )
        self.norms = nn.ModuleList(_MaskedBatchNorm2d(c) for c in channels)
        freq = n_mels
        for _ in channels:
            freq = self._conv_out(freq)
        assert freq >= 1, "padding kernel_size // 2 keeps at least one frequency bin"
        rnn_cls = nn.GRU if rnn_type == "gru" else nn.LSTM
        self.rnn = rnn_cls(channels[-1] * freq, rnn_size, batch_first=True)
        self.out_dim = rnn_size

    def _conv_out(self, size):
        """Output size of one conv layer along an axis of input size ``size`` (int or integer tensor)."""
        return (size + 2 * self.padding - self.kernel_size) // self.stride + 1

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Valid frames after the conv stack for (B,) input lengths -> (B,), same device and dtype.

        Exactly the size a conv stack produces for an input of that length alone, which is what makes
        masking the longer batched output equivalent to encoding each item alone.
        """
        out = lengths
        for _ in self.convs:
            out = self._conv_out(out)
        return out

    def forward(self, mel: Tensor, lengths: Tensor) -> Tensor:
        """Encode a batch of log-mel spectrograms.

        Args:
            mel: (B, T, n_mels) log-mel frames; frames at or past ``lengths[b]`` are ignored (any value).
            lengths: (B,) integer valid lengths, 1 <= lengths <= T.

        Returns:
            (B, H) final RNN state over each item's valid conv frames.
        """
        if mel.dim() != 3 or mel.shape[-1] != self.n_mels:
            raise ValueError(f"mel must have shape (B, T, {self.n_mels}), got {tuple(mel.shape)}")
        if lengths.dim() != 1 or lengths.shape[0] != mel.shape[0]:
            raise ValueError(f"lengths must have shape ({mel.shape[0]},), got {tuple(lengths.shape)}")
        if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
            raise TypeError(f"lengths must be an integer tensor, got {lengths.dtype}")
        if not torch.jit.is_tracing():  # a trace would bake the host copy and the check in as constants
            lengths_cpu = lengths.to("cpu")  # the one host copy of the module
            if lengths_cpu.numel() and (int(lengths_cpu.min()) < 1 or int(lengths_cpu.max()) > mel.shape[1]):
                raise ValueError(f"lengths must lie in [1, T={mel.shape[1]}], got {lengths_cpu.tolist()}")
            lengths = lengths.to(mel.device)

        # Zero the padding with where() (not a multiply) so NaN/inf garbage cannot leak through.
        valid = lengths_to_mask(lengths, mel.shape[1])  # (B, T)
        x = torch.where(valid.unsqueeze(-1), mel, mel.new_zeros(())).unsqueeze(1)  # (B, 1, T, n_mels)
        out_lengths = lengths
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = conv(x)  # (B, C, T', F')
            out_lengths = self._conv_out(out_lengths)
            mask = lengths_to_mask(out_lengths, x.shape[2]).to(x.dtype)[:, None, :, None]  # (B, 1, T', 1)
            # Re-zero after ReLU: the next conv then sees zeros past each item's end, exactly like its
            # own zero padding when the item is alone.
            x = F.relu(norm(x, mask)) * mask

        batch, chans, frames, freq = x.shape
        x = x.permute(0, 2, 1, 3).reshape(batch, frames, chans * freq)  # (B, T', C * F')
        outputs, _ = self.rnn(x)  # (B, T', H): the hidden state after every frame (GRU and LSTM alike)
        return last_valid(outputs, out_lengths)  # (B, H), the state after each item's last valid frame
