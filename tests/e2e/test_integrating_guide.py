"""docs/integrating.md's runnable examples, run in order against a whole deployment with a
sandbox made by `daybreak sandbox`'s own code: the guide stays true."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.sandbox import build_sandbox
from tests.conftest import REPO
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e
GUIDE = REPO / "docs" / "integrating.md"
RUNNABLE = re.compile(r"<!-- guide:run -->\n```(bash|python)\n(.*?)\n```", re.DOTALL)


def blocks(language: str) -> list[str]:
    return [code for lang, code in RUNNABLE.findall(GUIDE.read_text()) if lang == language]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    started = Stack.up()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture(scope="module")
def sandbox(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    settings = stack.settings().model_copy(update={
        "ingest_url": stack.url("ingest"), "matcher_url": stack.url("matcher")})
    made = asyncio.run(build_sandbox(settings))
    workdir = tmp_path_factory.mktemp("guide")
    (workdir / "sandbox.json").write_text(json.dumps(made))
    return workdir, made


def run(argv: list[str], workdir: Path, stack: Stack, made: dict) -> str:
    env = os.environ | {"DAYBREAK": stack.url("ingest"), "CLIENT_ID": made["client_id"],
                        "CLIENT_SECRET": made["client_secret"]}
    done = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_guide_has_runnable_examples_in_both_languages() -> None:
    assert len(blocks("bash")) >= 5 and len(blocks("python")) >= 1


def test_the_sandbox_gives_a_client_schools_and_children_for_each_outcome(sandbox) -> None:
    _, made = sandbox
    assert made["force_code"] == "SANDBOX" and made["client_secret"]
    assert [s["urn"] for s in made["schools"]] == ["999901", "999902"]
    assert sorted(c["expect"] for c in made["children"]) == ["matched", "review", "unmatched"]
    assert made["dsl"]["totp_uri"].startswith("otpauth://")


def test_the_curl_examples_run_in_order(stack, sandbox) -> None:
    workdir, made = sandbox
    script = "set -euo pipefail\n" + "\n".join(blocks("bash"))
    out = run(["bash", "-c", script], workdir, stack, made)
    accepted = json.loads((workdir / "accepted.json").read_text())
    receipt = json.loads((workdir / "receipt.json").read_text())
    assert receipt["incident_id"] == accepted["incident_id"]
    assert json.loads((workdir / "corrected-answer.json").read_text())["version"] == 2
    changes = json.loads((workdir / "changes.json").read_text())
    assert accepted["incident_id"] in json.dumps(changes)
    assert out.strip().splitlines()[-1] == "2"  # the corrected version, printed last


def test_the_python_example_runs(stack, sandbox) -> None:
    workdir, made = sandbox
    (workdir / "guide.py").write_text("\n\n".join(blocks("python")))
    out = run([sys.executable, "guide.py"], workdir, stack, made)
    assert json.loads(out.strip().splitlines()[-1])["status"] == "accepted"
