"""Rupiah amounts in Indonesian and English words, their clip names, and Rp formatting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qris_soundbox.core.announcement import (
    MAX_SPEAKABLE_AMOUNT,
    AmountNotSpeakable,
    UnsupportedLanguage,
    amount_in_words,
    announcement_clips,
    announcement_text,
    clip_vocabulary,
    format_rupiah,
    max_text_length_needed,
)

AMOUNTS = st.integers(min_value=0, max_value=MAX_SPEAKABLE_AMOUNT)
# Small amounts and round ones are where the se-/belas rules live; mix them in.
INTERESTING_AMOUNTS = st.one_of(
    AMOUNTS,
    st.integers(min_value=0, max_value=2_000_000),
    st.builds(lambda d, e: d * 10**e, st.integers(1, 999), st.integers(0, 12)),
)

# ---------------------------------------------------------------- an independent words → number parser

_ID_UNITS = {
    "nol": 0, "satu": 1, "dua": 2, "tiga": 3, "empat": 4, "lima": 5,
    "enam": 6, "tujuh": 7, "delapan": 8, "sembilan": 9, "sepuluh": 10, "sebelas": 11,
    "seratus": 100, "seribu": 1000,
}  # fmt: skip
_ID_MULTIPLIERS = {"belas": None, "puluh": 10, "ratus": 100}
_ID_SCALES = {"ribu": 10**3, "juta": 10**6, "miliar": 10**9, "triliun": 10**12}


def parse_indonesian(words: str) -> int:
    """Read Indonesian number words back; deliberately a different algorithm from the speaker's."""
    tokens = words.split()
    assert tokens.pop() == "rupiah"
    total, group, last = 0, 0, 0
    for token in tokens:
        if token in _ID_UNITS:
            value = _ID_UNITS[token]
            if value == 1000:  # "seribu" closes a thousands group of its own
                total += 1000
                group = last = 0
            else:
                group += value
                last = value
        elif token == "belas":
            group += 10  # "dua belas" = 2 + 10
            last = 0
        elif token in _ID_MULTIPLIERS:
            group += last * (_ID_MULTIPLIERS[token] - 1)  # "dua puluh": 2 becomes 20
            last = 0
        elif token in _ID_SCALES:
            total += group * _ID_SCALES[token]
            group = last = 0
        else:
            raise AssertionError(f"unknown word {token!r}")
    return total + group


_EN_UNITS = {
    word: n
    for n, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_EN_TENS = {
    word: 10 * n for n, word in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if n > 1
}
_EN_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}


def parse_english(words: str) -> int:
    tokens = words.replace("-", " ").split()
    assert tokens.pop() == "rupiah"
    total = group = 0
    for token in tokens:
        if token in _EN_UNITS:
            group += _EN_UNITS[token]
        elif token in _EN_TENS:
            group += _EN_TENS[token]
        elif token == "hundred":
            group *= 100
        elif token in _EN_SCALES:
            total += group * _EN_SCALES[token]
            group = 0
        else:
            raise AssertionError(f"unknown word {token!r}")
    return total + group


# ---------------------------------------------------------------- SPEC §10 examples, exactly


def test_spec_indonesian_examples() -> None:
    assert amount_in_words(25000) == "dua puluh lima ribu rupiah"
    assert amount_in_words(1500) == "seribu lima ratus rupiah"
    assert amount_in_words(11000) == "sebelas ribu rupiah"
    assert amount_in_words(1000000) == "satu juta rupiah"


def test_spec_default_sentences() -> None:
    assert announcement_text(25000, "id") == "Pembayaran QRIS diterima, dua puluh lima ribu rupiah"
    assert announcement_text(25000, "en") == "QRIS payment received, twenty-five thousand rupiah"


def test_spec_clips_example() -> None:
    assert announcement_clips(25000, "id") == ["pembayaran_qris_diterima", "dua", "puluh", "lima", "ribu", "rupiah"]


def test_english_clips_split_hyphenated_tens() -> None:
    assert announcement_clips(25000, "en") == ["qris_payment_received", "twenty", "five", "thousand", "rupiah"]


# ---------------------------------------------------------------- the documented table (docs/announcements.md)

TABLE = [
    (0, "nol rupiah", "zero rupiah"),
    (10, "sepuluh rupiah", "ten rupiah"),
    (11, "sebelas rupiah", "eleven rupiah"),
    (19, "sembilan belas rupiah", "nineteen rupiah"),
    (20, "dua puluh rupiah", "twenty rupiah"),
    (100, "seratus rupiah", "one hundred rupiah"),
    (101, "seratus satu rupiah", "one hundred one rupiah"),
    (110, "seratus sepuluh rupiah", "one hundred ten rupiah"),
    (111, "seratus sebelas rupiah", "one hundred eleven rupiah"),
    (1000, "seribu rupiah", "one thousand rupiah"),
    (1001, "seribu satu rupiah", "one thousand one rupiah"),
    (1100, "seribu seratus rupiah", "one thousand one hundred rupiah"),
    (1111, "seribu seratus sebelas rupiah", "one thousand one hundred eleven rupiah"),
    (10000, "sepuluh ribu rupiah", "ten thousand rupiah"),
    (11000, "sebelas ribu rupiah", "eleven thousand rupiah"),
    (100000, "seratus ribu rupiah", "one hundred thousand rupiah"),
    (101000, "seratus satu ribu rupiah", "one hundred one thousand rupiah"),
    (110000, "seratus sepuluh ribu rupiah", "one hundred ten thousand rupiah"),
    (
        999999,
        "sembilan ratus sembilan puluh sembilan ribu sembilan ratus sembilan puluh sembilan rupiah",
        "nine hundred ninety-nine thousand nine hundred ninety-nine rupiah",
    ),
    (1000000, "satu juta rupiah", "one million rupiah"),
    (1001000, "satu juta seribu rupiah", "one million one thousand rupiah"),
    (2000000, "dua juta rupiah", "two million rupiah"),
    (1000000000, "satu miliar rupiah", "one billion rupiah"),
    (1000000000000, "satu triliun rupiah", "one trillion rupiah"),
]


