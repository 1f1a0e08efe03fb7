"""Character and phoneme tokenizers sharing one protocol.

Both normalise the text first (:func:`normalize_text`, idempotent, so already-normalised text is fine),
then map symbols to ids through a fixed symbol list. Id 0 is padding. Unknown symbols raise
:class:`TextError` naming them and the text; ``on_unknown="skip"`` drops them with a warning instead
(useful for scraping a corpus, never the default: silently dropped words make misaligned data).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from prosody_vae.text.normalise import normalize_text
from prosody_vae.text.phonemes import Phonemizer
from prosody_vae.text.symbols import CHARACTER_SYMBOLS, EOS, PAD, PHONEME_SYMBOLS, SYMBOLS_VERSION

__all__ = [
    "CharacterTokenizer",
    "PhonemeTokenizer",
    "TextError",
    "Tokenizer",
    "build_tokenizer",
]

OnUnknown = Literal["raise", "skip"]


class TextError(ValueError):
    """Text that cannot be tokenised: empty after normalisation, or with unknown symbols."""


@runtime_checkable
class Tokenizer(Protocol):
    symbols: list[str]
    pad_id: int
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class _SymbolTokenizer(ABC):
    """Shared machinery: a symbol list, the unknown-symbol policy and the optional EOS id."""

    kind: str = ""
    default_symbols: tuple[str, ...] = ()
    pad_id = 0

    def __init__(
        self,
        symbols: Sequence[str] | None = None,
        *,
        add_eos: bool = False,
        on_unknown: OnUnknown = "raise",
    ) -> None:
        symbols = list(self.default_symbols if symbols is None else symbols)
        if not symbols or symbols[0] != PAD:
            raise ValueError(f"symbols[0] must be the padding symbol {PAD!r}, got {symbols[:1]!r}")
        duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
        if duplicates:
            raise ValueError(f"duplicate symbols: {duplicates!r}")
        if add_eos and EOS not in symbols:
            raise ValueError(f"add_eos=True needs the end-of-sequence symbol {EOS!r} in the symbol list")
        if on_unknown not in ("raise", "skip"):
            raise ValueError(f"on_unknown must be 'raise' or 'skip', got {on_unknown!r}")
        self.symbols = symbols
        self.vocab_size = len(symbols)
        self.add_eos = add_eos
        self.on_unknown = on_unknown
        self._ids = {s: i for i, s in enumerate(symbols)}
        self.eos_id = self._ids.get(EOS)

    @abstractmethod
    def _symbolize(self, texts: list[str]) -> list[str]:
        """Normalised texts -> strings of symbols (one character per symbol)."""

    def encode(self, text: str) -> list[int]:
        """Text -> ids (normalised first). Raises :class:`TextError` on empty text or unknown symbols."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Several texts at once (one espeak-ng call for the phoneme tokenizer)."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a sequence of texts, not a single str; use encode")
        normalised = [normalize_text(t) for t in texts]
        for raw, norm in zip(texts, normalised, strict=True):
            if not any(ch.isalnum() for ch in norm):
                raise TextError(f"nothing to say in {raw!r}: empty after normalisation ({norm!r})")
        return [self._to_ids(s, raw) for s, raw in zip(self._symbolize(normalised), texts, strict=True)]

    def _to_ids(self, symbols: str, raw: str) -> list[int]:
        if not symbols.strip():
            # e.g. a script espeak-ng has no rules for: it returns no phonemes at all
            raise TextError(f"nothing to say in {raw!r}: the {self.kind} tokenizer finds no symbols in it")
        unknown = sorted({s for s in symbols if s not in self._ids or s in (PAD, EOS)})
        if unknown:
            message = f"unknown {self.kind} symbol(s) {unknown!r} in {raw!r}"
            if self.on_unknown == "raise":
                raise TextError(message + "; normalise or remove them, or pass on_unknown='skip'")
            warnings.warn(message + "; dropped (on_unknown='skip')", stacklevel=3)
        ids = [self._ids[s] for s in symbols if s not in unknown]
        if not ids:
            raise TextError(f"nothing left of {raw!r} after dropping unknown symbols")
        if self.add_eos:
            ids.append(self.eos_id)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> symbol string, padding dropped (for debugging; not the original text)."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id {i} out of range for a vocabulary of {self.vocab_size}")
            if i != self.pad_id:
                out.append(self.symbols[i])
        return "".join(out)

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this tokenizer: ``build_tokenizer(**tokenizer.config())``."""
        return {
            "kind": self.kind,
            "symbols": list(self.symbols),
            "add_eos": self.add_eos,
            "symbols_version": SYMBOLS_VERSION,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, add_eos={self.add_eos})"


class CharacterTokenizer(_SymbolTokenizer):
    """Lower-case letters, space and prosodic punctuation (:data:`CHARACTER_SYMBOLS`).

    Args:
        symbols: symbol list, e.g. from a checkpoint; defaults to the current versioned list.
        add_eos: append the end-of-sequence id to every encoding.
        on_unknown: ``"raise"`` (default) or ``"skip"`` (drop unknown symbols with a warning).
    """

    kind = "characters"
    default_symbols = CHARACTER_SYMBOLS

    def _symbolize(self, texts: list[str]) -> list[str]:
        return texts


class PhonemeTokenizer(_SymbolTokenizer):
    """espeak-ng IPA phones, word boundaries and punctuation (:data:`PHONEME_SYMBOLS`).

    Args:
        symbols: symbol list, e.g. from a checkpoint; defaults to the current versioned list.
        add_eos: append the end-of-sequence id to every encoding.
        on_unknown: ``"raise"`` (default) or ``"skip"`` (drop unknown symbols with a warning).
        voice: espeak-ng voice.
        phonemizer: an existing :class:`Phonemizer` to share its cache.
    """

    kind = "phonemes"
    default_symbols = PHONEME_SYMBOLS

    def __init__(
        self,
        symbols: Sequence[str] | None = None,
        *,
        add_eos: bool = False,
        on_unknown: OnUnknown = "raise",
        voice: str = "en-us",
        phonemizer: Phonemizer | None = None,
    ) -> None:
        super().__init__(symbols, add_eos=add_eos, on_unknown=on_unknown)
        self.phonemizer = phonemizer if phonemizer is not None else Phonemizer(voice=voice)

    def _symbolize(self, texts: list[str]) -> list[str]:
        return self.phonemizer(texts)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "voice": self.phonemizer.voice}


def build_tokenizer(
    kind: Literal["characters", "phonemes"],
    *,
    symbols: Sequence[str] | None = None,
    add_eos: bool = False,
    on_unknown: OnUnknown = "raise",
    voice: str = "en-us",
    symbols_version: int = SYMBOLS_VERSION,
) -> CharacterTokenizer | PhonemeTokenizer:
    """The tokenizer factory; ``build_tokenizer(**tokenizer.config())`` rebuilds a saved one.

    Args:
        kind: ``"characters"`` or ``"phonemes"``.
        symbols: a stored symbol list; ``None`` takes the current default for ``kind``.
        add_eos: append the end-of-sequence id.
        on_unknown: ``"raise"`` or ``"skip"``.
        voice: espeak-ng voice (phonemes only).
        symbols_version: version the stored list was made with; only checked when ``symbols`` is None,
            since a stored list is self-describing.
    """
    if symbols is None and symbols_version != SYMBOLS_VERSION:
        raise ValueError(
            f"symbols_version {symbols_version} without a symbol list: this version of prosody_vae only "
            f"has version {SYMBOLS_VERSION}; pass the stored symbols"
        )
    if kind == "characters":
        return CharacterTokenizer(symbols, add_eos=add_eos, on_unknown=on_unknown)
    if kind == "phonemes":
        return PhonemeTokenizer(symbols, add_eos=add_eos, on_unknown=on_unknown, voice=voice)
    raise ValueError(f"unknown tokenizer kind {kind!r}; expected 'characters' or 'phonemes'")
