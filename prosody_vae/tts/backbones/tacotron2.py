"""Tacotron 2-style text-to-mel backbone with a conditioning input (Shen et al. 2018).

Differences from the paper, and why:

* Sized for a 2-core CPU by default (embedding 256, encoder 256, attention RNN 256, decoder RNN 512,
  prenet 128, postnet 256; about 6 M parameters instead of 28 M); every size is a keyword argument,
  so ``embedding_dim=512, encoder_dim=512, attention_rnn_dim=1024, decoder_dim=1024, prenet_dim=256,
  postnet_dim=512, r=1, attention="location"`` is the paper's model.
* Reduction factor r (Tacotron 1; Battenberg et al. 2019 use r = 2): each decoder step emits r frames,
  so the decoder loop is r times shorter. The prenet reads the last frame of the previous group.
* Dynamic convolution attention by default (see :mod:`prosody_vae.tts.backbones.attention`): plain
  content-based attention is the usual reason a small Tacotron never aligns.
* One stop logit per frame (r per step), not per step, so the predicted length is frame-exact.
* A (B, C) conditioning vector (the prosody embedding z, optionally with a speaker embedding) is
  concatenated to every encoder output, as Capacitron does for its embedding.
* Padding is exact in eval mode: an item's outputs do not depend on how much the batch is padded.
* While gradients are recorded on the CPU, the teacher-forced pass runs the two decoder LSTM cells
  through :class:`~prosody_vae.tts.backbones.deferred_lstm.DeferredLSTMCell`'s training step, which
  forms each weight gradient once per sequence instead of once per decoder step: the same outputs,
  the same gradients up to the order of additions, and a backward about 1.8x faster at Tacotron 2's
  layer sizes. Inference, and any pass without gradients, runs ``nn.LSTMCell``'s own forward.
* Optional explicit pitch (``pitch=True``): beside the r mel frames, each decoder step predicts r
  frames of log-F0 and voicing logits from the same projection input (decoder state + attention
  context). A mel decoder trained with L1 renders the harmonics of the voice as a blur (the L1
  optimum of a harmonic ripple whose phase in frequency moves with F0 is its median, a smooth
  envelope), so the pitch contour cannot be read back from its output; predicted explicitly, it can
  be handed to a vocoder that takes F0 (:class:`~prosody_vae.audio.vocoders.WorldVocoder`) and edited
  after prediction. Not in Tacotron 2; the terms are likelihoods in nats (:mod:`prosody_vae.tts.pitch`).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from prosody_vae.prosody.masking import lengths_to_mask
from prosody_vae.tts.backbones.attention import DynamicConvolutionAttention, LocationSensitiveAttention
from prosody_vae.tts.backbones.deferred_lstm import DeferredLSTMCell
from prosody_vae.tts.backbones.layers import Postnet, Prenet, TextEncoder
from prosody_vae.tts.backbones.reduced_precision import reduced_precision_step
from prosody_vae.tts.pitch_contour import UtteranceContour
from prosody_vae.tts.pitch_refiner import PitchRefiner, attention_position

__all__ = ["DecoderState", "Tacotron2", "TacotronInference", "TacotronOutput"]

# The free-running loop asks "has every item stopped?" only every few steps: the answer needs a
# host-device synchronisation, and running a few extra steps past the last stop costs less than a
# sync per step on an accelerator. Output lengths do not depend on it.
_STOP_CHECK_EVERY = 8

# One LSTM cell step: input (B, I) and state (h, c) -> new (h, c), each (B, H).
_CellStep = Callable[[Tensor, tuple[Tensor, Tensor]], tuple[Tensor, Tensor]]


class TacotronOutput(NamedTuple):
    """Teacher-forced outputs; frames past each item's length are zero in ``mel`` and ``mel_post``."""

    mel: Tensor  # (B, T, n_mels) decoder output
    mel_post: Tensor  # (B, T, n_mels) after the postnet residual
    stop_logits: Tensor  # (B, T) one logit per frame
    alignments: Tensor  # (B, ceil(T / r), L)
    pitch: Tensor | None = None  # (B, T, 2) log-F0 (natural log of Hz) and voicing logit; pitch=True


