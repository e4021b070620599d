"""The hash-pinned lockfiles satisfy pyproject.toml, and every install path checks hashes."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")


def _locked(name: str) -> dict[str, str]:
    """name → version of each package the lockfile pins, refusing one without a hash."""
    text = (ROOT / "requirements" / name).read_text()
    pins: dict[str, str] = {}
    # one requirement per logical line: continuation lines carry its hashes
    for entry in text.replace("\\\n", " ").splitlines():
        if not entry.strip() or entry.lstrip().startswith("#"):
            continue
        match = _PIN.match(entry.strip())
        assert match, f"{name}: not pinned to one version: {entry.split()[0]}"
        assert "--hash=sha256:" in entry, f"{name}: {match[1]} has no hash"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def _declared(extras: bool) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    if extras:
        wanted += project["optional-dependencies"]["dev"]
    build = (ROOT / "requirements" / "build.in").read_text().splitlines()
    wanted += [line for line in build if line.strip() and not line.startswith("#")]
    return [Requirement(line) for line in wanted]


@pytest.mark.parametrize(("lockfile", "extras"), [("dev.lock", True), ("runtime.lock", False)])
def test_every_declared_dependency_is_pinned_within_its_range(
    lockfile: str, extras: bool
) -> None:
    pins = _locked(lockfile)
    env = {**default_environment(), "python_version": "3.11", "sys_platform": "linux"}
    for requirement in _declared(extras):
        if requirement.marker and not requirement.marker.evaluate(env):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in {lockfile}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lockfile} pins {requirement.name}=={pins[name]}, outside "
            f"{requirement.specifier}: run `make lock`")


def test_the_runtime_lock_pins_the_same_versions_as_the_dev_lock() -> None:
    dev, runtime = _locked("dev.lock"), _locked("runtime.lock")
    assert {n: v for n, v in runtime.items() if dev.get(n) != v} == {}


def test_lockfiles_name_no_package_index() -> None:
    for lockfile in ("dev.lock", "runtime.lock"):
        text = (ROOT / "requirements" / lockfile).read_text()
        assert not re.search(r"--(extra-)?index-url|https?://", text), lockfile


@pytest.mark.parametrize(("path", "lockfile"), [
    ("Makefile", "requirements/dev.lock"), ("Dockerfile", "requirements/runtime.lock")])
def test_installs_check_hashes_and_fetch_nothing_unpinned(path: str, lockfile: str) -> None:
    installs = [line.strip() for line in (ROOT / path).read_text().splitlines()
                if "pip install" in line and not line.lstrip().startswith("#")]
    assert installs, f"{path} installs nothing"
    assert any(f"--require-hashes -r {lockfile}" in line for line in installs), path
    for line in installs:
        # anything else installed is Daybreak itself, without resolving dependencies
        # and without a build environment fetched from the index
        assert ("--require-hashes" in line
                or ("--no-deps" in line and "--no-build-isolation" in line)), line


def test_the_npm_lock_pins_every_package_with_integrity_and_names_no_registry() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    wanted = json.loads((ROOT / "package.json").read_text())
    packages = {path: meta for path, meta in lock["packages"].items() if path}
    assert packages, "package-lock.json pins nothing"
    for path, meta in packages.items():
        assert meta.get("integrity", "").startswith("sha512-"), f"{path} has no integrity"
        assert "resolved" not in meta, f"{path} names where it was fetched from"
    for name, version in {**wanted["dependencies"], **wanted["devDependencies"]}.items():
        assert packages[f"node_modules/{name}"]["version"] == version, name
    assert "npm ci " in (ROOT / "scripts" / "install-frontend.sh").read_text()