@pytest.mark.parametrize(("amount", "indonesian", "english"), TABLE)
def test_tricky_numbers(amount: int, indonesian: str, english: str) -> None:
    assert amount_in_words(amount, "id") == indonesian
    assert amount_in_words(amount, "en") == english


# ---------------------------------------------------------------- properties


@given(INTERESTING_AMOUNTS)
def test_indonesian_words_read_back_to_the_amount(amount: int) -> None:
    assert parse_indonesian(amount_in_words(amount, "id")) == amount


@given(INTERESTING_AMOUNTS)
def test_english_words_read_back_to_the_amount(amount: int) -> None:
    assert parse_english(amount_in_words(amount, "en")) == amount


@given(INTERESTING_AMOUNTS, st.sampled_from(["id", "en"]))
def test_every_clip_is_in_the_vocabulary(amount: int, language: str) -> None:
    assert set(announcement_clips(amount, language)) <= clip_vocabulary(language)


@given(INTERESTING_AMOUNTS, st.sampled_from(["id", "en"]))
def test_clips_are_the_words_of_the_sentence(amount: int, language: str) -> None:
    clips = announcement_clips(amount, language, with_prefix=False)
    assert clips == amount_in_words(amount, language).replace("-", " ").split()


@pytest.mark.parametrize("language", ["id", "en"])
def test_every_vocabulary_clip_is_actually_used(language: str) -> None:
    samples = [*range(0, 1000), 1000, 2000, 10**6, 10**9, 10**12, 25000]
    used = {clip for amount in samples for clip in announcement_clips(amount, language)}
    assert used == clip_vocabulary(language)


def test_vocabulary_sizes_stay_small() -> None:
    assert len(clip_vocabulary("id")) <= 40
    assert len(clip_vocabulary("en")) <= 40


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("amount", [-1, MAX_SPEAKABLE_AMOUNT + 1, 2.5, True])
def test_amounts_outside_the_spoken_range_are_refused(amount: object) -> None:
    with pytest.raises(AmountNotSpeakable) as caught:
        amount_in_words(amount)  # type: ignore[arg-type]
    assert caught.value.code == "amount_not_speakable"


def test_the_largest_amount_is_spoken_in_triliun() -> None:
    words = amount_in_words(MAX_SPEAKABLE_AMOUNT)
    assert words.startswith("sembilan ratus sembilan puluh sembilan triliun")
    assert parse_indonesian(words) == MAX_SPEAKABLE_AMOUNT


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(UnsupportedLanguage) as caught:
        amount_in_words(25000, "fr")
    assert caught.value.code == "unsupported_language"
    with pytest.raises(UnsupportedLanguage):
        clip_vocabulary("fr")


# ---------------------------------------------------------------- Rp formatting and sizing


@pytest.mark.parametrize(
    ("amount", "formatted"),
    [(25000, "Rp25.000"), (0, "Rp0"), (999, "Rp999"), (1000, "Rp1.000"), (1000000, "Rp1.000.000"), (-1500, "-Rp1.500")],
)
def test_format_rupiah(amount: int, formatted: str) -> None:
    assert format_rupiah(amount) == formatted


@given(AMOUNTS)
def test_format_rupiah_groups_digits_in_threes(amount: int) -> None:
    formatted = format_rupiah(amount)
    groups = formatted.removeprefix("Rp").split(".")
    assert "".join(groups) == str(amount)
    assert all(len(group) == 3 for group in groups[1:]) and 1 <= len(groups[0]) <= 3


@given(st.integers(min_value=0, max_value=3000), st.sampled_from(["id", "en"]))
def test_max_text_length_needed_matches_brute_force(bound: int, language: str) -> None:
    longest = max(len(amount_in_words(n, language)) for n in range(bound + 1))
    assert max_text_length_needed(language, bound) == longest


@given(AMOUNTS, st.sampled_from(["id", "en"]))
def test_no_amount_up_to_the_bound_is_longer_than_the_bound_says(amount: int, language: str) -> None:
    assert len(amount_in_words(amount, language)) <= max_text_length_needed(language, amount)
    assert len(announcement_text(amount, language)) <= max_text_length_needed(language, amount, with_prefix=True)
