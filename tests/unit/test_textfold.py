"""Names fold to their letters in their own script, and transliterate across scripts."""

import pytest

from services.common.textfold import fold_name, latin_name


@pytest.mark.parametrize(("written", "folded"), [
    ("Łukasz Wąsik", "lukasz wasik"),          # Polish
    ("Ştefan Ţăranu", "stefan taranu"),        # Romanian (cedilla forms)
    ("Ștefan Țăranu", "stefan taranu"),        # Romanian (comma-below forms)
    ("Şükrü Öztürk", "sukru ozturk"),          # Turkish
    ("İBRAHİM Y\u0131ld\u0131z", "ibrahim yildiz"),      # Turkish dotted capital I, dotless i
    ("O'Brien-Smith", "obrien smith"),
    ("Анна Петрова", "анна петрова"),          # Cyrillic stays Cyrillic
    ("مُحَمَّد", "محمد"),                       # Arabic short vowels are optional
    ("عمران خان", "عمران خان"),                # Urdu
    ("王小明", "王小明"),                        # Chinese
    ("ﬁona", "fiona"),                         # compatibility ligature
])
def test_fold_keeps_every_script(written: str, folded: str) -> None:
    assert fold_name(written) == folded


def test_different_non_latin_names_stay_different() -> None:
    names = ["Анна Петрова", "Мария Иванова", "محمد", "فاطمة", "王小明", "李华", "عمران"]
    assert len({fold_name(name) for name in names}) == len(names)


@pytest.mark.parametrize(("written", "latin"), [
    ("Мария Иванова", "mariya ivanova"),
    ("王小明", "wangxiaoming"),
    ("Αλέξανδρος", "alexandros"),
    ("Zoë", "zoe"),
])
def test_latin_transliterates(written: str, latin: str) -> None:
    assert latin_name(written) == latin
