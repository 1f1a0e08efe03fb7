"""Text normalisation, symbol sets and tokenizers."""

from __future__ import annotations

import shutil

import pytest

from prosody_vae.text import (
    CHARACTER_SYMBOLS,
    PHONEME_SYMBOLS,
    CharacterTokenizer,
    PhonemeTokenizer,
    Phonemizer,
    TextError,
    Tokenizer,
    build_tokenizer,
    normalize_text,
)
from prosody_vae.text.normalise import number_to_words, ordinal_to_words, year_to_words

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("I have 3 cats.", "i have three cats."),
        ("It costs 1,250 dollars", "it costs one thousand two hundred fifty dollars"),
        ("pi is 3.14", "pi is three point one four"),
        ("the 21st and 2nd of May", "the twenty first and second of may"),
        ("in 1999 and 2005", "in nineteen ninety nine and two thousand five"),
        ("the 1980s", "the nineteen eighties"),
        ("It is -5 outside", "it is minus five outside"),
        ("$3.50", "three dollars and fifty cents"),
        ("$1", "one dollar"),
        ("\u00a32 million", "two million pounds"),
        ("50% off", "fifty percent off"),
        ("at 10:05 pm", "at ten oh five p m"),
        ("Dr. Who met Mr. Smith.", "doctor who met mister smith."),
        ("St. Paul lives on Baker St.", "saint paul lives on baker street."),
        ("apples, pears, etc.", "apples, pears, et cetera."),
        ("\u201cHi,\u201d she said \u2014 \u2018ok\u2019\u2026", "hi, she said - 'ok'."),
        ("Caf\u00e9   na\u00efve\n\tend", "cafe naive end"),
        ("a (quiet) word", "a, quiet, word"),
        ("Wait!! Really?", "wait! really?"),
        ("semi; colon: dash - here", "semi; colon: dash - here"),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    "raw", ["Dr. Smith paid $3.50 on 3/4!", "The 1990s: 25% of 1,000 people.", "a-b -- c"]
)
def test_normalize_is_idempotent(raw: str) -> None:
    once = normalize_text(raw)
    assert normalize_text(once) == once


def test_number_words() -> None:
    assert number_to_words(0) == "zero"
    assert number_to_words(115) == "one hundred fifteen"
    assert number_to_words(2_000_019) == "two million nineteen"
    assert ordinal_to_words(40) == "fortieth"
    assert ordinal_to_words(112) == "one hundred twelfth"
    assert year_to_words(1900) == "nineteen hundred"
    assert year_to_words(2000) == "two thousand"


def test_normalize_rejects_non_str() -> None:
    with pytest.raises(TypeError, match="bytes"):
        normalize_text(b"abc")  # type: ignore[arg-type]


def test_character_round_trip_and_protocol() -> None:
    tok = build_tokenizer("characters")
    assert isinstance(tok, Tokenizer)
    assert tok.pad_id == 0 and tok.symbols[0] == "_"
    assert tok.vocab_size == len(CHARACTER_SYMBOLS)
    ids = tok.encode("Hello, world! It's me.")
    assert 0 not in ids
    assert tok.decode(ids) == "hello, world! it's me."


def test_eos_is_appended_only_when_asked() -> None:
    plain = CharacterTokenizer()
    with_eos = CharacterTokenizer(add_eos=True)
    assert with_eos.encode("ab") == [*plain.encode("ab"), with_eos.eos_id]


def test_unknown_symbol_raises_naming_symbol_and_text() -> None:
    tok = CharacterTokenizer()
    with pytest.raises(TextError, match=r"'#'.*'a # b'"):
        tok.encode("a # b")


def test_unknown_symbol_skip_warns_and_drops() -> None:
    tok = CharacterTokenizer(on_unknown="skip")
    with pytest.warns(UserWarning, match="'#'"):
        ids = tok.encode("a # b")
    assert tok.decode(ids) == "a b"  # the dropped symbol leaves one word boundary, not two


@pytest.mark.parametrize("text", ["", "   ", "...", "!?"])
def test_empty_text_is_an_error(text: str) -> None:
    with pytest.raises(TextError, match="empty"):
        CharacterTokenizer().encode(text)


def test_rebuild_from_stored_symbols_keeps_ids() -> None:
    # A checkpoint's symbol list in a different order must keep the checkpoint's ids.
    stored = ["_", "~", " ", *"zyxabc"]
    tok = build_tokenizer("characters", symbols=stored)
    assert tok.encode("cab") == [stored.index("c"), stored.index("a"), stored.index("b")]
    rebuilt = build_tokenizer(**tok.config())
    assert rebuilt.symbols == stored and rebuilt.encode("cab") == tok.encode("cab")
    with pytest.raises(TextError, match="'d'"):
        tok.encode("bad")


def test_bad_symbol_lists_and_kinds() -> None:
    with pytest.raises(ValueError, match="padding"):
        CharacterTokenizer(symbols=["a", "_"])
    with pytest.raises(ValueError, match="duplicate"):
        CharacterTokenizer(symbols=["_", "a", "a"])
    with pytest.raises(ValueError, match="'words'"):
        build_tokenizer("words")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_unknown"):
        CharacterTokenizer(on_unknown="ignore")  # type: ignore[arg-type]


