"""The session's keystore: a temporary directory of wrapped data keys and a KEK file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common.crypto import Keyring, create_kek_file


@dataclass(frozen=True)
class Keystore:
    """Where a keyring's files are; `keyring()` is a fresh one (nothing cached)."""

    keystore_dir: Path
    kek_file: Path

    def keyring(self, *, recheck_seconds: float = 30.0) -> Keyring:
        """A new keyring over these files."""
        return Keyring.at(self.keystore_dir, self.kek_file, recheck_seconds=recheck_seconds)

    def settings(self) -> dict[str, Path]:
        """The keystore as Settings keyword arguments."""
        return {"keystore_dir": self.keystore_dir, "kek_file": self.kek_file}


def make_keystore(root: Path) -> Keystore:
    """A new keystore under `root` with its own KEK."""
    store = Keystore(root / "keystore", root / "kek")
    create_kek_file(store.kek_file)
    store.keystore_dir.mkdir(parents=True, exist_ok=True)
    return store


@pytest.fixture(scope="session")
def session_keystore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystore]:
    """The keystore the session's settings point at (DAYBREAK_KEYSTORE_DIR, _KEK_FILE)."""
    yield make_keystore(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def keystore(tmp_path: Path) -> Keystore:
    """A keystore of this test's own: shredding in it touches no other test."""
    return make_keystore(tmp_path)


@pytest.fixture
def keyring(session_keystore: Keystore) -> Keyring:
    """A keyring over the session keystore (the one the services in a test use)."""
    return session_keystore.keyring()
