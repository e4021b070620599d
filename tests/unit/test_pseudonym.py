"""The child key: v2 tells every script's children apart, says its version, and finds v1."""

import re
from datetime import date

import pytest

from services.common.pseudonym import child_key, child_key_v1, lookup_keys, v1_names_this_child

SECRET = "s" * 40
BORN = date(2016, 3, 2)
NON_LATIN = [("Анна", "Петрова"), ("Мария", "Иванова"),       # Cyrillic
             ("محمد", "علي"), ("فاطمة", "حسن"),               # Arabic
             ("عمران", "خان"), ("ثناء", "چوہدری"),            # Urdu
             ("小明", "王"), ("华", "李")]                      # Chinese


def key(given: str, family: str, born: date = BORN, secret: str = SECRET) -> str:
    return child_key(secret, given_name=given, family_name=family, date_of_birth=born)


def test_a_new_key_says_it_is_v2_and_fits_where_a_v1_key_did() -> None:
    new = key("Amelia", "Khan")
    assert re.fullmatch(r"v2:[0-9a-f]{61}", new)
    old = child_key_v1(SECRET, given_name="Amélia", family_name="Khan", date_of_birth=BORN)
    assert old == "9bec90caad6c24b0a97a6f67bd7c595a0ecace836f4f6f12a05fd1a7bf469e77"  # as before
    assert len(new) == len(old) == 64 and new[3:] != old[:61]


def test_non_latin_children_born_on_one_day_get_different_keys() -> None:
    assert len({key(given, family) for given, family in NON_LATIN}) == len(NON_LATIN)
    v1 = {child_key_v1(SECRET, given_name=g, family_name=f, date_of_birth=BORN)
          for g, f in NON_LATIN}
    assert len(v1) == 1  # the bug v2 fixes: v1 folded them all to nothing


@pytest.mark.parametrize(("written", "plain"), [
    (("Łukasz", "Wąsik-Żółć"), ("Lukasz", "Wasik Zolc")),        # Polish
    (("Ştefan", "Ţăranu"), ("Stefan", "Taranu")),                # Romanian, cedilla
    (("Ștefan", "Țăranu"), ("STEFAN", "taranu")),                # Romanian, comma below
    (("Şükrü", "Öztürk"), ("Sukru", "Ozturk")),                  # Turkish
    (("İbrahim", "Y\u0131ld\u0131z"), ("Ibrahim", "Yildiz")),    # Turkish dotted/dotless i
])
def test_diacritics_do_not_change_the_key(written: tuple[str, str],
                                          plain: tuple[str, str]) -> None:
    assert key(*written) == key(*plain)


def test_spaces_and_hyphens_are_not_letters_but_the_rest_counts() -> None:
    assert key("Mary-Jane", "O'Brien") == key("Mary Jane", "OBrien") == key("MaryJane", "obrien")
    assert key("Mary", "Jane") != key("Maryjane", "")  # the name parts stay apart
    assert key("Amelia", "Khan") != key("Amelia", "Khan", date(2016, 3, 3))
    assert key("Amelia", "Khan") != key("Amelia", "Khan", secret="t" * 40)


def test_lookup_searches_v1_only_where_it_names_this_child_alone() -> None:
    keys = lookup_keys(SECRET, given_name="Amélia", family_name="Khan", date_of_birth=BORN)
    assert keys == {"v2": key("Amelia", "Khan"), "v1": child_key_v1(
        SECRET, given_name="Amelia", family_name="Khan", date_of_birth=BORN)}
    assert list(lookup_keys(SECRET, given_name="Łukasz", family_name="Søren",
                            date_of_birth=BORN)) == ["v2", "v1"]
    for given, family in [*NON_LATIN, ("Анна", "Smith"), ("Anna", "Петрова-Smith")]:
        assert not v1_names_this_child(given, family)
        assert lookup_keys(SECRET, given_name=given, family_name=family,
                           date_of_birth=BORN) == {"v2": key(given, family)}
