"""Child-data envelope encryption: sealed values open only with their AAD, their period's data
key and the right KEK; a shredded period never opens again, whoever asks."""

from __future__ import annotations

import base64
import multiprocessing
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.common.crypto import (
    KeyShredded,
    SealError,
    create_kek_file,
    is_sealed,
    period_of,
)
from services.common.settings import MissingSetting, Settings
from tests.support.keys import Keystore, make_keystore

MARCH = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
CHILD = {"given_name": "Zoë", "family_name": "Ó Briain", "date_of_birth": "2016-03-02"}
AAD = "inc-1:child:0"


def test_a_sealed_value_opens_to_what_was_sealed_and_shows_none_of_it(
        keystore: Keystore) -> None:
    token = keystore.keyring().seal(CHILD, aad=AAD, at=MARCH)
    assert token.startswith("dk1.2026-03.") and token.isascii() and is_sealed(token)
    # whole values, in the token and in its decoded bytes: a two-letter fragment like "Zo"
    # turns up in random base64 in about one token in thirty (this test failed so once)
    raw = base64.urlsafe_b64decode(token.split(".")[2] + "==")
    for value in CHILD.values():
        assert value not in token and value.encode() not in raw
    assert keystore.keyring().open(token, aad=AAD) == CHILD  # a fresh keyring, same files
    assert keystore.keyring().seal(CHILD, aad=AAD, at=MARCH) != token  # a fresh nonce


def test_the_period_is_the_utc_month() -> None:
    assert period_of(datetime(2026, 3, 31, 23, 59, tzinfo=UTC)) == "2026-03"
    assert period_of(datetime.fromisoformat("2026-04-01T00:30:00+01:00")) == "2026-03"
    with pytest.raises(ValueError):
        period_of(datetime(2026, 3, 1))


def test_a_value_copied_to_another_record_does_not_open(keystore: Keystore) -> None:
    keyring = keystore.keyring()
    token = keyring.seal(CHILD, aad=AAD, at=MARCH)
    with pytest.raises(SealError) as raised:
        keyring.open(token, aad="inc-1:child:1")
    assert "Zo" not in str(raised.value)


def _flip(token: str, at: int) -> str:
    head, body = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[at] ^= 1
    return f"{head}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
def test_a_tampered_value_does_not_open(keystore: Keystore, where: str) -> None:
    keyring = keystore.keyring()
    token = keyring.seal(CHILD, aad=AAD, at=MARCH)
    at = {"nonce": 0, "ciphertext": 14, "tag": -1}[where]
    with pytest.raises(SealError):
        keyring.open(_flip(token, at), aad=AAD)


@pytest.mark.parametrize("token", [
    "Zoë", "dk2.2026-03.AAAA", "dk1.2026-13.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "dk1.2026-03.AAAA", "dk1.2026-03.not base64!", "",
], ids=["plain", "other-format", "no-such-month", "too-short", "bad-encoding", "empty"])
def test_what_is_not_a_sealed_value_is_refused(keystore: Keystore, token: str) -> None:
    with pytest.raises(SealError):
        keystore.keyring().open(token, aad=AAD)


def test_a_token_relabelled_to_another_period_does_not_open(keystore: Keystore) -> None:
    keyring = keystore.keyring()
    keyring.seal(CHILD, aad=AAD, at=APRIL)  # April's key exists
    token = keyring.seal(CHILD, aad=AAD, at=MARCH)
    with pytest.raises(SealError):
        keyring.open(token.replace("2026-03", "2026-04", 1), aad=AAD)


def test_a_shredded_period_never_opens_again(keystore: Keystore) -> None:
    keyring = keystore.keyring()
    march = keyring.seal(CHILD, aad=AAD, at=MARCH)
    april = keyring.seal(CHILD, aad=AAD, at=APRIL)
    other_process = keystore.keyring(recheck_seconds=0)  # has March's key cached
    assert other_process.open(march, aad=AAD) == CHILD

    assert keyring.shred_through("2026-03") == ["2026-03"]

    assert keyring.periods() == ["2026-04"] and keyring.shredded_through() == "2026-03"
    for reader in (keyring, keystore.keyring(), other_process):
        with pytest.raises(KeyShredded):
            reader.open(march, aad=AAD)
        assert reader.open(april, aad=AAD) == CHILD
    with pytest.raises(KeyShredded):  # nor is a shredded period's key ever made again
        keyring.seal(CHILD, aad=AAD, at=MARCH)
    assert keyring.shred_through("2026-02") == []  # the watermark never goes back
    assert keyring.shredded_through() == "2026-03"


