"""Validation of the vocoder: whole held-out utterances vocoded, their mel L1, and one clip to hear.

As in the release, the score is the mel L1 between the real and the generated audio of whole
validation utterances, on the loss's mel front end (``train.valid_items`` of them, one at a time so
that no padding enters). The first one's generated audio goes to TensorBoard (``valid/generated``)
at every validation, its recording (``valid/reference``) with the first.
"""

from __future__ import annotations

import torch

from prosody_vae.vocoder.data import Skipped
from prosody_vae.vocoder.state import VocoderState

__all__ = ["validate_vocoder"]


@torch.no_grad()
def validate_vocoder(state: VocoderState) -> dict[str, float]:
    """Mean mel L1 over the validation utterances; logs the scalars and the first clip's audio."""
    generator = state.generator
    generator.eval()
    losses = []
    sample_rate = state.config.audio.sample_rate
    for index in range(len(state.valid_set)):
        item = state.valid_set[(index, 0)]
        if isinstance(item, Skipped):
            _report(state, item)
            continue
        audio = item["audio"].to(state.device)  # (N,), zero-padded to whole frames
        fake = generator(item["mel"].unsqueeze(0).to(state.device))[0]  # (N,)
        real_mel = state.loss_mel(audio)  # (T, n_mels)
        fake_mel = state.loss_mel(fake[: audio.shape[0]])
        losses.append(float(torch.nn.functional.l1_loss(fake_mel, real_mel)))
        if len(losses) == 1:
            state.monitor.log_audio("valid/generated", fake, state.step, sample_rate)
            if not state.last_valid:  # the first validation of this session
                state.monitor.log_audio("valid/reference", audio, state.step, sample_rate)
    generator.train()
    scalars = {"valid/mel_l1": sum(losses) / len(losses)} if losses else {}
    if scalars:
        state.monitor.log_valid(state.step, scalars)
    return scalars


def _report(state: VocoderState, item: Skipped) -> None:
    if item.id not in state.skipped:
        state.skipped[item.id] = item.reason
        state.monitor.log_skipped(state.step, item.id, item.reason)
