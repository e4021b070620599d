"""The school rolls' key class (services/common/crypto.py): a key per year that
crypto-shredding never deletes, and the keyed hash SQL looks a UPN up by."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.common.crypto import KeyShredded, SealError, is_sealed, roll_period
from tests.support.keys import Keystore, make_keystore

JANUARY = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
ROW = {"given_name": "Ottoline", "family_name": "Wintergreen", "date_of_birth": "2015-07-19"}
AAD = "matcher.pupils:7:child"


def test_a_roll_value_is_sealed_under_its_years_roll_key() -> None:
    assert roll_period(JANUARY) == "roll-2026"
    with pytest.raises(ValueError):
        roll_period(datetime(2026, 1, 10))


def test_shredding_every_month_leaves_the_roll_key_and_its_rows_open(keystore: Keystore) -> None:
    ring = keystore.keyring()
    row = ring.seal_roll(ROW, aad=AAD, at=JANUARY)
    month = ring.seal(ROW, aad=AAD, at=JANUARY)
    assert row.startswith("dk1.roll-2026.") and is_sealed(row)
    assert ring.periods() == ["2026-01"]  # the roll's keys are not periods to shred
    assert ring.shred_through("2099-12") == ["2026-01"]
    fresh = keystore.keyring()  # nothing cached
    with pytest.raises(KeyShredded):
        fresh.open(month, aad=AAD)
    assert fresh.open(row, aad=AAD) == ROW
    assert (keystore.keystore_dir / "roll-2026.key").exists()
    assert fresh.open(fresh.seal_roll(ROW, aad=AAD, at=JANUARY), aad=AAD) == ROW  # still sealing


def test_a_new_years_key_seals_new_rows_and_the_old_one_still_opens(keystore: Keystore) -> None:
    ring = keystore.keyring()
    old = ring.seal_roll(ROW, aad=AAD, at=JANUARY)
    new = ring.seal_roll(ROW, aad=AAD, at=datetime(2027, 2, 1, tzinfo=UTC))
    assert new.startswith("dk1.roll-2027.")
    assert keystore.keyring().open(old, aad=AAD) == keystore.keyring().open(new, aad=AAD) == ROW
    with pytest.raises(SealError):  # relabelled to the other year's key
        ring.open(old.replace("roll-2026", "roll-2027"), aad=AAD)
    with pytest.raises(SealError):  # another pupil's row
        ring.open(old, aad="matcher.pupils:8:child")


def test_the_lookup_hash_is_keyed_by_the_keystore_and_stable(keystore: Keystore,
                                                              tmp_path: Path) -> None:
    upn = "A123456789012"
    first = keystore.keyring().lookup_hash(upn)
    assert first == keystore.keyring().lookup_hash(upn) != keystore.keyring().lookup_hash(
        "B123456789012")
    assert len(first) == 64 and upn not in first
    other = make_keystore(tmp_path / "other").keyring()
    assert other.lookup_hash(upn) != first  # a key of the keystore's, not a plain hash
    assert keystore.keyring().periods() == []  # the lookup key is no period either
