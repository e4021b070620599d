"""scripts/infra.sh on a fresh checkout, before it has written .daybreak/env."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO


def test_status_on_a_fresh_checkout_answers_instead_of_dying(tmp_path: Path) -> None:
    # CI's first `infra.sh up` read the broker's ports from an env file that did not exist
    # yet, and pipefail ended it with exit 2 and no message
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "infra.sh", tmp_path / "scripts" / "infra.sh")
    done = subprocess.run(["bash", str(tmp_path / "scripts" / "infra.sh"), "status"],
                          env={"PATH": os.environ["PATH"]}, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "env: missing" in done.stdout + done.stderr
