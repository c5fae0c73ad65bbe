"""What the soundbox says: amounts in words, clip names, and the announcement shaped for a device model."""

from __future__ import annotations

from string import Formatter
from typing import Literal

from qris_soundbox.core.errors import ValidationFailed
from qris_soundbox.core.schemas import Value

SUPPORTED_LANGUAGES = ("id", "en")
MAX_SPEAKABLE_AMOUNT = 999_999_999_999_999  # 999 triliun: the largest scale word we speak
# Bank Indonesia caps one QRIS payment at Rp10.000.000, so config-time checks size text for it.
DEFAULT_MAX_ANNOUNCED_AMOUNT = 10_000_000
AMOUNT_WORDS_PLACEHOLDER = "amount_words"

AnnouncementFormat = Literal["amount_only", "text", "clips"]


class _CannotSay(ValidationFailed):
    # 422: the request is well-formed, but the model cannot say it.
    status = 422


class UnsupportedLanguage(_CannotSay):
    code = "unsupported_language"


class AmountNotSpeakable(_CannotSay):
    code = "amount_not_speakable"


class AnnouncementTooLong(_CannotSay):
    code = "announcement_too_long"


class InvalidTextTemplate(_CannotSay):
    code = "invalid_text_template"


class AnnouncementCapabilities(Value, kw_only=True, frozen=True):
    """What a device model can do with an announcement (the device-models registry supplies it)."""

    screen: bool
    languages: list[str]
    announcement_format: AnnouncementFormat
    max_text_length: int | None = None


class AnnouncementDisplay(Value, kw_only=True, frozen=True):
    amount: int
    merchant_name: str
    formatted_amount: str  # "Rp25.000"


class Announcement(Value, kw_only=True, frozen=True, omit_defaults=True):
    """The payment downlink's ``announcement`` (SPEC §10); absent parts are omitted on the wire."""

    format: AnnouncementFormat
    language: str
    amount: int
    text: str | None = None
    clips: list[str] | None = None
    display: AnnouncementDisplay | None = None


# --------------------------------------------------------------------------- number words

