"""English text normalisation: what the tokenizers see.

The rules follow the spirit of Keith Ito's ``english_cleaners`` (used by Tacotron 2 recipes): expand
numbers, currency, percentages, times and common abbreviations into words, fold typographic unicode to
ASCII, lower-case and collapse whitespace. Punctuation that carries prosody (``, . ! ? ; : - '``) is kept;
double quotes are dropped and brackets become commas because a parenthetical is read as its own phrase.
Everything else is left in place so that the tokenizer can reject it by name instead of the normaliser
silently deleting content.

Deviation from ``english_cleaners``: numbers are expanded with spaces instead of hyphens ("twenty one",
not "twenty-one"), so that a hyphen in the output always comes from the text and can be read as a pause.
"""

from __future__ import annotations

import html
import re
import unicodedata

__all__ = ["normalize_text", "number_to_words", "ordinal_to_words", "strip_markup", "year_to_words"]

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def number_to_words(n: int) -> str:
    """Cardinal reading of an integer: 1234 -> "one thousand two hundred thirty four"."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= 10**15:  # nobody reads these as a cardinal; spell the digits
        return " ".join(_ONES[int(d)] for d in str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (" " + _ONES[ones] if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + (" " + number_to_words(rest) if rest else "")
    for scale, name in _SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            return number_to_words(head) + " " + name + (" " + number_to_words(rest) if rest else "")
    raise AssertionError(f"unreachable for {n}")


def ordinal_to_words(n: int) -> str:
    """Ordinal reading: 21 -> "twenty first", 100 -> "one hundredth"."""
    words = number_to_words(n).split(" ")
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        last = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last = last + "th"
    return " ".join([*words[:-1], last])


def year_to_words(n: int) -> str:
    """Year reading for 1100..2099: 1999 -> "nineteen ninety nine", 1905 -> "nineteen oh five"."""
    if n % 1000 == 0 or 2000 <= n <= 2009 or not 1100 <= n <= 2099:
        return number_to_words(n)
    head, tail = divmod(n, 100)
    if tail == 0:
        return number_to_words(head) + " hundred"
    if tail < 10:
        return number_to_words(head) + " oh " + _ONES[tail]
    return number_to_words(head) + " " + number_to_words(tail)


def _plural(words: str) -> str:
    """ "nineteen ninety" -> "nineteen nineties" (for "the 1990s")."""
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + ("es" if last.endswith("x") else "s")
    return (head + " " + last) if head else last


# --- unicode folding -------------------------------------------------------------------------------
_UNICODE = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u00b4": "'",
    "`": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ",
}
_DASH_RANGE = re.compile(r"(\d)\s*[\u2013\u2014]\s*(\d)")  # 1990-1995 with an en dash: a range
_LONG_DASH = re.compile(r"\s*[\u2013\u2014\u2015]+\s*|\s+--+\s+|(?<=\w)--+(?=\w)")


def _invisible_to_space(text: str) -> str:
    """Control characters (NUL, escape, ...) become spaces and format characters (zero-width space,
    soft hyphen, ...) disappear: neither is spoken, and espeak-ng ends its input at a NUL, which would
    silently drop the rest of the text."""
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc":
            out.append(" ")
        elif category != "Cf":
            out.append(ch)
    return "".join(out)


def _fold_unicode(text: str) -> str:
    text = _invisible_to_space(text)
    text = _DASH_RANGE.sub(r"\1 to \2", text)
    text = _LONG_DASH.sub(" - ", text)  # a dash between words is a pause
    text = "".join(_UNICODE.get(ch, ch) for ch in text)
    # NFKD splits accented letters into base + combining mark; dropping the marks maps "cafe\u0301" to "cafe".
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# --- markup ----------------------------------------------------------------------------------------
# SSML/XML/HTML tags (<speak>, <break time="1s"/>, </p>), comments and declarations. Text is not markup,
# so a "<" that opens no tag ("a < b") is left for the tokenizer to reject by name.
_MARKUP = re.compile(r"<!--.*?-->|<[?!][^<>]*>|</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>", re.DOTALL)


def strip_markup(text: str) -> tuple[str, list[str]]:
    """``text`` without SSML/XML tags, and the tags removed (in order; empty when there were none).

    Each tag becomes a space, so the words on either side stay apart; when a tag was found, character
    entities (``&amp;``, ``&lt;``) are decoded too, as markup writes them so. Tags are not spoken and
    their meaning (a break, an emphasis) is not rendered: the tokenizers strip them with a
    :class:`~prosody_vae.text.tokenizers.TextNotice`.
    """
    tags = _MARKUP.findall(text)
    if not tags:
        return text, []
    return html.unescape(_MARKUP.sub(" ", text)), tags


# --- abbreviations ---------------------------------------------------------------------------------
_TITLES = {
    "mr": "mister",
    "mrs": "missus",
    "ms": "miz",
    "dr": "doctor",
    "jr": "junior",
    "sr": "senior",
    "prof": "professor",
    "gen": "general",
    "capt": "captain",
    "lt": "lieutenant",
    "col": "colonel",
    "sgt": "sergeant",
    "maj": "major",
    "rev": "reverend",
    "hon": "honorable",
    "mt": "mount",
    "ft": "fort",
    "co": "company",
    "ltd": "limited",
    "inc": "incorporated",
    "vs": "versus",
    "etc": "et cetera",
}
_TITLE_RE = re.compile(r"\b(" + "|".join(_TITLES) + r")\.(\s*$)?", re.IGNORECASE)
_DOTTED = [
    # "St. James" is a saint, "Baker St." a street: decide by the capital letter that follows.
    (re.compile(r"\b[Ss]t\.(?=\s+[A-Z])"), "saint"),
    (re.compile(r"\b[Ss]t\.(?=\s|[,;:!?])"), "street"),
    (re.compile(r"\b[Ss]t\.$"), "street."),
    (re.compile(r"\be\.g\.", re.IGNORECASE), "for example"),
    (re.compile(r"\bi\.e\.", re.IGNORECASE), "that is"),
    (re.compile(r"\b([ap])\.m\.(?=\s|$|[,;:!?])", re.IGNORECASE), r"\1 m"),
    (re.compile(r"\bno\.\s*(?=\d)", re.IGNORECASE), "number "),
]


def _expand_title(match: re.Match[str]) -> str:
    # The period of a sentence-final "etc." is also the full stop: keep one.
    return _TITLES[match.group(1).lower()] + ("." if match.group(2) is not None else "")


# --- numbers ---------------------------------------------------------------------------------------
_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_SCALE_WORD = r"(?:\s+(thousand|million|billion|trillion))?"
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "\u00a3": ("pound", "pounds", "penny", "pence")}
_CURRENCY["\u20ac"] = ("euro", "euros", "cent", "cents")
_CURRENCY_RE = re.compile(r"([$\u00a3\u20ac])\s?(" + _NUM + ")" + _SCALE_WORD)
_PERCENT_RE = re.compile(r"(" + _NUM + r")\s?%")
_TIME_RE = re.compile(r"\b(\d{1,2}):(\d{2})\b(?:\s*([ap])m\b)?", re.IGNORECASE)
_MERIDIEM_RE = re.compile(r"\b(\d{1,2})\s*([ap])m\b", re.IGNORECASE)  # "5pm", "5 PM"
_LETTER_DIGIT = re.compile(r"(?<=[a-zA-Z])(?=\d)|(?<=\d)(?=[a-zA-Z])")  # "v2" -> "v 2", "5kg" -> "5 kg"
_ORDINAL_RE = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
# A bare four-digit number in 1100..2099 is read as a year ("1500 people" -> "fifteen hundred people"
# is still natural English); not when it is part of a longer number or a decimal.
_YEAR_RE = re.compile(r"(?<![\d.,])(1[1-9]\d\d|20\d\d)(s)?(?!\d|[.,]\d)")
# A minus sign only at the start of a word: "3-4" stays a hyphenated pair, "-5" is "minus five".
_NUMBER_RE = re.compile(r"(?:(?<![^\s(])(-))?(" + _NUM + ")")


def _plain_number(text: str) -> str:
    """ "1,234.05" -> "one thousand two hundred thirty four point zero five"."""
    whole, _, frac = text.replace(",", "").partition(".")
    words = number_to_words(int(whole))
    if frac:
        words += " point " + " ".join(_ONES[int(d)] for d in frac)
    return words


def _expand_currency(match: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCY[match.group(1)]
    amount, scale = match.group(2).replace(",", ""), match.group(3)
    if scale:  # "$1.5 million" -> "one point five million dollars"
        return f"{_plain_number(amount)} {scale} {many}"
    whole_text, _, frac = amount.partition(".")
    whole = int(whole_text)
    cents = int((frac + "00")[:2]) if frac else 0
    parts = []
    if whole or not cents:
        parts.append(f"{number_to_words(whole)} {one if whole == 1 else many}")
    if cents:
        parts.append(f"{number_to_words(cents)} {sub_one if cents == 1 else sub_many}")
    return " and ".join(parts)


def _expand_time(match: re.Match[str]) -> str:
    hours, minutes, meridiem = int(match.group(1)), int(match.group(2)), match.group(3)
    if hours > 24 or minutes > 59:  # not a clock time ("12:75" in a score): read the numbers
        return f"{number_to_words(hours)} {number_to_words(minutes)}"
    if minutes == 0:
        words = number_to_words(hours) + ("" if meridiem else " o'clock")
    elif minutes < 10:
        words = f"{number_to_words(hours)} oh {_ONES[minutes]}"
    else:
        words = f"{number_to_words(hours)} {number_to_words(minutes)}"
    return words + (f" {meridiem.lower()} m" if meridiem else "")


def _expand_year(match: re.Match[str]) -> str:
    words = year_to_words(int(match.group(1)))
    return _plural(words) if match.group(2) else words


def _expand_number(match: re.Match[str]) -> str:
    return ("minus " if match.group(1) else "") + _plain_number(match.group(2))


# --- punctuation and spacing -----------------------------------------------------------------------
_BRACKETS = re.compile(r"\s*[()\[\]{}]\s*")
_REPEATED = re.compile(r"([,.!?;:\-])\1+")
_SPACE_BEFORE = re.compile(r"\s+([,.!?;:])")
_PUNCT_RUN = re.compile(r"[,;:]\s*([.!?])")  # "word, ." -> "word." (left over from brackets)
_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Normalise English text for TTS.

    Numbers (with thousands separators, decimals, signs), ordinals (1st, 22nd), years (1999, 1990s),
    clock times (3:30 pm), currency ($, pounds, euros, with cents and "million"), percentages and
    common abbreviations (Mr., Dr., St., etc., e.g., i.e.) become words; unicode quotes, dashes and
    accents fold to ASCII; text is lower-cased and whitespace collapsed. The result may be empty.

    Args:
        text: raw text.

    Returns:
        The normalised string; normalising it again returns it unchanged.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}: {text!r}")
    text = _fold_unicode(text)
    for pattern, replacement in _DOTTED:
        text = pattern.sub(replacement, text)
    text = _TITLE_RE.sub(_expand_title, text)
    text = text.replace("&", " and ").replace("@", " at ")
    text = _CURRENCY_RE.sub(_expand_currency, text)
    text = _PERCENT_RE.sub(lambda m: _plain_number(m.group(1)) + " percent", text)
    text = _TIME_RE.sub(_expand_time, text)
    text = _MERIDIEM_RE.sub(lambda m: f"{number_to_words(int(m.group(1)))} {m.group(2).lower()} m", text)
    text = _ORDINAL_RE.sub(lambda m: ordinal_to_words(int(m.group(1))), text)
    text = _YEAR_RE.sub(_expand_year, text)
    text = _LETTER_DIGIT.sub(" ", text)
    text = _NUMBER_RE.sub(_expand_number, text)
    text = text.replace('"', " ")
    text = _BRACKETS.sub(", ", text)
    text = text.lower()
    text = _REPEATED.sub(r"\1", text)  # "...", "!!", "--" -> one mark
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _PUNCT_RUN.sub(r"\1", text)
    text = _WHITESPACE.sub(" ", text).strip()
    return text.strip(",;: ")
