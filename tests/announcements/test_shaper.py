"""The capability resolver: one payment's announcement shaped per model format, language, text limit and screen."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qris_soundbox.core.announcement import (
    DEFAULT_MAX_ANNOUNCED_AMOUNT,
    Announcement,
    AnnouncementCapabilities,
    AnnouncementDisplay,
    AnnouncementTooLong,
    InvalidTextTemplate,
    UnsupportedLanguage,
    amount_in_words,
    check_can_announce,
    max_text_length_needed,
    shape_announcement,
)

# The two built-in models as SPEC §9/§10 describe them.
GENERIC_AUDIO = AnnouncementCapabilities(screen=False, languages=["id", "en"], announcement_format="clips")
GENERIC_SCREEN = AnnouncementCapabilities(screen=True, languages=["id", "en"], announcement_format="clips")
SENTENCE = "Pembayaran QRIS diterima, dua puluh lima ribu rupiah"
CLIPS = ["pembayaran_qris_diterima", "dua", "puluh", "lima", "ribu", "rupiah"]


def model(**overrides: object) -> AnnouncementCapabilities:
    return msgspec.structs.replace(GENERIC_AUDIO, **overrides)


def shape(
    capabilities: AnnouncementCapabilities, amount: int = 25000, language: str = "id", **kwargs: object
) -> Announcement:
    return shape_announcement(capabilities, language=language, amount=amount, merchant_name="Warung Bu Sri", **kwargs)


def test_generic_audio_gets_text_and_clips() -> None:
    assert shape(GENERIC_AUDIO) == Announcement(format="clips", language="id", amount=25000, text=SENTENCE, clips=CLIPS)


def test_generic_screen_adds_amount_and_merchant_name_for_its_screen() -> None:
    announcement = shape(GENERIC_SCREEN)
    assert (announcement.text, announcement.clips) == (SENTENCE, CLIPS)
    assert announcement.display == AnnouncementDisplay(
        amount=25000, merchant_name="Warung Bu Sri", formatted_amount="Rp25.000"
    )


def test_amount_only_sends_neither_text_nor_clips() -> None:
    announcement = shape(model(announcement_format="amount_only", max_text_length=5))
    assert announcement == Announcement(format="amount_only", language="id", amount=25000)


def test_text_format_sends_text_only() -> None:
    announcement = shape(model(announcement_format="text"), language="en")
    assert announcement.text == "QRIS payment received, twenty-five thousand rupiah"
    assert announcement.clips is None


def test_absent_parts_are_left_out_of_the_downlink_json() -> None:
    encoded = msgspec.json.decode(msgspec.json.encode(shape(model(announcement_format="text"))))
    assert encoded == {"format": "text", "language": "id", "amount": 25000, "text": SENTENCE}


def test_a_sentence_over_the_limit_falls_back_to_the_amount_words() -> None:
    announcement = shape(model(max_text_length=len(SENTENCE) - 1))
    assert announcement.text == "dua puluh lima ribu rupiah"
    assert announcement.clips == CLIPS[1:]  # the clips stay the words of the sentence actually sent


def test_a_sentence_exactly_at_the_limit_is_kept_whole() -> None:
    assert shape(model(max_text_length=len(SENTENCE))).text == SENTENCE


def test_words_over_the_limit_are_refused() -> None:
    with pytest.raises(AnnouncementTooLong) as caught:
        shape(model(max_text_length=len("dua puluh lima ribu rupiah") - 1))
    assert caught.value.code == "announcement_too_long"


def test_a_language_the_model_lacks_is_refused() -> None:
    with pytest.raises(UnsupportedLanguage) as caught:
        shape(model(languages=["id"]), language="en")
    assert caught.value.code == "unsupported_language"
    assert caught.value.details["supported"] == ["id"]


def test_a_language_the_platform_cannot_speak_is_refused_even_if_the_model_lists_it() -> None:
    with pytest.raises(UnsupportedLanguage):
        shape(model(languages=["id", "jv"]), language="jv")


def test_a_text_template_changes_the_text_and_clips_keep_the_vocabulary() -> None:
    announcement = shape(GENERIC_AUDIO, text_template="Terima kasih! {amount_words}")
    assert announcement.text == "Terima kasih! dua puluh lima ribu rupiah"
    assert announcement.clips == CLIPS


@pytest.mark.parametrize(
    "template",
    [
        "no placeholder",
        "{amount_words} {merchant_name}",
        "{amount_words",
        "{0}",
        "{amount_words:>60}",
        "{amount_words!r}",
    ],
)
def test_a_malformed_template_is_refused(template: str) -> None:
    with pytest.raises(InvalidTextTemplate) as caught:
        shape(GENERIC_AUDIO, text_template=template)
    assert caught.value.code == "invalid_text_template"


# ---------------------------------------------------------------- configuration time


def test_check_can_announce_accepts_the_built_in_models() -> None:
    for capabilities in (GENERIC_AUDIO, GENERIC_SCREEN):
        for language in ("id", "en"):
            check_can_announce(capabilities, language)


def test_check_can_announce_refuses_a_language_the_model_lacks() -> None:
    with pytest.raises(UnsupportedLanguage):
        check_can_announce(model(languages=["en"]), "id")


def test_check_can_announce_refuses_a_text_limit_too_short_for_the_largest_amount() -> None:
    needed = max_text_length_needed("id", DEFAULT_MAX_ANNOUNCED_AMOUNT)
    check_can_announce(model(max_text_length=needed), "id")
    with pytest.raises(AnnouncementTooLong) as caught:
        check_can_announce(model(max_text_length=needed - 1), "id")
    assert caught.value.details["needed"] == needed


def test_check_can_announce_sizes_for_the_bound_it_is_given() -> None:
    short = model(max_text_length=len(amount_in_words(10_000)))
    with pytest.raises(AnnouncementTooLong):
        check_can_announce(short, "id")
    check_can_announce(short, "id", max_amount=10)


def test_check_can_announce_ignores_text_limits_for_amount_only_models() -> None:
    check_can_announce(model(announcement_format="amount_only", max_text_length=1), "id")


def test_check_can_announce_refuses_a_malformed_template() -> None:
    with pytest.raises(InvalidTextTemplate):
        check_can_announce(GENERIC_AUDIO, "id", text_template="hello")


@given(
    st.integers(min_value=0, max_value=DEFAULT_MAX_ANNOUNCED_AMOUNT),
    st.sampled_from(["id", "en"]),
    st.sampled_from(["text", "clips"]),
    st.integers(min_value=1, max_value=200),
)
def test_a_configuration_that_passes_never_fails_at_payment_time(
    amount: int, language: str, fmt: str, max_text_length: int
) -> None:
    capabilities = model(announcement_format=fmt, max_text_length=max_text_length)
    try:
        check_can_announce(capabilities, language)
    except AnnouncementTooLong:
        return
    announcement = shape(capabilities, amount=amount, language=language)
    assert announcement.text is not None and len(announcement.text) <= max_text_length


def test_max_text_length_needed_counts_the_prefix_or_the_template() -> None:
    words = max_text_length_needed("id", 25000)
    assert max_text_length_needed("id", 25000, with_prefix=True) == words + len("Pembayaran QRIS diterima, ")
    assert max_text_length_needed("id", 25000, text_template="Lunas: {amount_words}!") == words + len("Lunas: !")
