"""Character and phoneme tokenizers sharing one protocol.

Both normalise the text first (:func:`normalize_text`, idempotent, so already-normalised text is fine),
then map symbols to ids through a fixed symbol list. Id 0 is padding. Unknown symbols raise
:class:`TextError` naming them and the text; ``on_unknown="skip"`` drops them with a warning instead
(useful for scraping a corpus, never the default: silently dropped words make misaligned data).

What cannot be spoken is never dropped in silence. Both tokenizers read English: words in Latin
letters, digits (spelled out by the normaliser) and the punctuation ``, . ! ? ; : - '``. Letters of
other scripts (Cyrillic, CJK, Greek, ...) and other symbols (``~ # / *``, emoji) are unknown symbols,
a :class:`TextError` naming them (espeak-ng would otherwise drop a word in another script, or spell
its letters one by one). SSML or other markup tags are not spoken: they are stripped with a
:class:`TextNotice` that names them (:func:`~prosody_vae.text.normalise.strip_markup`). Control
characters such as NUL are spaces (:func:`normalize_text`).
"""

from __future__ import annotations

import unicodedata
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from prosody_vae.text.normalise import normalize_text, strip_markup
from prosody_vae.text.phonemes import Phonemizer
from prosody_vae.text.symbols import (
    CHARACTER_SYMBOLS,
    EOS,
    PAD,
    PHONEME_SYMBOLS,
    PUNCTUATION,
    SPACE,
    SYMBOLS_VERSION,
)

__all__ = [
    "CharacterTokenizer",
    "PhonemeTokenizer",
    "TextError",
    "TextNotice",
    "Tokenizer",
    "build_tokenizer",
]

OnUnknown = Literal["raise", "skip"]


class TextError(ValueError):
    """Text that cannot be tokenised: empty after normalisation, or with unknown symbols."""


class TextNotice(UserWarning):
    """Text was changed before it was spoken (markup stripped, unknown symbols dropped on request)."""


_READABLE = frozenset((SPACE, *PUNCTUATION))


def _readable(ch: str) -> bool:
    """Whether the tokenizers can say ``ch``: a Latin letter, a digit, a space or kept punctuation."""
    if ch in _READABLE or ch.isdigit():
        return True
    return ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN ")


def _quote(text: str, limit: int = 80) -> str:
    """``text`` quoted for a message, its middle cut out when long (a page of text is one line)."""
    if len(text) <= limit:
        return repr(text)
    return repr(text[: limit // 2]) + " ... " + repr(text[-limit // 4 :]) + f" ({len(text)} characters)"


def _describe(chars: list[str]) -> str:
    shown = ", ".join(repr(c) for c in chars[:8]) + (f" and {len(chars) - 8} more" if len(chars) > 8 else "")
    scripts = {unicodedata.name(c, "?").split(" ")[0] for c in chars if c.isalpha()}
    scripts = {word if len(word) <= 3 else word.title() for word in scripts}  # CJK, Cyrillic, Greek
    if scripts:
        return f"{shown} ({'/'.join(sorted(scripts))} letters: this tokenizer reads English in Latin letters)"
    return f"{shown} (write symbols as words)"


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
        """Several texts at once (one espeak-ng call for the phoneme tokenizer); the first text that
        cannot be tokenised raises its :class:`TextError`."""
        encoded = self.encode_each(texts)
        for ids in encoded:
            if isinstance(ids, TextError):
                raise ids
        return encoded

    def encode_each(self, texts: Sequence[str]) -> list[list[int] | TextError]:
        """Like :meth:`encode_batch`, but a text that cannot be tokenised gives its :class:`TextError`
        in its place instead of raising, so that a corpus can be checked in one pass."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a sequence of texts, not a single str; use encode")
        results: list[list[int] | TextError | None] = []
        readable: dict[int, str] = {}  # index -> normalised text to symbolise
        for index, raw in enumerate(texts):
            try:
                readable[index] = self._prepare(raw)
                results.append(None)
            except TextError as error:
                results.append(error)
        indices = list(readable)
        for index, symbols in zip(indices, self._symbolize([readable[i] for i in indices]), strict=True):
            try:
                results[index] = self._to_ids(symbols, texts[index])
            except TextError as error:
                results[index] = error
        return results

    def _prepare(self, raw: str) -> str:
        """The normalised text to symbolise: markup stripped (with a notice), everything readable."""
        text, tags = strip_markup(raw)
        if tags:
            shown = " ".join(tags[:4]) + (f" and {len(tags) - 4} more" if len(tags) > 4 else "")
            warnings.warn(
                f"markup is not spoken: removed {shown} from {_quote(raw)}", TextNotice, stacklevel=4
            )
        norm = normalize_text(text)
        unreadable = sorted({ch for ch in norm if not _readable(ch)})
        if unreadable:
            message = f"cannot speak {_describe(unreadable)} in {_quote(raw)}"
            if self.on_unknown == "raise":
                raise TextError(message)
            warnings.warn(message + "; dropped (on_unknown='skip')", TextNotice, stacklevel=4)
            norm = normalize_text("".join(" " if ch in unreadable else ch for ch in norm))
        if not any(ch.isalnum() for ch in norm):
            raise TextError(f"nothing to say in {_quote(raw)}: empty after normalisation ({norm!r})")
        return norm

    def _to_ids(self, symbols: str, raw: str) -> list[int]:
        if not symbols.strip():
            # e.g. a script espeak-ng has no rules for: it returns no phonemes at all
            raise TextError(
                f"nothing to say in {_quote(raw)}: the {self.kind} tokenizer finds no symbols in it"
            )
        unknown = sorted({s for s in symbols if s not in self._ids or s in (PAD, EOS)})
        if unknown:
            message = f"unknown {self.kind} symbol(s) {unknown!r} in {_quote(raw)}"
            if self.on_unknown == "raise":
                raise TextError(message + "; normalise or remove them, or pass on_unknown='skip'")
            warnings.warn(message + "; dropped (on_unknown='skip')", TextNotice, stacklevel=4)
        ids = [self._ids[s] for s in symbols if s not in unknown]
        if not ids:
            raise TextError(f"nothing left of {_quote(raw)} after dropping unknown symbols")
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
