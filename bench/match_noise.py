"""How a police record of a child differs from the school's: the benchmark's corruption.

Harder than keying slips alone, in the manner of public record-linkage test corpora: one
or two typos anywhere in a name (the first letter too), OCR and phonetic confusions,
names in the other order, a date of birth with a day/month swap, a slipped digit or the
wrong year, an address with a typo, another house number or an old address, a postcode
one character out, fields left empty; and a name in another script written natively or
in one of its Latin spellings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

LETTERS = "abcdefghijklmnopqrstuvwxyz"
OCR = (("m", "rn"), ("rn", "m"), ("cl", "d"), ("d", "cl"), ("u", "v"), ("o", "c"),
       ("h", "b"), ("e", "c"), ("i", "l"), ("n", "ri"))
PHONETIC = (("ph", "f"), ("f", "ph"), ("ck", "k"), ("k", "c"), ("c", "k"), ("ie", "y"),
            ("y", "ie"), ("ou", "ow"), ("ae", "e"), ("ll", "l"), ("l", "ll"), ("tt", "t"),
            ("s", "z"), ("z", "s"), ("ee", "i"), ("i", "ee"), ("th", "t"))


@dataclass(frozen=True)
class Noise:
    """How often each kind of difference appears, per report."""

    given_typo: float = 0.10
    family_typo: float = 0.10
    second_typo: float = 0.25     # of the names with a typo, how many get a second
    confusion: float = 0.04       # an OCR or phonetic confusion, per name
    swapped_names: float = 0.02
    dob_error: float = 0.10
    address_typo: float = 0.08
    other_house: float = 0.03
    postcode_slip: float = 0.04
    wrong_gender: float = 0.01


def typo(rng: random.Random, word: str) -> str:
    """One keying slip anywhere in a word: substitute, drop, insert or swap letters."""
    if len(word) < 3:
        return word
    position = rng.randrange(len(word) - 1)
    letter = rng.choice(LETTERS)
    kind = rng.randrange(4)
    if kind == 0:
        changed = word[:position] + letter + word[position + 1:]
    elif kind == 1:
        changed = word[:position] + word[position + 1:]
    elif kind == 2:
        changed = word[:position] + letter + word[position:]
    else:
        changed = word[:position] + word[position + 1] + word[position] + word[position + 2:]
    return changed[:1].upper() + changed[1:] if word[:1].isupper() else changed


def confuse(rng: random.Random, word: str) -> str:
    """An OCR or phonetic confusion, where the word has one."""
    lower = word.lower()
    found = [(a, b) for a, b in OCR + PHONETIC if a in lower]
    if not found:
        return word
    old, new = rng.choice(found)
    changed = lower.replace(old, new, 1)
    return changed.capitalize() if word[:1].isupper() else changed


def misspell(rng: random.Random, word: str, chance: float, noise: Noise) -> str:
    """Apply a typo (sometimes two) with a chance, and a confusion with noise's chance."""
    if rng.random() < chance:
        word = typo(rng, word)
        if rng.random() < noise.second_typo:
            word = typo(rng, word)
    return confuse(rng, word) if rng.random() < noise.confusion else word


def slip_dob(rng: random.Random, born: date) -> date:
    """A date of birth with a day/month swap, a one-digit slip, the year out or a wild error."""
    draw = rng.random()
    if draw < 0.3 and born.day <= 12 and born.day != born.month:
        return date(born.year, born.day, born.month)
    if draw < 0.7:
        digits = born.strftime("%Y%m%d")
        for _ in range(20):
            position = rng.randrange(2, 8)
            slipped = digits[:position] + str(rng.randrange(10)) + digits[position + 1:]
            try:
                candidate = date(int(slipped[:4]), int(slipped[4:6]), int(slipped[6:]))
            except ValueError:
                continue
            if candidate != born:
                return candidate
    if draw < 0.85:
        try:
            return born.replace(year=born.year + rng.choice((-1, 1)))
        except ValueError:
            return born + timedelta(days=365)
    return born + timedelta(days=rng.choice((-1, 1)) * rng.randint(40, 700))


def slip_postcode(rng: random.Random, postcode: str) -> str:
    """One character of a postcode keyed wrong."""
    compact = [ch for ch in postcode if ch != " "]
    position = rng.randrange(len(compact))
    compact[position] = rng.choice("0123456789" if compact[position].isdigit() else
                                   "ABDEFGHJLNPQRSTUWXYZ")
    text = "".join(compact)
    return f"{text[:-3]} {text[-3:]}"


def slip_address(rng: random.Random, line1: str, noise: Noise) -> str:
    """An address line with a typo in the street or another house number."""
    number, _, street = line1.partition(" ")
    if rng.random() < noise.other_house and number.isdigit():
        number = str(max(1, int(number) + rng.choice((-2, -1, 1, 2, 10))))
    if rng.random() < noise.address_typo:
        street = typo(rng, street)
    return f"{number} {street}"
