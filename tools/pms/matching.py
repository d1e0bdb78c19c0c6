"""Compare what a caller says with what the PMS stores: codes and last names.

Speech-to-text rarely reproduces accents, apostrophes or dashes, so both sides are folded to
plain lowercase letters before comparing ("O'Brien" = "obrien", "García" = "GARCIA",
"Müller" = "Mueller" = "Muller").
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "code_candidates",
    "code_from_speech",
    "last_name_from_speech",
    "name_variants",
    "names_match",
    "normalize_code",
]

# Letters that Unicode does not decompose into a base letter plus an accent.
_SPECIAL_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ł": "l",
        "ı": "i",
    }
)
_GERMAN_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
_SPOKEN_SEPARATORS = re.compile(r"\b(dash|hyphen|minus|slash)\b", re.IGNORECASE)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_code(code: str) -> str:
    """Upper-case letters and digits only: 'hvl - 4821' and 'HVL dash 4821' → 'HVL4821'."""
    without_words = _SPOKEN_SEPARATORS.sub(" ", code)
    folded = _strip_accents(without_words).upper()
    return "".join(ch for ch in folded if ch.isascii() and ch.isalnum())


def code_candidates(code: str) -> tuple[str, ...]:
    """The code as said (trimmed) and its normalised form, for backends that match exactly."""
    trimmed = " ".join(code.split())
    normalized = normalize_code(code)
    return tuple(dict.fromkeys(c for c in (trimmed, trimmed.upper(), normalized) if c))


def name_variants(name: str) -> set[str]:
    """Folded spellings of a name: plain letters, plus the German 'ue' spelling of umlauts."""
    lowered = unicodedata.normalize("NFC", name).casefold().translate(_SPECIAL_LETTERS)
    variants = set()
    for spelling in (lowered, lowered.translate(_GERMAN_UMLAUTS)):
        letters = "".join(ch for ch in _strip_accents(spelling) if ch.isalpha())
        if letters:
            variants.add(letters)
    return variants


def names_match(said: str, stored: str) -> bool:
    """True when the caller's last name (or full name ending in it) is the stored last name."""
    stored_variants = name_variants(stored)
    if not stored_variants or not said.strip():
        return False
    if name_variants(said) & stored_variants:
        return True
    # "Hans Müller" said in full: compare the trailing words with the stored last name.
    words = said.split()
    for start in range(1, len(words)):
        if name_variants(" ".join(words[start:])) & stored_variants:
            return True
    return False


_DIGIT_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
# Words around a spoken code or name; single letters stay, since codes are often spelled.
# fmt: off
_FILLERS = frozenset({
    "am", "and", "booking", "code", "confirmation", "er", "family", "i'm", "is", "it", "it's",
    "its", "last", "my", "name", "number", "of", "ok", "okay", "please", "reference",
    "reservation", "so", "spelled", "spelt", "sure", "surname", "that's", "thats", "the", "um",
    "uh", "yeah", "yes",
})
# fmt: on


def _spoken_words(text: str) -> list[str]:
    cleaned = text.replace("\u2019", "'").replace(",", " ").replace(".", " ").replace(":", " ")
    return [w for w in cleaned.split() if w.casefold() not in _FILLERS]


def code_from_speech(text: str) -> str:
    """A confirmation code from an utterance: 'it's H V L dash three three four two' → 'HVL3342'."""
    words = [_DIGIT_WORDS.get(w.casefold(), w) for w in _spoken_words(text)]
    return normalize_code(" ".join(words))


def last_name_from_speech(text: str) -> str:
    """The name part of 'my last name is García, G A R C I A' ('García G A R C I A')."""
    return " ".join(_spoken_words(text))