_ID_DIGITS = ("", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan")
_ID_SCALES = ("", "ribu", "juta", "miliar", "triliun")

_EN_ONES = (
    "", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_EN_SCALES = ("", "thousand", "million", "billion", "trillion")

_PREFIX = {"id": "Pembayaran QRIS diterima, ", "en": "QRIS payment received, "}
_PREFIX_CLIP = {"id": "pembayaran_qris_diterima", "en": "qris_payment_received"}


def _id_below_thousand(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = []
    if hundreds == 1:
        words.append("seratus")
    elif hundreds:
        words += [_ID_DIGITS[hundreds], "ratus"]
    if rest == 10:
        words.append("sepuluh")
    elif rest == 11:
        words.append("sebelas")
    elif 12 <= rest <= 19:
        words += [_ID_DIGITS[rest - 10], "belas"]
    else:
        tens, ones = divmod(rest, 10)
        if tens:
            words += [_ID_DIGITS[tens], "puluh"]
        if ones:
            words.append(_ID_DIGITS[ones])
    return words


def _id_group(value: int, scale: int) -> list[str]:
    # "seribu" only for exactly one thousand; one million and up say "satu juta".
    if scale == 1 and value == 1:
        return ["seribu"]
    return _id_below_thousand(value) + ([_ID_SCALES[scale]] if scale else [])


def _en_below_thousand(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = [_EN_ONES[hundreds], "hundred"] if hundreds else []
    if 0 < rest < 20:
        words.append(_EN_ONES[rest])
    elif rest:
        tens, ones = divmod(rest, 10)
        words.append(f"{_EN_TENS[tens]}-{_EN_ONES[ones]}" if ones else _EN_TENS[tens])
    return words


def _en_group(value: int, scale: int) -> list[str]:
    return _en_below_thousand(value) + ([_EN_SCALES[scale]] if scale else [])


_GROUP_WORDS = {"id": _id_group, "en": _en_group}
_ZERO = {"id": "nol", "en": "zero"}


def _groups(amount: int) -> list[tuple[int, int]]:
    """Nonzero base-1000 groups, most significant first, as (value, scale index)."""
    groups = []
    scale = 0
    while amount:
        amount, value = divmod(amount, 1000)
        if value:
            groups.append((value, scale))
        scale += 1
    return groups[::-1]


def _check_language(language: str) -> None:
    if language not in SUPPORTED_LANGUAGES:
        raise UnsupportedLanguage(
            f"the platform cannot speak language {language!r}",
            details={"language": language, "supported": list(SUPPORTED_LANGUAGES)},
        )


def _check_amount(amount: int) -> None:
    if type(amount) is not int or not 0 <= amount <= MAX_SPEAKABLE_AMOUNT:
        raise AmountNotSpeakable(
            f"amounts are spoken from 0 to {MAX_SPEAKABLE_AMOUNT} rupiah",
            details={"amount": amount, "max": MAX_SPEAKABLE_AMOUNT},
        )


def amount_word_list(amount: int, language: str = "id") -> list[str]:
    """The amount in words, one list item per spoken word, ending with "rupiah"."""
    _check_language(language)
    _check_amount(amount)
    if amount == 0:
        return [_ZERO[language], "rupiah"]
    words = [word for value, scale in _groups(amount) for word in _GROUP_WORDS[language](value, scale)]
    return words + ["rupiah"]


def amount_in_words(amount: int, language: str = "id") -> str:
    """25000 → "dua puluh lima ribu rupiah" (id) / "twenty-five thousand rupiah" (en)."""
    return " ".join(amount_word_list(amount, language))


def announcement_text(amount: int, language: str = "id") -> str:
    """The default sentence: "Pembayaran QRIS diterima, dua puluh lima ribu rupiah"."""
    words = amount_in_words(amount, language)
    return _PREFIX[language] + words


def announcement_clips(amount: int, language: str = "id", *, with_prefix: bool = True) -> list[str]:
    """The sentence as clip names: ["pembayaran_qris_diterima", "dua", "puluh", "lima", "ribu", "rupiah"]."""
    # A hyphenated English ten ("twenty-five") is two recordings, which keeps the set at 35 clips.
    clips = [clip for word in amount_word_list(amount, language) for clip in word.split("-")]
    return [_PREFIX_CLIP[language], *clips] if with_prefix else clips


def clip_vocabulary(language: str) -> set[str]:
    """Every clip name an announcement in ``language`` can use: the set a vendor records once."""
    _check_language(language)
    if language == "id":
        words = {w for w in _ID_DIGITS if w}
        words |= {"nol", "sepuluh", "sebelas", "belas", "puluh", "ratus", "seratus", "seribu"}
        words |= {s for s in _ID_SCALES if s}
    else:
        words = {w for w in _EN_ONES if w} | {w for w in _EN_TENS if w} | {"zero", "hundred"}
        words |= {s for s in _EN_SCALES if s}
    return words | {"rupiah", _PREFIX_CLIP[language]}


def format_rupiah(amount: int) -> str:
    """25000 → "Rp25.000" (Indonesian groups thousands with '.')."""
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp{abs(amount):,}".replace(",", ".")


# --------------------------------------------------------------------------- capability resolver


def _template_fields(template: str) -> list[str]:
    # A format spec or conversion ("{amount_words:>40}") would make the rendered length
    # unpredictable at configuration time, so such a field counts as a foreign placeholder.
    try:
        parts = list(Formatter().parse(template))
    except ValueError as exc:
        raise InvalidTextTemplate(f"the text template is malformed: {exc}", details={"template": template}) from exc
    return [
        name if not spec and conversion is None else f"{name}!{conversion}:{spec}"
        for _, name, spec, conversion in parts
        if name is not None
    ]


def check_text_template(template: str) -> None:
    """A template is free text with a plain ``{amount_words}`` (required) and no other placeholder."""
    fields = _template_fields(template)
    if AMOUNT_WORDS_PLACEHOLDER not in fields or any(name != AMOUNT_WORDS_PLACEHOLDER for name in fields):
        raise InvalidTextTemplate(
            "the text template must contain {amount_words} and no other placeholder",
            details={"template": template, "placeholders": fields},
        )


def _sentence(amount: int, language: str, text_template: str | None) -> str:
    if text_template is None:
        return announcement_text(amount, language)
    check_text_template(text_template)
    return text_template.format(amount_words=amount_in_words(amount, language))


def max_text_length_needed(
    language: str,
    max_amount: int = DEFAULT_MAX_ANNOUNCED_AMOUNT,
    *,
    with_prefix: bool = False,
    text_template: str | None = None,
) -> int:
    """The longest text any amount in ``0..max_amount`` produces.

    Without a prefix it is the words alone — what the shaper falls back to, so the least a
    model must accept; ``with_prefix`` measures the full default sentence (or ``text_template``).
    """
    _check_language(language)
    _check_amount(max_amount)
    words = _longest_words_length(language, max_amount)
    if text_template is not None:
        check_text_template(text_template)
        placeholders = _template_fields(text_template).count(AMOUNT_WORDS_PLACEHOLDER)
        return len(text_template.format(amount_words="")) + placeholders * words
    return words + (len(_PREFIX[language]) if with_prefix else 0)


def _longest_words_length(language: str, max_amount: int) -> int:
    # The words' length is additive per nonzero base-1000 group (its segment plus one joining
    # space), so a digit DP over the groups finds the longest amount ≤ max_amount without
    # enumerating up to 10**15 amounts. Zero ("nol rupiah") is the one amount outside that sum.
    group_words = _GROUP_WORDS[language]

    def segment(value: int, scale: int) -> int:
        return len(" ".join(group_words(value, scale))) + 1 if value else 0

    bound_groups = [(max_amount // 1000**scale) % 1000 for scale in range(len(_ID_SCALES))]
    at_bound = 0  # length of the groups so far when they equal the bound's leading groups
    below_bound: int | None = None  # best length so far once the amount is already smaller
    for scale in reversed(range(len(bound_groups))):
        limit = bound_groups[scale]
        options = []
        if below_bound is not None:
            options.append(below_bound + max(segment(v, scale) for v in range(1000)))
        if limit:
            options.append(at_bound + max(segment(v, scale) for v in range(limit)))
        below_bound = max(options) if options else None
        at_bound += segment(limit, scale)
    longest = max(at_bound, below_bound or 0)
    zero = len(amount_in_words(0, language))
    return max(zero, longest - 1 + len(" rupiah")) if longest else zero


def _check_model_language(capabilities: AnnouncementCapabilities, language: str) -> None:
    _check_language(language)
    if language not in capabilities.languages:
        raise UnsupportedLanguage(
            f"this device model cannot announce in {language!r}",
            details={"language": language, "supported": list(capabilities.languages)},
        )


def check_can_announce(
    capabilities: AnnouncementCapabilities,
    language: str,
    *,
    max_amount: int = DEFAULT_MAX_ANNOUNCED_AMOUNT,
    text_template: str | None = None,
) -> None:
    """Refuse, at configuration time, a language or text limit the model cannot honour at payment time."""
    _check_model_language(capabilities, language)
    if text_template is not None:
        check_text_template(text_template)
    if capabilities.announcement_format == "amount_only" or capabilities.max_text_length is None:
        return
    needed = max_text_length_needed(language, max_amount)
    if capabilities.max_text_length < needed:
        raise AnnouncementTooLong(
            f"amounts up to {max_amount} need {needed} characters of text;"
            f" the model takes {capabilities.max_text_length}",
            details={"needed": needed, "max_text_length": capabilities.max_text_length, "max_amount": max_amount},
        )


def shape_announcement(
    capabilities: AnnouncementCapabilities,
    *,
    language: str,
    amount: int,
    merchant_name: str,
    text_template: str | None = None,
) -> Announcement:
    """The announcement for one payment, shaped for the model's format, languages, text limit and screen."""
    _check_model_language(capabilities, language)
    _check_amount(amount)
    display = (
        AnnouncementDisplay(amount=amount, merchant_name=merchant_name, formatted_amount=format_rupiah(amount))
        if capabilities.screen
        else None
    )
    fmt = capabilities.announcement_format
    if fmt == "amount_only":
        return Announcement(format=fmt, language=language, amount=amount, display=display)
    text, with_prefix = _sentence(amount, language, text_template), True
    limit = capabilities.max_text_length
    if limit is not None and len(text) > limit:
        text, with_prefix = amount_in_words(amount, language), False
        if len(text) > limit:
            raise AnnouncementTooLong(
                f"{amount} rupiah in words needs {len(text)} characters; the model takes {limit}",
                details={"needed": len(text), "max_text_length": limit, "amount": amount},
            )
    clips = announcement_clips(amount, language, with_prefix=with_prefix) if fmt == "clips" else None
    return Announcement(format=fmt, language=language, amount=amount, text=text, clips=clips, display=display)
