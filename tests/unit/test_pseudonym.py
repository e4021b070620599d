"""The child key: v2 tells every script's children apart, says its version, and finds v1;
its secret rotates (v3 keys name the secret) and every old key stays findable."""

import json
import re
from datetime import date

import pytest
from pydantic import ValidationError

from services.cli import main
from services.common.pseudonym import (
    KEY_PATTERN,
    BadChildKeySecrets,
    ChildKeySecrets,
    child_key,
    child_key_v1,
    child_key_v3,
    current_prefix,
    lookup_keys,
    v1_names_this_child,
)
from services.common.settings import Settings

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


ROTATED = ChildKeySecrets(SECRET, {"k2": "b" * 40, "k1": "a" * 40})


def test_a_rotated_secret_writes_v3_keys_that_name_it_and_fit_where_v2_did() -> None:
    new = child_key(ROTATED, given_name="Amelia", family_name="Khan", date_of_birth=BORN)
    assert new.startswith("v3:k2:") and len(new) == 64 and re.fullmatch(KEY_PATTERN, new)
    assert new == child_key_v3("b" * 40, "k2", given_name="Amélia", family_name="KHAN",
                               date_of_birth=BORN)
    assert ROTATED.current_version == "v3:k2" and current_prefix(ROTATED) == "v3:k2:"
    assert child_key(ChildKeySecrets(SECRET), given_name="Amelia", family_name="Khan",
                     date_of_birth=BORN) == key("Amelia", "Khan")  # no rotation: v2 as before
    for secret_id in ("k", "abcdefgh", "2027"):
        made = child_key_v3("c" * 40, secret_id, given_name="A", family_name="B",
                            date_of_birth=BORN)
        assert len(made) == 64 and re.fullmatch(KEY_PATTERN, made)
    assert not re.fullmatch(KEY_PATTERN, "v3:k2:" + "0" * 57)  # one digit short


def test_lookup_gives_the_key_under_every_secret_current_first() -> None:
    keys = lookup_keys(ROTATED, given_name="Amélia", family_name="Khan", date_of_birth=BORN)
    assert list(keys) == ["v3:k2", "v3:k1", "v2", "v1"]
    assert keys["v2"] == key("Amelia", "Khan")  # entries logged before any rotation
    assert keys["v1"] == child_key_v1(SECRET, given_name="Amelia", family_name="Khan",
                                      date_of_birth=BORN)
    assert keys["v3:k1"] == child_key_v3("a" * 40, "k1", given_name="Amelia",
                                         family_name="Khan", date_of_birth=BORN)
    assert len(set(keys.values())) == 4


def test_rotate_puts_a_new_random_secret_in_front_and_keeps_every_old_one() -> None:
    once = ChildKeySecrets(SECRET).rotate()
    assert list(once.rotated) == ["k1"] and len(once.rotated["k1"]) == 64
    twice = ChildKeySecrets.from_setting(SECRET, once.rotate().rotated_setting())
    assert list(twice.rotated) == ["k2", "k1"] and twice.rotated["k1"] == once.rotated["k1"]
    assert twice.rotated["k2"] != twice.rotated["k1"] and twice.original == SECRET
    assert "b" * 40 not in repr(ROTATED)


@pytest.mark.parametrize("setting", ['["k1"]', "k1=abc", '{"K1": "x"}', '{"k1": ""}',
                                     '{"k-1": "x"}', '{"abcdefghi": "x"}'])
def test_a_malformed_secrets_setting_fails_fast_naming_no_secret(setting: str) -> None:
    with pytest.raises(BadChildKeySecrets) as bad:
        ChildKeySecrets.from_setting(SECRET, setting)
    assert "abc" not in str(bad.value)


def test_the_settings_refuse_a_weak_rotated_secret_outside_development(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    strong = {"env": "test", "child_key_secret": SECRET, "kafka_username": "u",
              "kafka_password": "p"}
    assert Settings(**strong, child_key_secrets='{"k1": "%s"}' % ("x" * 40)).child_keys(
        ).current_version == "v3:k1"
    with pytest.raises(ValidationError, match="DAYBREAK_CHILD_KEY_SECRETS"):
        Settings(**strong, child_key_secrets='{"k1": "short"}')
    with pytest.raises(ValidationError):
        Settings(**strong, child_key_secrets="not json")
    monkeypatch.setenv("DAYBREAK_ENV", "development")
    monkeypatch.setenv("DAYBREAK_CHILD_KEY_SECRET", SECRET)
    monkeypatch.setenv("DAYBREAK_CHILD_KEY_SECRETS", '{"k1": "%s"}' % ("x" * 40))
    assert main(["pseudonym", "rotate"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["k2", "k1"] and printed["k1"] == "x" * 40