def test_a_missing_key_that_was_never_shredded_is_an_error_not_a_shred(
        keystore: Keystore, tmp_path: Path) -> None:
    token = keystore.keyring().seal(CHILD, aad=AAD, at=MARCH)
    elsewhere = make_keystore(tmp_path / "elsewhere")
    with pytest.raises(SealError, match="not shredded"):
        elsewhere.keyring().open(token, aad=AAD)


def test_a_wrong_kek_opens_nothing(keystore: Keystore, tmp_path: Path) -> None:
    token = keystore.keyring().seal(CHILD, aad=AAD, at=MARCH)
    wrong = Keystore(keystore.keystore_dir, tmp_path / "other-kek")
    create_kek_file(wrong.kek_file)
    with pytest.raises(SealError, match="wrong key-encryption key"):
        wrong.keyring().open(token, aad=AAD)
    with pytest.raises(SealError, match="wrong key-encryption key"):
        wrong.keyring().seal(CHILD, aad=AAD, at=MARCH)


def test_the_kek_file_is_created_once_private_and_must_be_32_bytes(tmp_path: Path) -> None:
    kek = tmp_path / "secrets" / "kek"
    assert create_kek_file(kek) is True
    first = kek.read_bytes()
    assert create_kek_file(kek) is False and kek.read_bytes() == first
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600 and len(first) == 32
    kek.write_bytes(b"short")
    with pytest.raises(SealError, match="not 32 bytes"):
        Keystore(tmp_path / "ks", kek).keyring()
    with pytest.raises(SealError, match="keys init"):
        Keystore(tmp_path / "ks", tmp_path / "missing").keyring()


def test_the_keyring_comes_from_the_settings(keystore: Keystore) -> None:
    from services.common.crypto import Keyring

    token = keystore.keyring().seal(CHILD, aad=AAD, at=MARCH)
    configured = Keyring.from_settings(Settings(env="development", **keystore.settings()))
    assert configured.open(token, aad=AAD) == CHILD
    with pytest.raises(MissingSetting, match="DAYBREAK_KEYSTORE_DIR"):
        Keyring.from_settings(Settings(env="development"))
    assert "kek" not in repr(configured).replace("kek_file", "")


def test_threads_creating_a_period_key_at_once_agree_on_one(keystore: Keystore) -> None:
    start = threading.Barrier(8)
    tokens: dict[int, str] = {}

    def seal(index: int) -> None:
        keyring = keystore.keyring()  # each its own cache, as separate processes would be
        start.wait()
        tokens[index] = keyring.seal(index, aad=f"t:{index}", at=MARCH)

    threads = [threading.Thread(target=seal, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _assert_one_key(keystore, tokens)


def _assert_one_key(store: Keystore, tokens: dict[int, str]) -> None:
    fresh = store.keyring()
    assert fresh.periods() == ["2026-03"]
    assert {i: fresh.open(t, aad=f"t:{i}") for i, t in tokens.items()} == {i: i for i in tokens}
    assert not list(store.keystore_dir.glob(".*.tmp"))


def _seal_in_process(store: Keystore, index: int, start: threading.Barrier,
                     out: multiprocessing.Queue[tuple[int, str]]) -> None:
    keyring = store.keyring()
    start.wait()
    out.put((index, keyring.seal(index, aad=f"t:{index}", at=MARCH)))


def test_processes_creating_a_period_key_at_once_agree_on_one(keystore: Keystore) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    out: multiprocessing.Queue[tuple[int, str]] = context.Queue()
    workers = [context.Process(target=_seal_in_process, args=(keystore, i, start, out))
               for i in range(4)]
    for worker in workers:
        worker.start()
    tokens = dict(out.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    _assert_one_key(keystore, tokens)


def test_keys_init_creates_the_kek_once_and_the_keystore(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from services.cli import main

    monkeypatch.setenv("DAYBREAK_ENV", "development")
    monkeypatch.setenv("DAYBREAK_KEK_FILE", str(tmp_path / "secret" / "kek"))
    monkeypatch.setenv("DAYBREAK_KEYSTORE_DIR", str(tmp_path / "store"))
    assert main(["keys", "init"]) == 0
    kek = (tmp_path / "secret" / "kek").read_bytes()
    assert main(["keys", "init"]) == 0 and (tmp_path / "secret" / "kek").read_bytes() == kek
    assert (tmp_path / "store").is_dir()
    assert capsys.readouterr().out.splitlines()[0].startswith("created")
    assert main(["keys", "init", "--kek-file", str(tmp_path / "other")]) == 0
    assert stat.S_IMODE((tmp_path / "other").stat().st_mode) == 0o600
    monkeypatch.delenv("DAYBREAK_KEK_FILE")
    assert main(["keys", "init"]) == 1
