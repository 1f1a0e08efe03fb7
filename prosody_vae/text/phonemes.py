"""IPA phonemes from espeak-ng, with punctuation and word boundaries kept.

espeak-ng drops punctuation from its ``--ipa`` output and ends a line at every clause, so we split the
(normalised) text at punctuation ourselves, phonemise the pieces in between and put the punctuation
back: "hello, world!" -> "həlˈoʊ, wˈɜːld!". Words stay separated by one space (the word-boundary token).

All pieces of a batch go to one espeak-ng process, one piece per input line; espeak-ng answers one
line per piece. It also breaks clauses of more than about 70 words over several lines, so long pieces
are sent on their own, and if the line count of a batch ever disagrees we fall back to one process per
piece rather than risk shifting phonemes between utterances. Results are cached in memory per piece.

Stress and length: espeak-ng's primary and secondary stress marks and its length mark are kept as
printed, as separate symbols (see :mod:`prosody_vae.text.symbols`); lexical stress is a prosodic cue
we want the model to see. A piece is phonemised without the context of the neighbouring pieces; this
costs nothing because espeak-ng treats punctuation as a clause boundary anyway.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import OrderedDict
from collections.abc import Sequence

from prosody_vae.errors import ProsodyVAEError

__all__ = ["Phonemizer", "PhonemizerError"]

# Punctuation tokens: , . ! ? ; : and a hyphen that is not inside a word ("a - b", not "well-known").
_SPLIT = re.compile(r"\s*([,.!?;:]|(?<!\w)-|-(?!\w))\s*")
_LANGUAGE_SWITCH = re.compile(r"\([a-z\-]+\)")  # espeak-ng marks loanwords as "(fr)...(en-us)"
_SPEAKABLE = re.compile(r"[a-z0-9]", re.IGNORECASE)
_MAX_BATCHED_WORDS = 60  # espeak-ng splits a clause at roughly 70 words


class PhonemizerError(ProsodyVAEError, RuntimeError):
    """espeak-ng is missing or failed."""


class Phonemizer:
    """Text -> IPA string through espeak-ng, cached in memory.

    Args:
        voice: espeak-ng voice, e.g. ``"en-us"``.
        executable: name or path of the espeak-ng binary.
        cache_size: number of distinct text pieces kept (least recently used are dropped).
    """

    def __init__(self, *, voice: str = "en-us", executable: str = "espeak-ng", cache_size: int = 200_000):
        resolved = shutil.which(executable)
        if resolved is None:
            raise PhonemizerError(
                f"{executable!r} not found on PATH; install espeak-ng (Debian: apt-get install espeak-ng) "
                "or use the character tokenizer"
            )
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.voice = voice
        self._executable = resolved
        self._cache_size = cache_size
        self._cache: OrderedDict[str, str] = OrderedDict()

    def __call__(self, texts: Sequence[str]) -> list[str]:
        """Phonemise normalised texts, one espeak-ng call for all pieces not in the cache.

        Args:
            texts: normalised texts (see :func:`prosody_vae.text.normalize_text`).

        Returns:
            One IPA string per text, punctuation kept, words separated by single spaces.
        """
        if isinstance(texts, str):
            raise TypeError("Phonemizer takes a sequence of texts, not a single str; wrap it in a list")
        split = [_SPLIT.split(text.strip()) for text in texts]
        # re.split with one group alternates: piece, punctuation, piece, ...; pieces are at even indices.
        pieces = {p for parts in split for p in parts[0::2] if _SPEAKABLE.search(p)}
        missing = [p for p in pieces if p not in self._cache]
        found = self._run_batch(missing) if missing else {}
        out = []
        for parts in split:
            chunks: list[str] = []
            for i, part in enumerate(parts):
                if i % 2 == 1:  # punctuation: attach to the previous word ("world!"), or stand alone
                    if part == "-" or not chunks:
                        chunks.append(part)
                    else:
                        chunks[-1] += part
                elif _SPEAKABLE.search(part):
                    chunks.append(found[part] if part in found else self._lookup(part))
            out.append(" ".join(c for c in chunks if c))
        for piece, phones in found.items():
            self._remember(piece, phones)
        return out

    def _lookup(self, piece: str) -> str:
        self._cache.move_to_end(piece)
        return self._cache[piece]

    def _remember(self, piece: str, phones: str) -> None:
        if self._cache_size == 0:
            return
        self._cache[piece] = phones
        self._cache.move_to_end(piece)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _run_batch(self, pieces: list[str]) -> dict[str, str]:
        short = [p for p in pieces if len(p.split()) <= _MAX_BATCHED_WORDS]
        result = {p: self._run_one(p) for p in pieces if len(p.split()) > _MAX_BATCHED_WORDS}
        if short:
            lines = self._espeak("\n".join(short))
            if len(lines) == len(short):
                result.update(zip(short, (_clean(line) for line in lines), strict=True))
            else:  # espeak-ng split or merged a line: redo the pieces one by one
                result.update((p, self._run_one(p)) for p in short)
        return result

    def _run_one(self, piece: str) -> str:
        return " ".join(_clean(line) for line in self._espeak(piece) if line.strip())

    def _espeak(self, text: str) -> list[str]:
        # A list of arguments and no shell: the text goes through stdin, never through a command line.
        try:
            proc = subprocess.run(
                [self._executable, "-q", "--ipa", "-v", self.voice],
                input=text.replace("\0", " ") + "\n",  # espeak-ng would end its input at a NUL
                capture_output=True,
                text=True,
                encoding="utf-8",
                check=False,
            )
        except OSError as error:
            raise PhonemizerError(f"could not run {self._executable}: {error}") from error
        if proc.returncode != 0:
            raise PhonemizerError(
                f"{self._executable} -v {self.voice} failed with code {proc.returncode}: {proc.stderr.strip()}"
            )
        return proc.stdout.rstrip("\n").split("\n")


def _clean(line: str) -> str:
    line = _LANGUAGE_SWITCH.sub("", line)
    return " ".join(line.split())
