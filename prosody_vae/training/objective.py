"""One training forward: the model plus its capacity objective, returning every loss part by name.

Units. The Capacitron Lagrangian is computed in nats per utterance: the L1 terms are summed over
frames and mel bins (unit-scale Laplace negative log-likelihoods, see :mod:`prosody_vae.prosody.likelihood`) and
the KL is summed over latent dimensions, both averaged over the batch. Every logged number is in
those units, so the realised KL can be read against C directly. A decoder that predicts pitch adds the
log-F0 and voicing likelihoods (:mod:`prosody_vae.tts.pitch`) to the reconstruction term, in the same
units: C then counts information about everything the decoder reconstructs, pitch included.

What the optimiser sees. The theta loss handed to the optimiser is that Lagrangian divided by the
number of mel elements per utterance in the batch (``n_mels * mean(T)``), plus the mean-reduced
auxiliaries (stop-token BCE, guided attention). This is the reference implementation's
normalisation: dividing the Lagrangian by a positive number does not move its constrained optimum,
it only rescales the step, and without it the auxiliary terms would be drowned by a loss in the
thousands of nats. The multiplier's own loss ``-beta * (KL - C)`` stays in nats, so the beta learning
rate has one meaning whatever the utterance length.

A hierarchical model (``prosody.hierarchical``, docs/hierarchical.md) has two rates, each held at its
own capacity with its own multiplier (:class:`~prosody_vae.prosody.capacity.MultiCapacityObjective`,
terms ``"high"`` at ``capacity.high_capacity`` and ``"low"`` at ``capacity.capacity``): ``kl`` and
``beta`` are then the low-level set's (z_p, which the decoder reads), ``kl_high`` and ``beta_high`` the
high-level set's (z_s); both are 0 for a flat model.

The wrapper is an ``nn.Module`` that owns both the model and the objective, so that
DistributedDataParallel averages the gradient of ``beta_raw`` across ranks along with theta's:
every rank then applies the same multiplier update and beta stays identical everywhere.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from prosody_vae.data.dataset import Batch
from prosody_vae.prosody.capacity import CapacityObjective, MultiCapacityObjective
from prosody_vae.prosody.likelihood import masked_l1
from prosody_vae.tts.backbones.auxiliary_losses import guided_attention_loss, stop_loss
from prosody_vae.tts.model import ProsodyTTS, ProsodyTTSOutput
from prosody_vae.tts.pitch import pitch_nll

__all__ = ["LossParts", "TrainingModule"]


class LossParts(NamedTuple):
    loss: Tensor  # what the main optimiser minimises (normalised, beta detached)
    beta_loss: Tensor  # what the multiplier's optimiser minimises (KL detached), nats
    lagrangian: Tensor  # reconstruction + beta * (KL - C), nats per utterance
    decoder_l1: Tensor  # nats per utterance
    postnet_l1: Tensor  # nats per utterance
    pitch: Tensor  # log-F0 + voicing NLL, nats per utterance; 0 for a decoder without pitch
    kl: Tensor  # nats per utterance; a hierarchical model's low-level rate R_p
    beta: Tensor  # the multiplier of kl
    kl_high: Tensor  # a hierarchical model's high-level rate R_s, nats per utterance; 0 for a flat model
    beta_high: Tensor  # its multiplier; 0 for a flat model
    stop: Tensor
    guided_attention: Tensor
    voice_adversary: Tensor  # the voice classifier's cross-entropy on z, nats per utterance; 0 without one
    contour: Tensor  # the contour-statistics head's NLL given z, nats per utterance; 0 without one
    utterance_length: Tensor  # the length model's squared error of log frames; 0 without one
    spoken_length: Tensor  # the spoken-length head's squared error of the log text term; 0 without one
    normalizer: Tensor  # n_mels * mean frames


class TrainingModule(nn.Module):
    """Model + capacity objective + auxiliary loss weights: ``forward(batch) -> LossParts``."""

    def __init__(
        self,
        *,
        model: ProsodyTTS,
        objective: CapacityObjective | MultiCapacityObjective,
        stop_weight: float = 1.0,
        stop_pos_weight: float = 5.0,
        guided_attention_weight: float = 1.0,
        guided_attention_sigma: float = 0.2,
        pitch_scale: float = 0.05,
        voice_adversary_weight: float = 0.0,
        contour_weight: float = 0.0,
    ):
        super().__init__()
        if model.hierarchical != isinstance(objective, MultiCapacityObjective):
            raise ValueError(
                "a hierarchical model needs a MultiCapacityObjective with terms 'high' and 'low', "
                f"a flat one a CapacityObjective; got {type(objective).__name__}"
            )
        self.model = model
        self.objective = objective
        self.stop_weight = stop_weight
        self.stop_pos_weight = stop_pos_weight
        self.guided_attention_weight = guided_attention_weight
        self.guided_attention_sigma = guided_attention_sigma
        self.pitch_scale = pitch_scale
        self.voice_adversary_weight = voice_adversary_weight
        self.contour_weight = contour_weight

    def forward(
        self,
        batch: Batch,
        *,
        use_guided_attention: bool = True,
        normalizer: Tensor | None = None,
        mean_decoder_steps: Tensor | None = None,
        prior_context: Tensor | None = None,
    ) -> tuple[LossParts, ProsodyTTSOutput]:
        """Teacher-forced pass over a batch.

        Args:
            normalizer: overrides ``n_mels * mean(T)``; DDP passes the global one.
            mean_decoder_steps: the global mean of decoder steps per item, under DDP. The guided
                attention loss is a mean over the batch's decoder steps; rescaled to the global count,
                the ranks' average is the single-process loss (per-rank means would weight a rank
                with short items more).
            prior_context: (B, D) the associative prior's context (a neighbour's code), else None.
        """
        speakers = batch.speakers if self.model.speaker_embedding is not None else None
        output = self.model(
            batch.tokens,
            batch.token_lengths,
            batch.mels,
            batch.mel_lengths,
            speakers=speakers,
            prior_context=prior_context,
            f0=batch.f0,  # read only by a model with prosody.reference_pitch
            partner=batch.partner,  # read only in training, by a model with prosody.paired_reference
        )
        taco = output.tacotron
        decoder_l1 = masked_l1(taco.mel, batch.mels, batch.mel_lengths).mean()
        postnet_l1 = masked_l1(taco.mel_post, batch.mels, batch.mel_lengths).mean()
        pitch = taco.mel.new_zeros(())
        if taco.pitch is not None:
            if batch.f0 is None:
                raise ValueError(
                    "this model predicts pitch (backbone.pitch) but the batch has no F0 track: "
                    "extract features with F0 (prosody-vae prepare)"
                )
            terms = pitch_nll(taco.pitch, batch.f0, batch.mel_lengths, scale=self.pitch_scale)
            pitch = (terms.log_f0 + terms.voicing).mean()
        # Both outputs are Laplace decoders of the same target; the objective sees their sum, as in
        # Tacotron 2 training. The constraint on the KL does not depend on this choice: beta absorbs it.
        reconstruction = decoder_l1 + postnet_l1 + pitch
        zero = reconstruction.new_zeros(())
        if isinstance(self.objective, MultiCapacityObjective):
            rates = {"high": output.prosody.kl_s.mean(), "low": output.prosody.kl_p.mean()}
            both = self.objective(reconstruction, rates)
            capacity_loss, beta_loss = both.loss, both.beta_loss
            kl, beta = both.kl["low"], both.beta["low"]
            kl_high, beta_high = both.kl["high"], both.beta["high"]
        else:
            capacity = self.objective(reconstruction, output.prosody.kl.mean())
            capacity_loss, beta_loss = capacity.loss, capacity.beta_loss
            kl, beta, kl_high, beta_high = capacity.kl, capacity.beta, zero, zero
        stop = stop_loss(taco.stop_logits, batch.mel_lengths, pos_weight=self.stop_pos_weight)
        if use_guided_attention and self.guided_attention_weight > 0:
            decoder_lengths = self.model.backbone.decoder_lengths(batch.mel_lengths)
            guided = guided_attention_loss(
                taco.alignments, batch.token_lengths, decoder_lengths, sigma=self.guided_attention_sigma
            )
            if mean_decoder_steps is not None:
                guided = guided * decoder_lengths.float().mean() / mean_decoder_steps
        else:
            guided = taco.mel.new_zeros(())
        if normalizer is None:
            normalizer = batch.mel_lengths.float().mean() * batch.mels.shape[-1]
        adversary = zero
        if self.model.voice_adversary is not None and batch.speakers is not None:
            # the classifier learns to name the voice from z; its reversed gradient makes z forget it
            adversary = self.model.voice_adversary(output.prosody.mean, batch.speakers).mean()
        contour = zero
        if self.model.contour_head is not None and batch.f0 is not None:
            # what z says of the utterance's F0 spread and peak, and its rate (tts/contour_statistics.py)
            contour = self.model.contour_head.nll(
                output.prosody.z, batch.f0, batch.mel_lengths, batch.token_lengths
            ).mean()
        length = zero
        if self.model.utterance_length is not None:
            # the length model learns from the posterior mean, detached: it changes nothing else
            # (tts/utterance_length.py)
            conditioning = self.model.conditioning(output.prosody.mean, speakers)
            length = self.model.utterance_length.loss(
                batch.tokens, batch.token_lengths, conditioning, batch.mel_lengths
            ).mean()
        spoken = zero
        if self.model.spoken_length is not None and self.model.utterance_length is not None:
            # the text term of each item's own transcript, read from its mel alone; both detached
            # (tts/spoken_length.py)
            text_term = self.model.utterance_length.text_term(batch.tokens, batch.token_lengths)
            spoken = self.model.spoken_length.loss(batch.mels, batch.mel_lengths, text_term).mean()
        loss = (
            capacity_loss / normalizer
            + self.stop_weight * stop
            + self.guided_attention_weight * guided
            + self.voice_adversary_weight * adversary
            + self.contour_weight * contour
            + length
            + spoken
        )
        parts = LossParts(
            loss=loss,
            beta_loss=beta_loss,
            lagrangian=capacity_loss.detach(),
            decoder_l1=decoder_l1.detach(),
            postnet_l1=postnet_l1.detach(),
            pitch=pitch.detach(),
            kl=kl.detach(),
            beta=beta.detach(),
            kl_high=kl_high.detach(),
            beta_high=beta_high.detach(),
            stop=stop.detach(),
            guided_attention=guided.detach(),
            voice_adversary=adversary.detach(),
            contour=contour.detach(),
            utterance_length=length.detach(),
            spoken_length=spoken.detach(),
            normalizer=normalizer.detach(),
        )
        return parts, output