def test_decode_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="999"):
        CharacterTokenizer().decode([3, 999])


@needs_espeak
def test_phonemes_keep_punctuation_and_word_boundaries() -> None:
    tok = PhonemeTokenizer()
    phones = tok.decode(tok.encode("Hello, world! How are you?"))
    assert phones.count(",") == 1 and phones.endswith("?") and "!" in phones
    assert len(phones.split(" ")) == 5  # one boundary token between each pair of words
    assert "\u02c8" in phones  # primary stress is kept
    assert all(s in PHONEME_SYMBOLS for s in phones)


@needs_espeak
def test_phonemes_deterministic_and_batched_equals_single() -> None:
    texts = ["The quick brown fox.", "It's 5 o'clock; time to go - now!", "A second, longer sentence here."]
    batched = PhonemeTokenizer().encode_batch(texts)
    single = [PhonemeTokenizer().encode(t) for t in texts]
    assert batched == single
    assert all(len(ids) > 0 for ids in batched)


@needs_espeak
def test_phonemizer_cache_and_long_pieces() -> None:
    phonemizer = Phonemizer()
    long_text = " ".join(["wonderful"] * 150)  # more words than espeak-ng keeps on one line
    first = phonemizer(["a cat", long_text])
    again = phonemizer(["a cat", long_text])
    assert first == again
    assert len(first[1].split(" ")) == 150
    assert "a cat" in phonemizer._cache


@needs_espeak
def test_phoneme_tokenizer_unknown_symbols_from_a_small_stored_list() -> None:
    tok = build_tokenizer("phonemes", symbols=["_", "~", " ", "k"])
    with pytest.raises(TextError, match="phonemes symbol"):
        tok.encode("cat")


def test_text_without_pronounceable_symbols_is_named() -> None:
    from prosody_vae.text import build_tokenizer
    from prosody_vae.text.tokenizers import TextError

    tokenizer = build_tokenizer(kind="phonemes")
    with pytest.raises(TextError, match="cannot speak '日', '本' .*CJK.* in '日本'"):
        tokenizer.encode("日本")


# --- what cannot be spoken is an error or a notice, never dropped in silence -------------------------
@pytest.mark.parametrize("kind", ["characters", "phonemes"])
@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Привет, мир?", "Cyrillic"),  # espeak-ng phonemised this to ",?": a 0.03 s wav
        ("Hello Привет world.", "'п'"),  # ... and this spelled out the Cyrillic letters' names
        ("Hello 你好 world.", "CJK"),
        ("Hello ☃ world", "'☃'"),
    ],
)
def test_unpronounceable_text_is_an_error_naming_it(kind: str, text: str, named: str) -> None:
    with pytest.raises(TextError, match=named):
        build_tokenizer(kind).encode(text)


def test_unpronounceable_letters_dropped_on_request_with_a_notice() -> None:
    from prosody_vae.text.tokenizers import TextNotice

    tok = build_tokenizer("characters", on_unknown="skip")
    with pytest.warns(TextNotice, match="Cyrillic"):
        assert tok.decode(tok.encode("Hello мир world.")) == "hello world."


@pytest.mark.parametrize("kind", ["characters", "phonemes"])
def test_a_nul_character_does_not_drop_the_rest(kind: str) -> None:
    tok = build_tokenizer(kind)
    assert tok.encode("Hello\x00 world, and more.") == tok.encode("Hello world, and more.")
    assert normalize_text("a\x00b\u200bc") == "a bc"  # control: a space; zero-width: nothing


@pytest.mark.parametrize("kind", ["characters", "phonemes"])
def test_ssml_tags_are_not_spoken_and_are_named_in_a_notice(kind: str) -> None:
    from prosody_vae.text.tokenizers import TextNotice

    tok = build_tokenizer(kind)
    with pytest.warns(TextNotice, match='<break time="1s"/>'):
        ids = tok.encode('<speak>Hello <break time="1s"/> world &amp; more</speak>')
    assert ids == tok.encode("Hello world and more")


def test_strip_markup_leaves_plain_text_alone() -> None:
    from prosody_vae.text.normalise import strip_markup

    assert strip_markup("a < b and c > d") == ("a < b and c > d", [])
    assert strip_markup("x<p>y</p><!-- no -->z") == ("x y  z", ["<p>", "</p>", "<!-- no -->"])


def test_encode_each_reports_each_bad_text_in_its_place() -> None:
    tok = build_tokenizer("phonemes")
    good, bad, empty = tok.encode_each(["The lantern was red.", "Привет", "..."])
    assert good == tok.encode("The lantern was red.")
    assert isinstance(bad, TextError) and "Cyrillic" in str(bad)
    assert isinstance(empty, TextError) and "nothing to say" in str(empty)


def test_long_text_in_an_error_is_shortened() -> None:
    with pytest.raises(TextError) as caught:
        build_tokenizer("characters").encode("word " * 2000 + "мир")
    assert len(str(caught.value)) < 400 and "10003 characters" in str(caught.value)
