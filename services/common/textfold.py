"""Unicode-correct folding of people's names, in their own script and in Latin letters.

``fold_name`` keeps every script's letters (NFKC, case-folded), so Анна Петрова stays
Cyrillic and two different Arabic names never fold to the same text. Only marks that a
keyboard or a police system commonly leaves off are dropped: diacritics on Latin letters
(Zoë, Łukasz, Ştefan, Öztürk) and Arabic short-vowel marks. ``latin_name`` transliterates
the folded text with anyascii to lower-case ASCII, to compare a name across scripts
(Мария -> mariya, 王小明 -> wangxiaoming, محمد -> mhmd).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from anyascii import anyascii

# Latin letters that Unicode decomposition leaves whole but a keyboard writes differently.
_UNDECOMPOSED = str.maketrans({"\u0131": "i", "ł": "l", "ø": "o", "đ": "d", "ß": "ss",
                               "æ": "ae", "œ": "oe", "þ": "th", "ð": "d", "ħ": "h"})
_SEPARATORS = re.compile(r"[\s\-\u2010\u2011\u2013\u2014_/.,]+")
_ARABIC_MARKS = re.compile("[\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")  # harakat, tatweel
_NOT_ASCII_LETTER = re.compile(r"[^a-z ]+")


@lru_cache(maxsize=4_096)
def _is_latin(char: str) -> bool:
    return unicodedata.name(char, "").startswith("LATIN")


def _drop_latin_marks(text: str) -> str:
    """Drop combining marks that sit on a Latin letter; keep every other script's marks."""
    kept: list[str] = []
    base_is_latin = False
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.combining(char):
            if not base_is_latin:
                kept.append(char)
            continue
        base_is_latin = _is_latin(char)
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


@lru_cache(maxsize=262_144)
def fold_name(text: str) -> str:
    """Fold a name to its letters in its own script, lower-case, single-spaced."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _drop_latin_marks(folded).translate(_UNDECOMPOSED)
    folded = _ARABIC_MARKS.sub("", _SEPARATORS.sub(" ", folded))
    letters = "".join(ch for ch in folded
                      if ch == " " or unicodedata.category(ch)[0] in "LM")
    return " ".join(letters.split())


@lru_cache(maxsize=262_144)
def latin_name(text: str) -> str:
    """Transliterate a folded name to lower-case ASCII letters and single spaces."""
    ascii_text = anyascii(fold_name(text)).lower()
    return " ".join(_NOT_ASCII_LETTER.sub("", _SEPARATORS.sub(" ", ascii_text)).split())


def is_latin_text(text: str) -> bool:
    """Tell whether every letter of a folded name is a plain ASCII letter."""
    return text.isascii()
