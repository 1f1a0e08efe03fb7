"""Partner utterances: the same voice and prosody settings spoken on another sentence.

A corpus built with ``texts_per_setting`` > 1 (:mod:`prosody_vae.data.espeak.plan`) labels each
utterance with ``setting_group``: the utterances of one group were synthesised with one draw of voice
and prosody factors and differ only in their text. Paired-reference training
(``prosody.paired_reference``, :mod:`prosody_vae.tts.paired_reference`) lets the posterior read one of
them while the decoder speaks another. Any corpus can take part: give utterances recorded with the
same intended prosody (a speaker reading a list of sentences in one style, say) a shared
``setting_group`` label in the manifest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from prosody_vae.data.manifest import Utterance

__all__ = ["GROUP_LABEL", "partner_indices"]

GROUP_LABEL = "setting_group"
# Drawn factors of the built-in corpus that a group shares; part of the key, so that groups of two
# merged corpora that happen to share a group number and a voice are not joined.
_SHARED_FACTORS = ("pitch", "pitch_range", "rate", "contour")


def _group_key(utterance: Utterance) -> tuple | None:
    labels = utterance.labels
    if GROUP_LABEL not in labels:
        return None
    factors = tuple(labels.get(name) for name in _SHARED_FACTORS)
    return (utterance.speaker, labels[GROUP_LABEL], factors)


def partner_indices(utterances: Sequence[Utterance]) -> list[int]:
    """For each utterance, the index of its partner in ``utterances``, or -1 if it has none.

    The partner is the next member of the utterance's group (in list order, cyclically), so each
    member of a pair reads the other and the choice is the same in every epoch and on resume. Members
    of a group left out of ``utterances`` (another split, a failed item) simply do not count: an
    utterance whose group has no other member here has no partner.
    """
    members: dict[tuple, list[int]] = defaultdict(list)
    for index, utterance in enumerate(utterances):
        key = _group_key(utterance)
        if key is not None:
            members[key].append(index)
    partners = [-1] * len(utterances)
    for group in members.values():
        if len(group) < 2:
            continue
        for position, index in enumerate(group):
            partners[index] = group[(position + 1) % len(group)]
    return partners
