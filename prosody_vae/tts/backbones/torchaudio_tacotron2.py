"""``torchaudio.models.Tacotron2`` as a prosody-conditioned backbone for :class:`~prosody_vae.tts.model.ProsodyTTS`.

The adapter gives torchaudio's model the backbone interface our training loop, losses and synthesis
use (the same as :class:`prosody_vae.tts.backbones.Tacotron2`): library layout ``(B, T, n_mels)``,
``forward(...) -> TacotronOutput``, ``infer(...) -> TacotronInference``, ``embed_tokens``,
``decoder_lengths`` and ``r``. torchaudio's module itself is used unchanged (``self.tacotron``), so
its weights, including those of a pretrained ``torchaudio.pipelines`` bundle, load as they are.

How z reaches the decoder: **projected and added to the encoder outputs.** torchaudio's decoder
attends over a memory of fixed width ``encoder_embedding_dim``: the attention's memory layer, the
attention LSTM and the decoder LSTM are all sized for it. Capacitron (Battenberg et al. 2019)
concatenates z to every encoder output; doing that here would change the input size of those three
layers, so a pretrained torchaudio model could no longer be loaded and fine-tuned with prosody. A
learned projection ``Linear(conditioning_dim, encoder_embedding_dim)`` added to every valid encoder
output keeps every torchaudio shape (and is the usual way GST-style embeddings are added); adding
a linear image of z to the memory can express what concatenation does for the attention's keys and
the context vectors that reach the decoder, up to the projection's rank. The projection's bias is
off and its weights start small, so at initialisation the adapter leaves a pretrained model's
outputs nearly unchanged.

torchaudio-specific constraints, checked at construction: one frame per decoder step (``r = 1``),
location-sensitive attention, and token embedding size equal to the encoder size. Its encoder packs
sequences without sorting, so the adapter sorts each batch by token length and restores the order.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torchaudio.models import Tacotron2 as _TorchaudioTacotron2

from prosody_vae.prosody.masking import lengths_to_mask
from prosody_vae.tts.backbones import TacotronInference, TacotronOutput

__all__ = ["TorchaudioTacotron2Backbone"]


class TorchaudioTacotron2Backbone(nn.Module):
    """torchaudio's Tacotron 2 with a (B, C) conditioning vector added to its encoder outputs.

    Args:
        n_symbols: vocabulary size; id 0 is padding.
        n_mels: mel bins.
        conditioning_dim: C, size of the conditioning vector (z, optionally with a speaker vector).
        embedding_dim: token embedding size; must equal ``encoder_dim`` (torchaudio's encoder convs
            read the embeddings directly).
        encoder_dim, attention_dim, attention_rnn_dim, decoder_dim, prenet_dim, postnet_dim,
        postnet_n_convs: torchaudio's ``encoder_embedding_dim``, ``attention_hidden_dim``,
            ``attention_rnn_dim``, ``decoder_rnn_dim``, ``prenet_dim``, ``postnet_embedding_dim``,
            ``postnet_n_convolution``.
        max_decoder_steps: upper bound on free-running decoder steps.
        tacotron: an existing ``torchaudio.models.Tacotron2`` to wrap (e.g. pretrained weights)
            instead of building one from the sizes above.
    """

    r = 1  # torchaudio supports one frame per decoder step only

    def __init__(
        self,
        *,
        n_symbols: int,
        n_mels: int = 80,
        conditioning_dim: int,
        embedding_dim: int = 512,
        encoder_dim: int = 512,
        attention_dim: int = 128,
        attention_rnn_dim: int = 1024,
        decoder_dim: int = 1024,
        prenet_dim: int = 256,
        postnet_dim: int = 512,
        postnet_n_convs: int = 5,
        max_decoder_steps: int = 2000,
        tacotron: _TorchaudioTacotron2 | None = None,
    ) -> None:
        super().__init__()
        if conditioning_dim < 1:
            raise ValueError(f"conditioning_dim must be >= 1, got {conditioning_dim}")
        if tacotron is None:
            if embedding_dim != encoder_dim:
                raise ValueError(
                    f"torchaudio's Tacotron2 needs embedding_dim == encoder_dim, got {embedding_dim} and {encoder_dim}"
                )
            tacotron = _TorchaudioTacotron2(
                n_mels=n_mels,
                n_symbol=n_symbols,
                symbol_embedding_dim=embedding_dim,
                encoder_embedding_dim=encoder_dim,
                attention_hidden_dim=attention_dim,
                attention_rnn_dim=attention_rnn_dim,
                decoder_rnn_dim=decoder_dim,
                prenet_dim=prenet_dim,
                postnet_embedding_dim=postnet_dim,
                postnet_n_convolution=postnet_n_convs,
                decoder_max_step=max_decoder_steps,
            )
        elif not isinstance(tacotron, _TorchaudioTacotron2):
            raise TypeError(f"tacotron must be a torchaudio.models.Tacotron2, got {type(tacotron).__name__}")
        if tacotron.n_frames_per_step != 1:
            raise ValueError("torchaudio's Tacotron2 supports n_frames_per_step=1 only")
        self.tacotron = tacotron
        self.n_mels = tacotron.n_mels
        self.conditioning_dim = conditioning_dim
        memory_dim = tacotron.decoder.encoder_embedding_dim
        self.conditioning_projection = nn.Linear(conditioning_dim, memory_dim, bias=False)
        nn.init.normal_(self.conditioning_projection.weight, std=0.1 / conditioning_dim**0.5)

    @property
    def embedding(self) -> nn.Embedding:
        """The token table (what :meth:`embed_tokens` applies)."""
        return self.tacotron.embedding

    def embed_tokens(self, tokens: Tensor) -> Tensor:
        """Token embeddings. (B, L) long -> (B, L, E)."""
        return self.tacotron.embedding(tokens)

    def decoder_lengths(self, mel_lengths: Tensor) -> Tensor:
        """Decoder steps per item: one per frame. (B,) -> (B,)."""
        return mel_lengths

    def _sorted_memory(
        self, tokens: Tensor, token_lengths: Tensor, conditioning: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Encoder outputs plus the projected conditioning, in decreasing token-length order.

        torchaudio's encoder packs its input without sorting, so the batch is sorted here.

        Returns:
            memory (B, L', M) with L' = max(token_lengths), sorted lengths (B,), the sorting order
            (B,) and its inverse (B,).
        """
        batch = tokens.shape[0]
        if conditioning is None or conditioning.shape != (batch, self.conditioning_dim):
            shape = None if conditioning is None else tuple(conditioning.shape)
            raise ValueError(f"conditioning must have shape ({batch}, {self.conditioning_dim}), got {shape}")
        order = torch.argsort(token_lengths, descending=True)
        restore = torch.argsort(order)
        lengths = token_lengths[order]
        embedded = self.tacotron.embedding(tokens[order, : int(lengths.max())]).transpose(1, 2)  # (B, E, L')
        memory = self.tacotron.encoder(embedded, lengths)  # (B, L', M)
        mask = lengths_to_mask(lengths.to(memory.device), memory.shape[1]).unsqueeze(-1)  # (B, L', 1)
        projected = self.conditioning_projection(conditioning[order]).unsqueeze(1)  # (B, 1, M)
        return memory + projected * mask.to(memory.dtype), lengths, order, restore

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
            tokens: (B, L) token ids; token_lengths: (B,).
            mels: (B, T, n_mels) target log-mels; mel_lengths: (B,).
            conditioning: (B, C).

        Returns:
            :class:`TacotronOutput`: mel and mel_post (B, T, n_mels), zero past each length;
            stop_logits (B, T); alignments (B, T, L).
        """
        if mels.dim() != 3 or mels.shape[-1] != self.n_mels:
            raise ValueError(f"mels must have shape (B, T, {self.n_mels}), got {tuple(mels.shape)}")
        memory, lengths, order, restore = self._sorted_memory(tokens, token_lengths, conditioning)
        mel, gate, alignments = self.tacotron.decoder(
            memory, mels[order].transpose(1, 2), memory_lengths=lengths
        )  # (B, n_mels, T), (B, T), (B, T, L')
        mel_post = mel + self.tacotron.postnet(mel)
        valid = lengths_to_mask(mel_lengths, mels.shape[1]).unsqueeze(-1)  # (B, T, 1), original order
        mel = mel.transpose(1, 2)[restore] * valid  # (B, T, n_mels)
        mel_post = mel_post.transpose(1, 2)[restore] * valid
        alignments = alignments[restore]
        pad = tokens.shape[1] - alignments.shape[2]
        if pad:  # the encoder returns max(token_lengths) positions; give back the input's L
            alignments = nn.functional.pad(alignments, (0, pad))
        return TacotronOutput(mel=mel, mel_post=mel_post, stop_logits=gate[restore], alignments=alignments)

    @torch.no_grad()
    def infer(
        self,
        tokens: Tensor,
        token_lengths: Tensor,
        conditioning: Tensor | None = None,
        *,
        max_steps: int = 1000,
        stop_threshold: float = 0.5,
        min_steps_per_token: float = 0.0,
        reduced_precision: torch.dtype | None = None,
    ) -> TacotronInference:
        """Free-running synthesis; stops per item when sigmoid(stop) > ``stop_threshold`` or at ``max_steps``.

        ``reduced_precision`` must be None: bf16 / int8 decoding is built into our Tacotron 2 only.

        ``min_steps_per_token`` is accepted for interface compatibility; torchaudio's decoder has no
        minimum-length guard, so only 0 is allowed.

        Returns:
            :class:`TacotronInference`: mel_post (B, T, n_mels), mel_lengths (B,), alignments (B, T, L),
            stop_probs (B, T).
        """
        if reduced_precision is not None:
            raise ValueError(
                "reduced-precision decoding (bf16, int8) is built into backbone.kind tacotron2 only; "
                "this model's backbone is torchaudio's: use fp32"
            )
        if min_steps_per_token:
            raise ValueError("torchaudio's decoder has no minimum length: min_steps_per_token must be 0")
        memory, lengths, _, restore = self._sorted_memory(tokens, token_lengths, conditioning)
        # torchaudio reads the step limit and threshold from the decoder; a shallow copy (parameters
        # shared) carries this call's values without changing the module's state.
        decoder = copy.copy(self.tacotron.decoder)
        decoder.decoder_max_step = min(max_steps, self.tacotron.decoder.decoder_max_step)
        decoder.gate_threshold = stop_threshold
        mel, mel_lengths, gate, alignments = decoder.infer(memory, lengths)  # (B, n_mels, T), ...
        mel_post = (mel + self.tacotron.postnet(mel)).transpose(1, 2)[restore]  # (B, T, n_mels)
        mel_lengths = mel_lengths.long()[restore]
        mel_post = mel_post * lengths_to_mask(mel_lengths, mel_post.shape[1]).unsqueeze(-1)
        # torchaudio's decoder.infer concatenates the (B, L) weights along dim 0 and then transposes,
        # giving (L, T * B); its Tacotron2.infer undoes that with this unfold, as we do: -> (B, T, L).
        batch = tokens.shape[0]
        alignments = alignments.unfold(1, batch, batch).transpose(0, 2)[restore]
        pad = tokens.shape[1] - alignments.shape[2]
        if pad:
            alignments = nn.functional.pad(alignments, (0, pad))
        return TacotronInference(
            mel_post=mel_post,
            mel_lengths=mel_lengths,
            alignments=alignments,
            stop_probs=torch.sigmoid(gate[restore]),
        )
