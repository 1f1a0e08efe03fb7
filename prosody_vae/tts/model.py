"""ProsodyTTS: a Tacotron-style backbone conditioned on a Capacitron prosody embedding.

The composer owns no learning logic of its own: the backbone turns text + a conditioning vector into
mels, the :class:`~prosody_vae.prosody.vae.CapacitronVAE` turns a reference mel into z, and an optional
speaker table adds a speaker vector. The conditioning vector is always ``[z, speaker]`` in that order,
in training and at inference alike (the reference implementation orders them differently in the two).

**Speakers (Capacitron's V+T+S).** A multi-speaker model reads a speaker in two places, from the one
speaker table: the decoder reads the *target* voice, the voice to speak in; the posterior
q(z | x, text, speaker) reads the voice that *spoke the reference* x. In training the two are the
same utterance's speaker. At inter-speaker transfer they differ, and we follow the form of the true
posterior p(z | x, y_T, y_S), which the paper (Battenberg et al. 2019, arXiv 1906.03402) has the
variational posterior match: y_S there is the voice of x. Told the reference's voice, the posterior
need not spend capacity on what that voice explains (its pitch level and range, its timbre), so z
holds the prosody *relative to that voice*, and the decoder renders it within the target voice's own
range: a low reference for its voice gives a low output for the target voice. This is how the paper
reports V+T+S behaving at inter-speaker transfer (the target speaker's identity kept, the prosody
transferred). Given the target voice instead (what Coqui's implementation does, having one speaker
id at inference), the posterior reads the reference as if the target voice had spoken it: a
naturally high voice reads as "very high for the target voice", and its absolute pitch carries over.

A reference from a voice outside the speaker table has no id (:data:`UNKNOWN_SPEAKER`). A model
trained with ``prosody.speaker_dropout`` has a learned unknown-speaker vector for it (the posterior
is denied the speaker for that share of training items, while the decoder always hears it, so z must
still carry the prosody relative to the voice, judged from the audio alone). A model trained without
it has no such vector; :class:`~prosody_vae.inference.synthesizer.Synthesizer` then gives the
posterior the target voice, as before (see ``Synthesizer.transfer``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from prosody_vae.config import ExperimentConfig
from prosody_vae.data.dataset import PartnerBatch
from prosody_vae.prosody.hierarchical import HierarchicalCapacitronVAE, HierarchicalOutput
from prosody_vae.prosody.priors import AssociativePrior, Prior, StandardNormalPrior
from prosody_vae.prosody.reference_encoder import ReferenceEncoder
from prosody_vae.prosody.vae import CapacitronVAE, Posterior, ProsodyOutput
from prosody_vae.tts.backbones import Tacotron2, TacotronInference, TacotronOutput
from prosody_vae.tts.contour_statistics import ContourStatisticsHead
from prosody_vae.tts.paired_reference import Reference, choose_references
from prosody_vae.tts.reference_warp import ReferenceWarp
from prosody_vae.tts.spoken_length import SpokenLength
from prosody_vae.tts.utterance_length import UtteranceLength
from prosody_vae.tts.voice_adversary import VoiceAdversary
from prosody_vae.tts.voice_pitch import VoicePitch

__all__ = ["UNKNOWN_SPEAKER", "ProsodyTTS", "ProsodyTTSOutput", "build_model"]

# The speaker id of a reference whose voice is not in the speaker table (posterior input only).
UNKNOWN_SPEAKER = -1


class ProsodyTTSOutput(NamedTuple):
    tacotron: TacotronOutput
    prosody: ProsodyOutput | HierarchicalOutput  # the latter for a hierarchical model (z is z_p)


class ProsodyTTS(nn.Module):
    """Backbone + prosody module (+ speaker table).

    Args:
        backbone: a :class:`Tacotron2` (or a module with its interface, such as
            :class:`~prosody_vae.tts.backbones.torchaudio_tacotron2.TorchaudioTacotron2Backbone`) whose
            ``conditioning_dim`` equals ``prosody.latent_dim`` plus ``speaker_dim``.
        prosody: the prosody VAE, flat or hierarchical (:class:`HierarchicalCapacitronVAE`, whose z_p
            the decoder reads). If it has a text summary, it reads the backbone's token embeddings.
        n_speakers: size of the speaker table; 1 disables speaker conditioning.
        speaker_dim: speaker embedding size (0 when ``n_speakers == 1``).
        voice_adversary: a :class:`~prosody_vae.tts.voice_adversary.VoiceAdversary` that the training
            objective uses to remove the voice from z (``prosody.voice_adversary_weight``), or None.
        contour_head: a :class:`~prosody_vae.tts.contour_statistics.ContourStatisticsHead` that the
            training objective uses to make z carry the F0 contour (``prosody.contour_weight``), or None.
        latent_dropout: share of training items decoded from z = 0 (the standard prior's mean) instead
            of the posterior's z (``prosody.latent_dropout``). Why: the posterior sees the reference, so
            z comes to carry what the text already implies (a question's final rise is cheap in nats and
            large in the loss), and the decoder then reads it from z; at z = 0 it renders an average of
            questions and statements. Measured on the built-in corpus with its raised questions
            (docs/intonation.md): from the posterior's z a training question ends on its raised last
            word, from z = 0 the same sentence falls. Decoding a share of items from z = 0 teaches the
            decoder what the text alone implies there, as conditioning dropout does; the posterior and
            its KL are unchanged. Not in Capacitron.
        relative_reference_pitch: the posterior reads the reference's F0 relative to its voice's mean
            (``prosody.reference_pitch_relative``, :mod:`prosody_vae.tts.voice_pitch`); the model then
            keeps a table of the training voices' mean F0. Needs a multi-speaker model whose posterior
            reads F0.
        reference_warp: a :class:`~prosody_vae.tts.reference_warp.ReferenceWarp` applied in training
            to the mel the posterior reads (not to the decoder's target), or None
            (``prosody.reference_warp``).
        utterance_length: an :class:`~prosody_vae.tts.utterance_length.UtteranceLength` that predicts
            an utterance's length from its tokens and the conditioning, or None
            (``prosody.utterance_length``); synthesis resamples the decoder's output to its length.
        spoken_length: a :class:`~prosody_vae.tts.spoken_length.SpokenLength` that estimates the
            length model's text term of a reference from its mel alone, or None
            (``prosody.spoken_length``): a transfer without a transcript can then take the
            reference's pace. Needs ``utterance_length``.
        paired_reference: share of training items with a partner (the same voice and prosody on
            another sentence) whose posterior reads the partner instead of the item
            (``prosody.paired_reference``, :mod:`prosody_vae.tts.paired_reference`). Not in Capacitron.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        prosody: CapacitronVAE | HierarchicalCapacitronVAE,
        n_speakers: int = 1,
        speaker_dim: int = 0,
        voice_adversary: VoiceAdversary | None = None,
        latent_dropout: float = 0.0,
        relative_reference_pitch: bool = False,
        reference_warp: ReferenceWarp | None = None,
        contour_head: ContourStatisticsHead | None = None,
        utterance_length: UtteranceLength | None = None,
        spoken_length: SpokenLength | None = None,
        paired_reference: float = 0.0,
    ):
        super().__init__()
        if n_speakers < 1:
            raise ValueError(f"n_speakers must be >= 1, got {n_speakers}")
        self.backbone = backbone
        self.prosody = prosody
        self.speaker_embedding = nn.Embedding(n_speakers, speaker_dim) if speaker_dim > 0 else None
        self.uses_text_summary = prosody.uses_text
        self.voice_adversary = voice_adversary  # training only: see prosody_vae/tts/voice_adversary.py
        self.contour_head = contour_head  # training only: see prosody_vae/tts/contour_statistics.py
        if not 0.0 <= latent_dropout < 1.0:
            raise ValueError(f"latent_dropout must lie in [0, 1), got {latent_dropout}")
        self.latent_dropout = latent_dropout
        if relative_reference_pitch and (self.speaker_embedding is None or not prosody.reads_f0):
            raise ValueError("relative_reference_pitch needs a multi-speaker model whose posterior reads F0")
        self.voice_pitch = VoicePitch(n_speakers) if relative_reference_pitch else None
        self.reference_warp = reference_warp  # training only; the identity in eval mode
        self.utterance_length = utterance_length
        if spoken_length is not None and utterance_length is None:
            raise ValueError(
                "spoken_length estimates the length model's text term: it needs utterance_length"
            )
        self.spoken_length = spoken_length
        if not 0.0 <= paired_reference <= 1.0:
            raise ValueError(f"paired_reference must lie in [0, 1], got {paired_reference}")
        self.paired_reference = paired_reference

    def _speaker_vector(self, speakers: Tensor | None, batch: int) -> Tensor | None:
        """(B, P) vectors of speaker ids (B,) for the decoder; None for a single-speaker model."""
        if self.speaker_embedding is None:
            return None
        if speakers is None:
            raise ValueError("this model is multi-speaker: pass speaker ids")
        if speakers.shape != (batch,):
            raise ValueError(f"speakers must have shape ({batch},), got {tuple(speakers.shape)}")
        return self.speaker_embedding(speakers)

    def _reference_speaker(self, speakers: Tensor | None, batch: int) -> tuple[Tensor | None, Tensor | None]:
        """The posterior's speaker input of reference speaker ids (B,): vectors (B, P) and known (B,).

        ``UNKNOWN_SPEAKER`` ids (a voice outside the table) become the prosody module's learned
        unknown-speaker vector; a model without one refuses them.
        """
        if self.speaker_embedding is None or self.prosody.speaker_dim == 0:
            return None, None
        if speakers is None:
            raise ValueError("this model is multi-speaker: pass the reference's speaker ids")
        if speakers.shape != (batch,):
            raise ValueError(f"speakers must have shape ({batch},), got {tuple(speakers.shape)}")
        known = speakers != UNKNOWN_SPEAKER  # (B,)
        if not self.prosody.speaker_optional:
            # checked outside training only: training ids come from the speaker table (and the check
            # is a host sync per step)
            if not self.training and not bool(known.all()):
                raise ValueError(
                    "this model has no unknown-speaker vector (trained without prosody.speaker_dropout): "
                    "every reference needs a speaker id of the table"
                )
            return self.speaker_embedding(speakers), None
        vectors = self.speaker_embedding(torch.where(known, speakers, torch.zeros_like(speakers)))
        return vectors, known

    @property
    def hierarchical(self) -> bool:
        """Whether the prosody module has two latent sets (z_s over z_p, docs/hierarchical.md)."""
        return isinstance(self.prosody, HierarchicalCapacitronVAE)

    @property
    def reads_reference_f0(self) -> bool:
        """Whether the prosody posterior reads the reference's F0 (``prosody.reference_pitch``)."""
        return self.prosody.reads_f0

    @property
    def uses_associative_prior(self) -> bool:
        """Whether the prior is conditional, p(z | c) (the associative prior): its KL needs a context,
        and the training loop keeps its code bank."""
        return self.prosody.prior.needs_context

    def conditioning(self, z: Tensor, speakers: Tensor | None) -> Tensor:
        """The conditioning [z, speaker] (B, C) that the decoder and the length model read, of
        latents z (B, D) and target speaker ids (B,) (None for a single-speaker model)."""
        speaker = self._speaker_vector(speakers, z.shape[0])
        return z if speaker is None else torch.cat([z, speaker], dim=-1)

    def prosody_posterior(
        self,
        mels: Tensor,
        mel_lengths: Tensor,
        *,
        tokens: Tensor | None = None,
        token_lengths: Tensor | None = None,
        speakers: Tensor | None = None,
        f0: Tensor | None = None,
        voice_f0: Tensor | None = None,
    ) -> Posterior:
        """q(z | reference) of reference mels (B, T, n_mels): one pass of the prosody encoder, no KL.

        ``tokens`` (B, L) and ``token_lengths`` (B,) are the reference transcript, read iff the model
        has a text summary; a model trained with ``prosody.text_summary_dropout`` also takes None (no
        transcript) or ``token_lengths == 0`` for single items. ``speakers`` (B,) are the ids of the
        voices that spoke the references, needed iff the model is multi-speaker; ``UNKNOWN_SPEAKER``
        for a voice outside the table, if it was trained with ``prosody.speaker_dropout``. ``f0``
        (B, T) is the references' F0 in Hz on the mel frames, read iff :attr:`reads_reference_f0`
        (ignored otherwise, so a caller may always pass what it has). ``voice_f0`` (B,) is the mean F0
        in Hz of each reference's voice, <= 0 where unknown, read by a model whose posterior reads F0
        relative to the voice (:attr:`voice_pitch`; ignored otherwise): where not given, a training
        voice's own entry of the table, else the reference's own mean (:mod:`prosody_vae.tts.voice_pitch`).
        """
        speaker, known = self._reference_speaker(speakers, mels.shape[0])
        if self.reads_reference_f0 and f0 is None:
            raise ValueError(
                "this model's prosody posterior reads the reference's F0 (prosody.reference_pitch): pass f0"
            )
        if self.voice_pitch is not None and f0 is not None and speakers is not None:
            hz = self.voice_pitch.voice_hz(f0, mel_lengths, speakers, voice_f0)  # (B,)
            f0 = VoicePitch.relative(f0, hz)
        text = None
        if self.uses_text_summary:
            if tokens is None or token_lengths is None:
                if not self.prosody.text_optional:
                    raise ValueError(
                        "this model's prosody posterior reads the reference transcript: pass its tokens"
                    )
                token_lengths = None
            else:
                text = self.backbone.embed_tokens(tokens)
        # q(z_p | x, ...) of a hierarchical model: the posterior of what the decoder reads
        encoder = self.prosody.low_posterior if self.hierarchical else self.prosody.posterior_of
        return encoder(
            mels,
            mel_lengths,
            text=text,
            text_lengths=token_lengths if text is not None else None,
            speaker=speaker,
            speaker_known=known,
            f0=f0 if self.reads_reference_f0 else None,
        )

    @torch.no_grad()
    def posterior_means(
        self,
        mels: Tensor,
        mel_lengths: Tensor,
        *,
        tokens: Tensor | None = None,
        token_lengths: Tensor | None = None,
        speakers: Tensor | None = None,
        f0: Tensor | None = None,
        voice_f0: Tensor | None = None,
    ) -> Tensor:
        """Posterior means (B, D) of reference mels (B, T, n_mels), e.g. the codes of the ACN bank.

        Works with any prior and needs no code bank (no KL is computed). Call in eval mode for the
        codes of the trained model: in training mode batch normalisation uses (and updates) batch
        statistics.
        """
        return self.prosody_posterior(
            mels,
            mel_lengths,
            tokens=tokens,
            token_lengths=token_lengths,
            speakers=speakers,
            f0=f0,
            voice_f0=voice_f0,
        ).mean

    def encode_prosody(
        self,
        mels: Tensor,
        mel_lengths: Tensor,
        *,
        tokens: Tensor | None = None,
        token_lengths: Tensor | None = None,
        speakers: Tensor | None = None,
        f0: Tensor | None = None,
        voice_f0: Tensor | None = None,
        sample: bool | None = None,
        prior_context: Tensor | None = None,
    ) -> ProsodyOutput | HierarchicalOutput:
        """Posterior, KL and z of reference mels (B, T, n_mels), with one pass of the prosody encoder.

        A hierarchical model returns a :class:`HierarchicalOutput` (z = z_p, z_s, both rates) and
        takes no ``prior_context``.

        Inputs as for :meth:`prosody_posterior`. A prior that needs a context (the associative prior)
        takes ``prior_context`` (B, D) for its KL. Training passes the code of a random one of each
        item's K nearest training neighbours (never the item itself), and must pass it. In eval mode
        it may be left out: the prior's :meth:`~prosody_vae.prosody.priors.base.Prior.held_out_context`
        of each posterior mean is then used (for the associative prior, the nearest training code:
        ACN's prior for data outside the training set, e.g. validation, transfer and evaluation).
        """
        posterior = self.prosody_posterior(
            mels,
            mel_lengths,
            tokens=tokens,
            token_lengths=token_lengths,
            speakers=speakers,
            f0=f0,
            voice_f0=voice_f0,
        )
        if self.hierarchical:
            if prior_context is not None:
                raise ValueError("a hierarchical prosody module takes no prior_context")
            return self.prosody.output_of(self.prosody.hierarchy_of(posterior, sample=sample))
        prior = self.prosody.prior
        if prior_context is None:
            if self.training and prior.needs_context:
                raise ValueError(
                    f"training with the {type(prior).__name__} needs prior_context (B, D), "
                    "a neighbour's code: see AssociativePrior.training_context"
                )
            prior_context = prior.held_out_context(posterior.mean)
        divergence = self.prosody.kl(posterior, prior_context)
        return ProsodyOutput(
            z=self.prosody.latent(posterior, sample=sample),
            mean=posterior.mean,
            std=posterior.std,
            kl=divergence.kl,
            kl_per_dim=divergence.kl_per_dim,
        )

    def forward(
        self,
        tokens: Tensor,
        token_lengths: Tensor,
        mels: Tensor,
        mel_lengths: Tensor,
        speakers: Tensor | None = None,
        prior_context: Tensor | None = None,
        f0: Tensor | None = None,
        partner: PartnerBatch | None = None,
    ) -> ProsodyTTSOutput:
        """Teacher-forced pass: z from the target mel itself (B, T, n_mels), then the decoder.

        The reference is the target, so ``speakers`` (B,) is both the posterior's speaker and the
        decoder's, and ``f0`` (B, T), the target's F0 in Hz, what a model with
        ``prosody.reference_pitch`` reads. In training, a model with :attr:`paired_reference` > 0
        reads, for that share of the items whose ``partner`` is available, the partner instead
        (same voice; :mod:`prosody_vae.tts.paired_reference`).
        """
        reference = Reference(mels, mel_lengths, tokens, token_lengths, f0)
        if self.training and self.paired_reference > 0 and partner is not None:
            swap = torch.rand(mels.shape[0], device=mels.device) < self.paired_reference  # (B,)
            reference = choose_references(reference, partner, swap & partner.available)
        reference_mels = reference.mels
        if self.reference_warp is not None:
            reference_mels = self.reference_warp(reference_mels)
        prosody = self.encode_prosody(
            reference_mels,
            reference.mel_lengths,
            tokens=reference.tokens,
            token_lengths=reference.token_lengths,
            speakers=speakers,
            f0=reference.f0,
            prior_context=prior_context,
        )
        z = prosody.z
        if self.training and self.latent_dropout > 0:
            keep = torch.rand(z.shape[0], 1, device=z.device) >= self.latent_dropout  # (B, 1)
            z = z * keep.to(z.dtype)  # dropped items decode from the prior mean
        conditioning = self.conditioning(z, speakers)
        tacotron = self.backbone(tokens, token_lengths, mels, mel_lengths, conditioning=conditioning)
        return ProsodyTTSOutput(tacotron=tacotron, prosody=prosody)

    @torch.no_grad()
    def predicted_frames(
        self, tokens: Tensor, token_lengths: Tensor, z: Tensor, *, speakers: Tensor | None = None
    ) -> Tensor | None:
        """The length model's length in frames (B,) of tokens (B, L) spoken with latents z (B, D) in
        voices ``speakers`` (B,); None for a model without one (``prosody.utterance_length``)."""
        if self.utterance_length is None:
            return None
        conditioning = self.conditioning(z, speakers)
        return torch.exp(self.utterance_length(tokens, token_lengths, conditioning))

    @torch.no_grad()
    def spoken_frames(
        self, mels: Tensor, mel_lengths: Tensor, z: Tensor, *, speakers: Tensor | None = None
    ) -> Tensor | None:
        """The length model's length in frames (B,) of what log-mels (B, T, M) with lengths (B,)
        speak, spoken with latents z (B, D) in voices ``speakers`` (B,): :meth:`predicted_frames`
        with the transcript's text term estimated from the mel (``prosody.spoken_length``); None for
        a model without the estimate."""
        if self.spoken_length is None or self.utterance_length is None:
            return None
        conditioning = self.conditioning(z, speakers)
        return torch.exp(
            self.spoken_length(mels, mel_lengths) + self.utterance_length.rate_term(conditioning)
        )

    @torch.no_grad()
    def infer(
        self,
        tokens: Tensor,
        token_lengths: Tensor,
        z: Tensor,
        *,
        speakers: Tensor | None = None,
        max_steps: int = 1000,
        reduced_precision: torch.dtype | None = None,
    ) -> TacotronInference:
        """Free-running synthesis of tokens (B, L) with given prosody latents z (B, D).

        ``speakers`` (B,) are the target voices (ids in the table; multi-speaker models only).
        ``reduced_precision`` (None, ``torch.bfloat16`` or ``torch.qint8``) runs the decoder's LSTM
        cells on reduced-precision copies of their weights (:mod:`prosody_vae.tts.backbones.reduced_precision`).
        """
        if z.dim() != 2 or z.shape[0] != tokens.shape[0]:
            raise ValueError(f"z must have shape ({tokens.shape[0]}, D), got {tuple(z.shape)}")
        conditioning = self.conditioning(z, speakers)
        return self.backbone.infer(
            tokens,
            token_lengths,
            conditioning=conditioning,
            max_steps=max_steps,
            reduced_precision=reduced_precision,
        )


def build_model(config: ExperimentConfig, *, n_symbols: int, n_speakers: int = 1) -> ProsodyTTS:
    """The one factory that turns an :class:`ExperimentConfig` into modules."""
    pc, bc = config.prosody, config.backbone
    speaker_dim = pc.speaker_dim if n_speakers > 1 else 0
    prior: Prior
    if pc.prior == "associative":
        prior = AssociativePrior(
            latent_dim=pc.latent_dim, k_neighbours=pc.acn_neighbours, refresh_every=pc.acn_refresh_every
        )
    else:
        prior = StandardNormalPrior(pc.latent_dim)
    reference_encoder = ReferenceEncoder(
        n_mels=config.audio.n_mels, channels=tuple(pc.ref_channels), rnn_size=pc.ref_rnn_size
    )
    encoder = CapacitronVAE(
        n_mels=config.audio.n_mels,
        latent_dim=pc.latent_dim,
        reference_encoder=reference_encoder,
        text_embedding_dim=bc.embedding_dim if pc.text_summary else 0,
        text_summary_dim=pc.text_summary_dim,
        speaker_dim=speaker_dim,
        prior=prior,
        text_dropout=pc.text_summary_dropout if pc.text_summary else 0.0,
        speaker_dropout=pc.speaker_dropout if speaker_dim > 0 else 0.0,
        reference_pitch=pc.reference_pitch,
    )
    prosody: CapacitronVAE | HierarchicalCapacitronVAE = encoder
    if pc.hierarchical:  # the flat module becomes q(z_p | x, text, speaker) under a high-level z_s
        prosody = HierarchicalCapacitronVAE(
            encoder, high_latent_dim=pc.high_latent_dim, hierarchy_hidden_dim=pc.hierarchy_hidden_dim
        )
    # the sizes both backbones share; r and the attention kind are ours only (torchaudio: r = 1, location)
    sizes = dict(
        n_symbols=n_symbols,
        n_mels=config.audio.n_mels,
        conditioning_dim=pc.latent_dim + speaker_dim,
        embedding_dim=bc.embedding_dim,
        encoder_dim=bc.encoder_dim,
        attention_dim=bc.attention_dim,
        attention_rnn_dim=bc.attention_rnn_dim,
        decoder_dim=bc.decoder_dim,
        prenet_dim=bc.prenet_dim,
        postnet_dim=bc.postnet_dim,
        postnet_n_convs=bc.postnet_n_convs,
    )
    if bc.kind == "torchaudio_tacotron2":
        from prosody_vae.tts.backbones.torchaudio_tacotron2 import TorchaudioTacotron2Backbone

        backbone: nn.Module = TorchaudioTacotron2Backbone(**sizes)
    else:
        backbone = Tacotron2(
            **sizes,
            r=bc.r,
            attention=bc.attention,
            pitch=bc.pitch,
            pitch_init_hz=bc.pitch_init_hz,
            pitch_refiner_dim=bc.pitch_refiner_dim,
            pitch_input=bc.pitch_input,
            pitch_refiner_position=bc.pitch_refiner_position,
            pitch_contour=bc.pitch_contour,
        )
    adversary = None
    if pc.voice_adversary_weight > 0 and n_speakers > 1:
        adversary = VoiceAdversary(latent_dim=pc.latent_dim, n_speakers=n_speakers)
    return ProsodyTTS(
        backbone=backbone,
        prosody=prosody,
        n_speakers=n_speakers,
        speaker_dim=speaker_dim,
        voice_adversary=adversary,
        contour_head=(
            ContourStatisticsHead(latent_dim=pc.latent_dim, rate=pc.contour_rate)
            if pc.contour_weight > 0
            else None
        ),
        latent_dropout=pc.latent_dropout,
        relative_reference_pitch=pc.reference_pitch_relative and speaker_dim > 0,
        reference_warp=ReferenceWarp(
            n_mels=config.audio.n_mels,
            f_min=config.audio.f_min,
            f_max=config.audio.f_max,
            max_warp=pc.reference_warp,
        )
        if pc.reference_warp > 0
        else None,
        utterance_length=(
            UtteranceLength(n_symbols=n_symbols, conditioning_dim=pc.latent_dim + speaker_dim)
            if pc.utterance_length
            else None
        ),
        spoken_length=SpokenLength(n_mels=config.audio.n_mels) if pc.spoken_length else None,
        paired_reference=pc.paired_reference,
    )
