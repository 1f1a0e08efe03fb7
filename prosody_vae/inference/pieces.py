"""Bounded synthesis: long texts spoken in pieces, and an absolute cap on decoder steps.

Autoregressive decoding of one long input costs memory in decoder steps times tokens (the attention)
and does not stop reliably on inputs much longer than the training sentences. So
:meth:`~prosody_vae.inference.synthesizer.Synthesizer.synthesize` splits a text longer than
:data:`MAX_PIECE_CHARACTERS` at sentence ends (:func:`prosody_vae.text.sentences.split_text`), decodes
the pieces :data:`PIECES_PER_BATCH` at a time with the same z, and joins each text's pieces with
:data:`PAUSE_SECONDS` of silence. Memory is then bounded by one batch of pieces, and time grows
linearly with the text. Every piece's decoder stops after :data:`MAX_DECODER_SECONDS` of audio at
most, whatever the text: an absolute guard, not one that grows with the input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from prosody_vae.config import AudioConfig
from prosody_vae.text.sentences import split_text

__all__ = [
    "MAX_DECODER_SECONDS",
    "MAX_PIECE_CHARACTERS",
    "PAUSE_SECONDS",
    "PIECES_PER_BATCH",
    "decoder_step_cap",
    "join_pieces",
    "split_pieces",
]

# A text longer than this is spoken in pieces cut at sentence ends. The built-in corpus's sentences
# have 4-12 words (under 100 characters); LJSpeech's longest are about 190.
MAX_PIECE_CHARACTERS = 200
# The decoder stops a piece after this much audio even when its stop token never fires (about three
# times what 200 characters take to say).
MAX_DECODER_SECONDS = 40.0
# Silence between the pieces of one text: a sentence pause.
PAUSE_SECONDS = 0.3
# Pieces decoded together in one batch (memory: this many pieces' attention at once).
PIECES_PER_BATCH = 16


def decoder_step_cap(audio: AudioConfig, r: int) -> int:
    """Decoder steps of :data:`MAX_DECODER_SECONDS` of audio, ``r`` frames per step."""
    return int(MAX_DECODER_SECONDS * audio.sample_rate / audio.hop_length) // r


def split_pieces(texts: Sequence[str]) -> tuple[list[str], list[int]]:
    """All texts' pieces in order, and for each piece the index of the text it belongs to."""
    pieces, owners = [], []
    for index, text in enumerate(texts):
        for piece in split_text(text, MAX_PIECE_CHARACTERS):
            pieces.append(piece)
            owners.append(index)
    return pieces, owners


def join_pieces(pieces: list, owners: list[int], count: int, *, pause_frames: int, floor: float) -> list:
    """One synthesis per text from its pieces' (a :class:`Synthesis` each, in order).

    A text of one piece keeps it as it is. Otherwise the mels are joined with ``pause_frames`` frames
    of silence (log-mel ``floor``) between them, the F0 tracks likewise with unvoiced frames (0), so
    that F0 stays aligned with the mel frame for frame; the alignments are stacked along decoder steps
    (each over its own tokens, padded to the longest piece's); ``stopped`` holds when every piece
    stopped.
    """
    joined = []
    for index in range(count):
        own = [piece for piece, owner in zip(pieces, owners, strict=True) if owner == index]
        if len(own) == 1:
            joined.append(own[0])
            continue
        first = own[0]
        n_mels = first.mel.shape[-1]
        pause = first.mel.new_full((pause_frames, n_mels), floor)
        mels = [part for piece in own for part in (pause, piece.mel)][1:]
        f0 = None
        if all(piece.f0 is not None for piece in own):
            gap = first.f0.new_zeros(pause_frames)
            f0 = torch.cat([part for piece in own for part in (gap, piece.f0)][1:])
        tokens = max(piece.alignment.shape[-1] for piece in own)
        alignment = torch.cat(
            [F.pad(piece.alignment, (0, tokens - piece.alignment.shape[-1])) for piece in own]
        )
        joined.append(
            dataclasses.replace(
                first,
                mel=torch.cat(mels),
                alignment=alignment,
                stopped=all(piece.stopped for piece in own),
                f0=f0,
            )
        )
    return joined
