"""Name, address and postcode normalisation shared by blocking and scoring."""

from __future__ import annotations

import re
from functools import lru_cache

import jellyfish
from nicknames import NickNamer

from services.common.textfold import fold_name, latin_name

MAX_NAME_TOKENS = 4  # "Mary Jane Louise Anne": more words are spelt in the joined form only
_VOWELS = re.compile(r"[aeiouyw]+")
_HOUSE_NUMBER = re.compile(r"\d+[a-z]?\b")
_SOUNDEX_GROUP = str.maketrans("abcdefghijklmnopqrstuvwxyz", "01230120022455012623010202")
_STREET_WORDS = {
    "road": "rd", "street": "st", "avenue": "ave", "lane": "ln", "close": "cl",
    "drive": "dr", "crescent": "cres", "gardens": "gdns", "court": "ct", "place": "pl",
    "terrace": "ter", "grove": "gr", "square": "sq", "walk": "wk", "mount": "mt",
}
# Common British short forms the (US-centred) nickname list lacks; forms that are popular
# names in their own right (Mia, Liam) are left out, as twins may bear both.
_UK_NICKNAMES: dict[str, tuple[str, ...]] = {
    "alfred": ("alfie", "alf"), "oliver": ("ollie", "olly"), "archibald": ("archie",),
    "frederick": ("freddie", "freddy", "fred"), "charles": ("charlie", "chas"),
    "charlotte": ("charlie", "lottie", "lotte"), "isabella": ("izzy", "bella", "issy"),
    "isabelle": ("izzy", "belle", "issy"), "eleanor": ("ellie", "nell", "nora"),
    "matilda": ("tilly", "tilda"), "amelia": ("millie", "milly"),
    "mohammed": ("mo",), "muhammad": ("mo",), "edward": ("teddy", "ted", "eddie"),
    "theodore": ("theo", "teddy"), "joshua": ("josh",), "james": ("jamie", "jim", "jimmy"),
    "alexander": ("alex", "sandy"), "alexandra": ("alex", "lexi", "sasha"),
    "benjamin": ("ben", "benny"), "daniel": ("dan", "danny"), "zachary": ("zac", "zack"),
    "nathan": ("nate",), "maximilian": ("max",), "maxwell": ("max",),
    "sophia": ("sophie",), "grace": ("gracie",), "rose": ("rosie",), "evelyn": ("evie",),
    "madison": ("maddie",), "madeleine": ("maddie",), "thomas": ("tom", "tommy"),
    "william": ("will", "billy", "bill"), "harrison": ("harry",),
    "henry": ("harry", "hal"), "elizabeth": ("lizzie", "beth", "libby"),
    "jessica": ("jess", "jessie"), "rebecca": ("becky", "becca"), "samuel": ("sam", "sammy"),
    "jacob": ("jake",), "joseph": ("joe", "joey"), "lucas": ("luke",), "florence": ("flo",),
    "penelope": ("penny",), "victoria": ("tori", "vicky"), "katherine": ("kate", "katie"),
    "catherine": ("kate", "katie", "cath"), "abigail": ("abi", "abby"),
}


# Fold to lower-case letters of any script and single spaces (Zoë -> zoe, O'Brien -> obrien,
# Анна -> анна): services/common/textfold.py is the one home of that folding.
fold_text = fold_name


@lru_cache(maxsize=262_144)
def latin_form(token: str) -> str:
    """Return a folded name form in Latin letters (itself when it is Latin already)."""
    return token if token.isascii() else latin_name(token).replace(" ", "")


@lru_cache(maxsize=262_144)
def consonant_skeleton(token: str) -> str:
    """Return a Latin form's consonants, doubles collapsed and a final h dropped.

    Arabic and Urdu script write few vowels, so محمد transliterates to mhmd while a school
    writes Mohammed: both reduce to mhmd.
    """
    consonants = _VOWELS.sub("", latin_form(token))
    collapsed = "".join(ch for i, ch in enumerate(consonants) if i == 0 or consonants[i - 1] != ch)
    return collapsed[:-1] if len(collapsed) > 2 and collapsed.endswith("h") else collapsed


@lru_cache(maxsize=262_144)
def writes_few_vowels(token: str) -> bool:
    """Tell whether a folded name form is in a script that leaves vowels out (Arabic, Hebrew)."""
    return not token.isascii() and any(
        "\u0590" <= ch <= "\u06ff" or "\u0750" <= ch <= "\u08ff" for ch in token)


@lru_cache(maxsize=262_144)
def name_forms(text: str) -> tuple[str, ...]:
    """Return the folded tokens of a name followed by its joined form when it has several.

    At most MAX_NAME_TOKENS tokens count: a real name has a few, and every token multiplies
    the blocking keys and the comparisons a report costs (bench/match_hostile.py measures a
    name of fifty words). The joined form still spells the whole name."""
    tokens = tuple(token for token in fold_text(text).split() if token)
    if len(tokens) > MAX_NAME_TOKENS:
        return (*tokens[:MAX_NAME_TOKENS], "".join(tokens))
    if len(tokens) > 1:
        return (*tokens, "".join(tokens))
    return tokens


@lru_cache(maxsize=262_144)
def name_code(token: str) -> int:
    """Return a phonetic blocking code: Soundex with the first letter coded like the rest."""
    if not token:
        return 0
    latin = latin_form(token)
    if not latin:
        return 0
    code = jellyfish.soundex(latin)
    return int(latin[0].translate(_SOUNDEX_GROUP) + code[1:])


@lru_cache(maxsize=1)
def _nicknamer() -> NickNamer:
    """Load the nickname table once."""
    return NickNamer()


@lru_cache(maxsize=65_536)
def nickname_relatives(token: str) -> frozenset[str]:
    """Return the names that are a nickname of, or a formal name for, the given token."""
    namer = _nicknamer()
    relatives = set(namer.nicknames_of(token)) | set(namer.canonicals_of(token))
    relatives.update(_UK_NICKNAMES.get(token, ()))
    relatives.update(formal for formal, nicks in _UK_NICKNAMES.items() if token in nicks)
    relatives.discard(token)
    return frozenset(relatives)


@lru_cache(maxsize=262_144)
def are_nicknames(first: str, second: str) -> bool:
    """Tell whether two folded given names are nickname forms of each other."""
    first_relatives = nickname_relatives(first)
    if second in first_relatives:
        return True
    second_relatives = nickname_relatives(second)
    return first in second_relatives or not first_relatives.isdisjoint(second_relatives)


def normalise_postcode(text: str) -> str:
    """Return a postcode upper-cased without spaces ('' when absent)."""
    return "".join(text.split()).upper()


def postcode_outward(postcode: str) -> str:
    """Return the outward code (district) of a postcode, spaced or not ('' when absent).

    A full postcode's inward code is its last three characters; shorter text (five at the
    least in full) is taken to be the outward code alone, as a report may give.
    """
    compact = normalise_postcode(postcode)
    return compact[:-3] if len(compact) >= 5 else compact


@lru_cache(maxsize=262_144)
def split_address(line1: str) -> tuple[str, str]:
    """Split an address line into (house numbers, normalised street words)."""
    numbers = " ".join(_HOUSE_NUMBER.findall(line1.lower()))
    folded = fold_text(_HOUSE_NUMBER.sub(" ", line1.lower()))
    words = [_STREET_WORDS.get(word, word) for word in folded.split()]
    return numbers, " ".join(words)