class TacotronInference(NamedTuple):
    """Free-running outputs; frames past each item's length are zero."""

    mel_post: Tensor  # (B, T, n_mels)
    mel_lengths: Tensor  # (B,) frames
    alignments: Tensor  # (B, ceil(T / r), L)
    stop_probs: Tensor  # (B, T)
    pitch: Tensor | None = None  # (B, T, 2) log-F0 and voicing logit, zero past the length; pitch=True


class DecoderState(NamedTuple):
    """Everything the decoder carries from one step to the next; threaded explicitly."""

    attention_hidden: Tensor  # (B, attention_rnn_dim)
    attention_cell: Tensor  # (B, attention_rnn_dim)
    decoder_hidden: Tensor  # (B, decoder_dim)
    decoder_cell: Tensor  # (B, decoder_dim)
    context: Tensor  # (B, M) attention context, M = encoder_dim + conditioning_dim
    weights: Tensor  # (B, L) last attention weights
    cumulative: Tensor  # (B, L) sum of all attention weights so far


class _DecoderCells(NamedTuple):
    """How one decoding loop runs the two decoder LSTM cells; made per call, never stored."""

    attention_rnn: _CellStep
    decoder_rnn: _CellStep


class Tacotron2(nn.Module):
    """Text (+ conditioning vector) to mel spectrogram.

    Args:
        n_symbols: vocabulary size (``tokenizer.vocab_size``); id 0 is padding.
        n_mels: mel bins.
        r: reduction factor, frames per decoder step (1-5).
        conditioning_dim: size C of the conditioning vector; 0 for an unconditioned model.
        attention: ``"dca"`` (dynamic convolution) or ``"location"`` (location-sensitive).
        embedding_dim: token embedding size E.
        encoder_dim: text encoder output size (conv channels and both LSTM directions together).
        encoder_n_convs, encoder_kernel_size: encoder convolution stack.
        attention_dim: size of the attention energy MLP.
        attention_rnn_dim: size of the attention LSTM.
        decoder_dim: size of the decoder LSTM.
        prenet_dim: prenet layer size.
        prenet_dropout: prenet dropout, on in eval mode too (Tacotron 2); 0 disables it.
        postnet_dim, postnet_n_convs, postnet_kernel_size: postnet stack.
        dropout: dropout of the encoder and postnet convolutions.
        rnn_dropout: dropout on the two decoder LSTM outputs (Tacotron 2 uses zoneout 0.1; NVIDIA's
            implementation, like ours, uses dropout 0.1).
        dca_filters, dca_filter_size, dca_prior_size, dca_prior_alpha, dca_prior_beta: DCA settings.
        location_filters, location_kernel_size: location-sensitive attention settings.
        pitch: also predict frame-level log-F0 and voicing (see the module docstring).
        pitch_init_hz: initial F0 prediction (the projection's bias), about the corpus's median.
    """

    def __init__(
        self,
        *,
        n_symbols: int,
        n_mels: int = 80,
        r: int = 2,
        conditioning_dim: int = 0,
        attention: str = "dca",
        embedding_dim: int = 256,
        encoder_dim: int = 256,
        encoder_n_convs: int = 3,
        encoder_kernel_size: int = 5,
        attention_dim: int = 128,
        attention_rnn_dim: int = 256,
        decoder_dim: int = 512,
        prenet_dim: int = 128,
        prenet_dropout: float = 0.5,
        postnet_dim: int = 256,
        postnet_n_convs: int = 5,
        postnet_kernel_size: int = 5,
        dropout: float = 0.5,
        rnn_dropout: float = 0.1,
        dca_filters: int = 8,
        dca_filter_size: int = 21,
        dca_prior_size: int = 11,
        dca_prior_alpha: float = 0.1,
        dca_prior_beta: float = 0.9,
        location_filters: int = 32,
        location_kernel_size: int = 31,
        pitch: bool = False,
        pitch_init_hz: float = 100.0,
        pitch_refiner_dim: int = 0,
        pitch_input: str = "decoder",
        pitch_refiner_position: bool = False,
        pitch_contour: bool = False,
    ) -> None:
        super().__init__()
        if n_symbols < 2:
            raise ValueError(f"n_symbols must be >= 2 (padding plus one symbol), got {n_symbols}")
        if not 1 <= r <= 8:
            raise ValueError(f"reduction factor r must be in 1..8, got {r}")
        if conditioning_dim < 0:
            raise ValueError(f"conditioning_dim must be >= 0, got {conditioning_dim}")
        if pitch_init_hz <= 0:
            raise ValueError(f"pitch_init_hz must be > 0, got {pitch_init_hz}")
        if pitch_input not in ("decoder", "context"):
            raise ValueError(f"pitch_input must be 'decoder' or 'context', got {pitch_input!r}")
        if pitch_refiner_dim < 0 or (pitch_refiner_dim and not pitch):
            raise ValueError(f"pitch_refiner_dim must be 0, or > 0 with pitch=True, got {pitch_refiner_dim}")
        if pitch_contour and not (pitch and conditioning_dim):
            raise ValueError(
                "pitch_contour is set by the conditioning: it needs pitch=True and conditioning_dim > 0"
            )
        if pitch_refiner_position and not pitch_refiner_dim:
            raise ValueError(
                "pitch_refiner_position is read by the pitch refiner: it needs pitch_refiner_dim > 0"
            )
        if attention not in ("dca", "location"):
            raise ValueError(f"attention must be 'dca' or 'location', got {attention!r}")
        self.n_mels, self.r, self.conditioning_dim = n_mels, r, conditioning_dim
        self.rnn_dropout = rnn_dropout
        memory_dim = encoder_dim + conditioning_dim

        self.embedding = nn.Embedding(n_symbols, embedding_dim, padding_idx=0)
        self.encoder = TextEncoder(
            embedding_dim=embedding_dim,
            encoder_dim=encoder_dim,
            n_convs=encoder_n_convs,
            kernel_size=encoder_kernel_size,
            dropout=dropout,
        )
        self.prenet = Prenet(in_dim=n_mels, dim=prenet_dim, dropout=prenet_dropout)
        # nn.LSTMCell subclasses: the same parameters and forward, plus a training step (see _cells)
        self.attention_rnn = DeferredLSTMCell(prenet_dim + memory_dim, attention_rnn_dim)
        self.attention: DynamicConvolutionAttention | LocationSensitiveAttention
        if attention == "dca":
            self.attention = DynamicConvolutionAttention(
                query_dim=attention_rnn_dim,
                attention_dim=attention_dim,
                n_filters=dca_filters,
                filter_size=dca_filter_size,
                prior_size=dca_prior_size,
                prior_alpha=dca_prior_alpha,
                prior_beta=dca_prior_beta,
            )
        else:
            self.attention = LocationSensitiveAttention(
                query_dim=attention_rnn_dim,
                memory_dim=memory_dim,
                attention_dim=attention_dim,
                n_filters=location_filters,
                kernel_size=location_kernel_size,
            )
        self.decoder_rnn = DeferredLSTMCell(attention_rnn_dim + memory_dim, decoder_dim)
        self.mel_projection = nn.Linear(decoder_dim + memory_dim, n_mels * r)
        self.stop_projection = nn.Linear(decoder_dim + memory_dim, r)
        self.pitch_projection: nn.Linear | None = None
        # "context": pitch is read from the attention context alone (the columns of pitch_projection
        # that face the decoder LSTM's state are not used), see _pitch_step.
        self.pitch_input, self.decoder_dim = pitch_input, decoder_dim
        if pitch:
            self.pitch_projection = nn.Linear(decoder_dim + memory_dim, 2 * r)
            with torch.no_grad():  # start at a plausible F0 and an even voicing decision
                bias = self.pitch_projection.bias.view(r, 2)
                bias[:, 0] = math.log(pitch_init_hz)
                bias[:, 1] = 0.0
        self.pitch_refiner: PitchRefiner | None = None
        if pitch_refiner_dim:
            in_dim = memory_dim if pitch_input == "context" else decoder_dim + memory_dim
            self.pitch_refiner = PitchRefiner(
                in_dim=in_dim,
                memory_dim=memory_dim,
                dim=pitch_refiner_dim,
                r=r,
                embedding_dim=embedding_dim,
                position=pitch_refiner_position,
            )
        # an utterance-level contour that the conditioning sets (tts/pitch_contour.py)
        self.pitch_contour = (
            UtteranceContour(conditioning_dim=conditioning_dim, r=r) if pitch_contour else None
        )
        self.postnet = Postnet(
            n_mels=n_mels, dim=postnet_dim, n_convs=postnet_n_convs, kernel_size=postnet_kernel_size
        )

    # ----------------------------------------------------------------------------------------------
    def embed_tokens(self, tokens: Tensor) -> Tensor:
        """Token embeddings. (B, L) long -> (B, L, E)."""
        return self.embedding(tokens)

    def decoder_lengths(self, mel_lengths: Tensor) -> Tensor:
        """Decoder steps per item, ``ceil(mel_lengths / r)``. (B,) -> (B,)."""
        return torch.div(mel_lengths + self.r - 1, self.r, rounding_mode="floor")

    def _memory(
        self, tokens: Tensor, token_lengths: Tensor, conditioning: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Validate the text inputs and encode them. Returns memory (B, L, M) and mask (B, L)."""
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise TypeError(f"tokens must be a (B, L) long tensor, got {tuple(tokens.shape)} {tokens.dtype}")
        batch, length = tokens.shape
        _check_lengths("token_lengths", token_lengths, batch, length)
        if self.conditioning_dim == 0:
            if conditioning is not None:
                raise ValueError("conditioning given, but this Tacotron2 was built with conditioning_dim=0")
        elif conditioning is None:
            raise ValueError(f"conditioning (B, {self.conditioning_dim}) is required: conditioning_dim > 0")
        elif conditioning.shape != (batch, self.conditioning_dim):
            raise ValueError(
                f"conditioning must have shape ({batch}, {self.conditioning_dim}), got {tuple(conditioning.shape)}"
            )
        mask = lengths_to_mask(token_lengths, length)
        memory = self.encoder(self.embed_tokens(tokens), mask, token_lengths)  # (B, L, encoder_dim)
        if conditioning is not None:
            memory = torch.cat(
                [memory, conditioning.unsqueeze(1).expand(-1, length, -1)], dim=-1
            )  # (B, L, M)
        return memory, mask

    def _initial_state(self, memory: Tensor, mask: Tensor) -> DecoderState:
        batch = memory.shape[0]
        zeros = memory.new_zeros
        weights = self.attention.initial_weights(mask, memory.dtype)
        return DecoderState(
            attention_hidden=zeros(batch, self.attention_rnn.hidden_size),
            attention_cell=zeros(batch, self.attention_rnn.hidden_size),
            decoder_hidden=zeros(batch, self.decoder_rnn.hidden_size),
            decoder_cell=zeros(batch, self.decoder_rnn.hidden_size),
            context=zeros(batch, memory.shape[-1]),
            weights=weights,
            cumulative=weights,
        )

    def _cells(self, memory: Tensor) -> _DecoderCells:
        """The decoder LSTM steps for one teacher-forced pass over ``memory`` (B, L, M).

        While gradients are recorded on the CPU: the cells' deferred training step, which forms their
        weight gradients once per sequence (:mod:`~prosody_vae.tts.backbones.deferred_lstm`), with
        the per-sequence weights made here, for this call only. Otherwise the cells' own forward:
        without gradients there is nothing to defer, and on CUDA torch runs each step's gate
        arithmetic as one fused kernel forward and one backward (the deferred step runs about a dozen
        elementwise kernels each way) while the per-step weight products it would save are cheap at
        a GPU's memory bandwidth. The trade has only been measured on the CPU, so it stays there.
        """
        if not (torch.is_grad_enabled() and memory.device.type == "cpu"):
            return _DecoderCells(self.attention_rnn, self.decoder_rnn)
        return _DecoderCells(
            functools.partial(self.attention_rnn.step, weights=self.attention_rnn.sequence_weights()),
            functools.partial(self.decoder_rnn.step, weights=self.decoder_rnn.sequence_weights()),
        )

    def _inference_cells(self, reduced_precision: torch.dtype | None) -> _DecoderCells:
        """``nn.LSTMCell``'s own forward, or (opt-in) steps reading bfloat16 or int8 copies of the weights.

        The copies are made once and kept until a weight changes (a parameter's version counter moves
        with every in-place update, e.g. an optimiser step, and ``load_state_dict`` copies in place),
        so a sentence-by-sentence caller does not pay for quantising 19 M weights per call.
        """
        if reduced_precision is None:
            return _DecoderCells(self.attention_rnn, self.decoder_rnn)
        cells = (self.attention_rnn, self.decoder_rnn)
        key = (reduced_precision, tuple((p.data_ptr(), p._version) for c in cells for p in c.parameters()))
        cached = self.__dict__.get("_reduced_cells")
        if cached is None or cached[0] != key:
            steps = _DecoderCells(*(reduced_precision_step(cell, reduced_precision) for cell in cells))
            self.__dict__["_reduced_cells"] = cached = (key, steps)  # not a submodule: never saved
        return cached[1]

    def _step(
        self,
        prenet_out: Tensor,
        state: DecoderState,
        memory: Tensor,
        processed: Tensor,
        mask: Tensor,
        cells: _DecoderCells,
    ) -> tuple[Tensor, DecoderState]:
        """One decoder step. prenet_out (B, prenet_dim) -> projection input (B, decoder_dim + M), new state."""
        attention_hidden, attention_cell = cells.attention_rnn(
            torch.cat([prenet_out, state.context], dim=-1), (state.attention_hidden, state.attention_cell)
        )
        attention_hidden = F.dropout(attention_hidden, self.rnn_dropout, self.training)
        context, weights = self.attention(
            attention_hidden, memory, processed, mask, state.weights, state.cumulative
        )
        decoder_hidden, decoder_cell = cells.decoder_rnn(
            torch.cat([attention_hidden, context], dim=-1), (state.decoder_hidden, state.decoder_cell)
        )
        decoder_hidden = F.dropout(decoder_hidden, self.rnn_dropout, self.training)
        new_state = DecoderState(
            attention_hidden,
            attention_cell,
            decoder_hidden,
            decoder_cell,
            context,
            weights,
            state.cumulative + weights,
        )
        return torch.cat([decoder_hidden, context], dim=-1), new_state

    def _pitch_step(self, out: Tensor) -> Tensor:
        """The linear pitch prediction from decoder outputs (..., decoder_dim + M) -> (..., 2r).

        With ``pitch_input="context"`` only the attention context (the last M features) is read. Why:
        in teacher-forced training the decoder LSTM's state has read the previous real frames, whose
        harmonics show the true pitch, so a head on it learns to continue that pitch; at synthesis the
        previous frames are the model's own and the shortcut is gone. Measured on the built-in corpus
        with its raised questions (docs/intonation.md): teacher-forced, questions ended +1.2 st above
        their median, free-running -1.0. The context holds only what synthesis has too: the text being
        spoken (through the alignment) and the conditioning (z, speaker).
        """
        assert self.pitch_projection is not None
        if self.pitch_input == "decoder":
            return self.pitch_projection(out)
        weight = self.pitch_projection.weight[:, self.decoder_dim :]  # (2r, M)
        return F.linear(out[..., self.decoder_dim :], weight, self.pitch_projection.bias)

    def _refined_pitch(
        self,
        pitch: Tensor,
        hidden: Tensor | None,
        decoder_lengths: Tensor,
        memory: Tensor,
        tokens: Tensor,
        token_lengths: Tensor,
        weights: Tensor,
        conditioning: Tensor | None,
    ) -> Tensor:
        """The linear pitch prediction plus the refiner's residual and the utterance contour, where
        the model has them.

        pitch: (B, steps, 2r) or (B, steps * r, 2); hidden: (B, steps, decoder_dim + M) decoder outputs;
        memory: (B, L, M) encoder outputs; tokens (B, L); weights: (B, steps, L) attention weights;
        conditioning: (B, C) or None.
        Returns (B, steps * r, 2).
        """
        batch = pitch.shape[0]
        pitch = pitch.reshape(batch, -1, 2)
        step_mask = lengths_to_mask(decoder_lengths, weights.shape[1])
        refiner = self.pitch_refiner if hidden is not None else None
        position = None
        if self.pitch_contour is not None or (refiner is not None and refiner.position is not None):
            position = attention_position(weights, token_lengths)  # (B, steps)
        if refiner is not None:
            assert hidden is not None
            if self.pitch_input == "context":
                hidden = hidden[..., self.decoder_dim :]
            final = self.embed_tokens(
                tokens[torch.arange(batch, device=tokens.device), token_lengths - 1]
            )  # (B, E)
            pitch = pitch + refiner(hidden, step_mask, memory, token_lengths, final, position)
        if self.pitch_contour is not None:
            assert conditioning is not None and position is not None
            pitch = pitch + self.pitch_contour(conditioning, position, step_mask)
        return pitch

    def _postnet(self, mel: Tensor, mel_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Zero frames past each length, add the postnet residual. (B, T, n_mels) -> mel, mel_post."""
        mask = lengths_to_mask(mel_lengths, mel.shape[1])
        mel = mel * mask.unsqueeze(-1).to(mel.dtype)
        return mel, mel + self.postnet(mel, mask)

    # ----------------------------------------------------------------------------------------------
    def forward(
        self,
        tokens: Tensor,
        token_lengths: Tensor,
        mels: Tensor,
        mel_lengths: Tensor,
        conditioning: Tensor | None = None,
    ) -> TacotronOutput:
        """Teacher-forced pass.

        Args:
            tokens: (B, L) long, padded with 0.
            token_lengths: (B,) valid tokens per item.
            mels: (B, T, n_mels) targets; any T (padded internally to a multiple of r).
            mel_lengths: (B,) valid frames per item.
            conditioning: (B, C) or None when ``conditioning_dim == 0``.

        Returns:
            :class:`TacotronOutput` with mel and mel_post (B, T, n_mels), stop_logits (B, T) and
            alignments (B, ceil(T / r), L).
        """
        if mels.dim() != 3 or mels.shape[-1] != self.n_mels:
            raise ValueError(f"mels must be (B, T, {self.n_mels}), got {tuple(mels.shape)}")
        batch, frames, _ = mels.shape
        if tokens.shape[0] != batch:
            raise ValueError(f"tokens has batch {tokens.shape[0]} but mels has batch {batch}")
        _check_lengths("mel_lengths", mel_lengths, batch, frames)
        memory, mask = self._memory(tokens, token_lengths, conditioning)
        processed = self.attention.process_memory(memory)

        steps = -(-frames // self.r)
        padded = F.pad(mels, (0, 0, 0, steps * self.r - frames))  # (B, steps * r, n_mels)
        # Step t reads the last frame of group t - 1; step 0 reads an all-zero "go" frame.
        previous = padded[:, self.r - 1 :: self.r][:, :-1]  # (B, steps - 1, n_mels)
        inputs = torch.cat([mels.new_zeros(batch, 1, self.n_mels), previous], dim=1)  # (B, steps, n_mels)
        prenet_out = self.prenet(inputs)  # the prenet has no recurrence: all steps at once

        state = self._initial_state(memory, mask)
        cells = self._cells(memory)
        outputs, weights = [], []
        for t in range(steps):
            out, state = self._step(prenet_out[:, t], state, memory, processed, mask, cells)
            outputs.append(out)
            weights.append(state.weights)
        hidden = torch.stack(outputs, dim=1)  # (B, steps, decoder_dim + M)
        alignments = torch.stack(weights, dim=1)  # (B, steps, L)
        # Projections have no recurrence either: one matmul over all steps instead of one per step.
        mel = self.mel_projection(hidden).reshape(batch, steps * self.r, self.n_mels)[:, :frames]
        stop_logits = self.stop_projection(hidden).reshape(batch, steps * self.r)[:, :frames]
        pitch = None
        if self.pitch_projection is not None:
            pitch = self._refined_pitch(
                self._pitch_step(hidden),
                hidden,
                self.decoder_lengths(mel_lengths),
                memory,
                tokens,
                token_lengths,
                alignments,
                conditioning,
            )
            pitch = pitch[:, :frames]
        mel, mel_post = self._postnet(mel, mel_lengths)
        return TacotronOutput(mel, mel_post, stop_logits, alignments, pitch)

    @torch.no_grad()
    def infer(
        self,
        tokens: Tensor,
        token_lengths: Tensor,
        conditioning: Tensor | None = None,
        *,
        max_steps: int = 1000,
        stop_threshold: float = 0.5,
        min_steps_per_token: float = 0.5,
        reduced_precision: torch.dtype | None = None,
    ) -> TacotronInference:
        """Free-running synthesis with per-item stopping.

        Item b stops at the first frame whose stop probability exceeds ``stop_threshold`` on a decoder
        step ``>= ceil(min_steps_per_token * token_lengths[b])``; that frame is its last. The minimum
        depends on each item's own text length (the reference implementation compares the step with
        the batch size). Items that never stop get ``max_steps * r`` frames and a warning.

        Args:
            tokens: (B, L) long.
            token_lengths: (B,).
            conditioning: (B, C) or None when ``conditioning_dim == 0``.
            max_steps: decoder steps before giving up.
            stop_threshold: stop probability threshold.
            min_steps_per_token: minimum decoder steps per input token before a stop counts.
            reduced_precision: None (default) for the exact float32 cells; ``torch.bfloat16`` to run
                the two decoder LSTM cells' matrix products on bfloat16 copies of their weights
                (about 1.6x faster per step for 1024-unit cells on a CPU with bfloat16 support), or
                ``torch.qint8`` on int8 copies (CPU only); close to, not equal to, float32
                (:mod:`~prosody_vae.tts.backbones.reduced_precision`, docs/benchmarks.md).

        Returns:
            :class:`TacotronInference`: mel_post (B, T, n_mels), mel_lengths (B,), alignments
            (B, ceil(T / r), L), stop_probs (B, T), zero past each item's length.
        """
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if not 0.0 < stop_threshold < 1.0:
            raise ValueError(f"stop_threshold must be in (0, 1), got {stop_threshold}")
        if min_steps_per_token < 0:
            raise ValueError(f"min_steps_per_token must be >= 0, got {min_steps_per_token}")
        cells = self._inference_cells(reduced_precision)
        memory, mask = self._memory(tokens, token_lengths, conditioning)
        processed = self.attention.process_memory(memory)
        batch = memory.shape[0]
        min_steps = torch.ceil(token_lengths.to(memory.dtype) * min_steps_per_token).long()  # (B,)

        state = self._initial_state(memory, mask)
        frame = memory.new_zeros(batch, self.n_mels)
        done = torch.zeros(batch, dtype=torch.bool, device=memory.device)
        mels, stops, weights, pitches, outs = [], [], [], [], []
        for t in range(max_steps):
            out, state = self._step(self.prenet(frame), state, memory, processed, mask, cells)
            if self.pitch_projection is not None:
                pitches.append(self._pitch_step(out).view(batch, self.r, 2))
                if self.pitch_refiner is not None:
                    outs.append(out)
            step_mel = self.mel_projection(out).view(batch, self.r, self.n_mels)
            step_stop = torch.sigmoid(self.stop_projection(out))  # (B, r)
            mels.append(step_mel)
            stops.append(step_stop)
            weights.append(state.weights)
            frame = step_mel[:, -1]
            done |= ((step_stop > stop_threshold).any(dim=-1)) & (min_steps <= t)
            if (t + 1) % _STOP_CHECK_EVERY == 0 and bool(done.all()):
                break

        steps = len(mels)
        mel = torch.cat(mels, dim=1)  # (B, steps * r, n_mels)
        stop_probs = torch.stack(stops, dim=1).reshape(batch, steps * self.r)
        mel_lengths, stopped = stop_lengths(stop_probs, min_steps * self.r, stop_threshold)
        if not bool(stopped.all()):
            missing = (~stopped).nonzero().flatten().tolist()
            warnings.warn(
                f"Tacotron2.infer: items {missing} did not stop within max_steps={max_steps}; "
                f"their output is cut at {steps * self.r} frames",
                stacklevel=2,
            )
        # Steps run after the last item stopped (see _STOP_CHECK_EVERY) are cut off.
        frames = int(mel_lengths.max())
        decoder_lengths = self.decoder_lengths(mel_lengths)
        mel, stop_probs = mel[:, :frames], stop_probs[:, :frames]
        all_weights = torch.stack(weights, dim=1)  # (B, steps, L)
        alignments = all_weights[:, : -(-frames // self.r)]  # (B, ceil(T / r), L)
        _, mel_post = self._postnet(mel, mel_lengths)
        frame_mask = lengths_to_mask(mel_lengths, frames).to(stop_probs.dtype)
        step_mask = lengths_to_mask(decoder_lengths, alignments.shape[1]).to(alignments.dtype)
        pitch = None
        if pitches:
            hidden = torch.stack(outs, dim=1) if outs else None  # (B, steps, decoder_dim + M)
            pitch = self._refined_pitch(
                torch.cat(pitches, dim=1),
                hidden,
                decoder_lengths,
                memory,
                tokens,
                token_lengths,
                all_weights,
                conditioning,
            )
            pitch = pitch[:, :frames] * frame_mask.unsqueeze(-1)  # (B, T, 2)
        return TacotronInference(
            mel_post, mel_lengths, alignments * step_mask.unsqueeze(-1), stop_probs * frame_mask, pitch
        )


def stop_lengths(stop_probs: Tensor, min_frames: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Per-item length from per-frame stop probabilities.

    Args:
        stop_probs: (B, T) stop probabilities.
        min_frames: (B,) first frame index at which a stop counts.
        threshold: probability a stop frame must exceed.

    Returns:
        lengths (B,): index of the first qualifying frame + 1, or T when there is none; and
        stopped (B,) bool, whether a qualifying frame exists.
    """
    positions = torch.arange(stop_probs.shape[1], device=stop_probs.device)
    fires = (stop_probs > threshold) & (positions.unsqueeze(0) >= min_frames.unsqueeze(1))  # (B, T)
    stopped = fires.any(dim=1)
    first = fires.to(torch.uint8).argmax(dim=1)  # argmax returns the first maximum
    return torch.where(stopped, first + 1, torch.full_like(first, stop_probs.shape[1])), stopped


def _check_lengths(name: str, lengths: Tensor, batch: int, max_length: int) -> None:
    if (
        lengths.shape != (batch,)
        or lengths.dtype.is_floating_point
        or lengths.dtype in (torch.bool, torch.uint8)
    ):
        raise TypeError(
            f"{name} must be a ({batch},) integer tensor, got {tuple(lengths.shape)} {lengths.dtype}"
        )
    if batch and not bool(((lengths >= 1) & (lengths <= max_length)).all()):
        raise ValueError(f"{name} must lie in 1..{max_length}, got {lengths.tolist()}")
