"""Import an N-row roster through the `daybreak roster import` path; print rows/s and seconds.

    set -a; . .daybreak/env; set +a
    .venv/bin/python bench/roster_import.py [--rows 1000000] [--schools 500] [--database-url URL]

Generates a valid roster (UPNs with correct check letters) over the schools, registers the
schools from a GIAS-style file, then imports the roster twice through the CLI (first load, then
a replace of every roll). The same run times plain parse + validate without the database as a
baseline, so the database's share is visible. By default it works in a throwaway database
(created with the owner role from DAYBREAK_MIGRATIONS_DATABASE_URL, dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import resource
import secrets
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from stdnum.gb.upn import calc_check_digit

from services.cli import main as cli_main
from services.common.db import UnitOfWork, make_engine
from services.matcher.registry import import_gias
from services.matcher.roster import ROSTER_HEADER, parse_roster

REPO = Path(__file__).resolve().parent.parent
GIVEN = ("Amelia", "Olivia", "Isla", "Ava", "Mia", "Noah", "Oliver", "Leo", "Muhammad", "Harry",
         "Zainab", "Chidi", "Siobhan", "Tomasz", "Aarav", "Freya", "Jack", "Grace", "Ivy", "Kai")
FAMILY = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Khan", "Patel", "Wilson", "Evans",
          "Nowak", "O'Brien", "Thomas", "Roberts", "Hussain", "Okafor", "Walker", "Wright")
STREETS = ("Oak Road", "High Street", "Church Lane", "Mill Close", "Station Road", "Park Way")
LA_NUMBERS = (330, 331, 332, 333, 334, 335, 336, 801, 802, 803)


def write_roster(path: Path, rows: int, urns: list[str], seed: int = 7) -> None:
    """A valid roster CSV: unique UPNs per school, UK postcodes, ages 4 to 16."""
    rnd = random.Random(seed)
    born = date(2010, 9, 1)
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(ROSTER_HEADER)
        for i in range(rows):
            body = f"{LA_NUMBERS[i % len(LA_NUMBERS)]}{i // 1000 % 10_000:04d}26{i % 1000:03d}"
            writer.writerow((
                urns[i % len(urns)], calc_check_digit(body) + body, rnd.choice(GIVEN), "",
                rnd.choice(FAMILY), "", (born + timedelta(days=rnd.randrange(4380))).isoformat(),
                rnd.choice("MF"), f"{rnd.randrange(1, 200)} {rnd.choice(STREETS)}",
                f"DY{rnd.randrange(1, 10)} {rnd.randrange(10)}{rnd.choice('ABDEFGH')}"
                f"{rnd.choice('JLNPQRS')}", "C", "2022-09-01", "",
            ))


def gias_bytes(urns: list[str]) -> bytes:
    """A GIAS-style establishments file (cp1252, as GIAS serves it) for the schools."""
    lines = ["URN,LA (code),EstablishmentName,EstablishmentStatus (name),"
             "PhaseOfEducation (name),StatutoryLowAge,StatutoryHighAge,Postcode"]
    lines += [f"{urn},330,Bench School {urn},Open,All-through,4,16,DY1 2AB" for urn in urns]
    return "\r\n".join(lines).encode("cp1252")


async def create_database() -> tuple[str, str]:
    """A migrated throwaway database: (its name, the matcher role's URL for it)."""
    owner_url, app_url = (os.environ["DAYBREAK_MIGRATIONS_DATABASE_URL"],
                          os.environ["DAYBREAK_MATCHER_DATABASE_URL"])
    name = f"daybreak_bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(owner_url.replace("+asyncpg", "", 1))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.execute(f'GRANT CONNECT ON DATABASE "{name}" TO "{make_url(app_url).username}"')
    finally:
        await conn.close()
    cfg = Config(str(REPO / "alembic.ini"))
    cfg.attributes["url"] = make_url(owner_url).set(database=name).render_as_string(False)
    cfg.attributes["configure_logger"] = False
    await asyncio.to_thread(command.upgrade, cfg, "head")
    return name, make_url(app_url).set(database=name).render_as_string(False)


async def drop_database(name: str) -> None:
    """Drop the throwaway database."""
    owner_url = os.environ["DAYBREAK_MIGRATIONS_DATABASE_URL"].replace("+asyncpg", "", 1)
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def register_schools(url: str, urns: list[str]) -> float:
    """Register the schools through the GIAS import; its seconds."""
    engine = make_engine(url, schema="matcher", pool_size=1)
    started = time.perf_counter()
    try:
        await import_gias(gias_bytes(urns), uow=UnitOfWork(engine), now=datetime.now(UTC),
                          topic_prefix="bench.")
    finally:
        await engine.dispose()
    return time.perf_counter() - started


def timed_cli_import(path: Path, url: str) -> float:
    """`daybreak roster import PATH` against the database; its seconds."""
    os.environ["DAYBREAK_MATCHER_DATABASE_URL"] = url
    started = time.perf_counter()
    code = cli_main(["roster", "import", str(path)])
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"import failed with exit code {code}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--schools", type=int, default=500)
    parser.add_argument("--database-url", help="a migrated database to use instead")
    args = parser.parse_args()
    urns = [str(900_000 + i) for i in range(args.schools)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "roster.csv"
        started = time.perf_counter()
        write_roster(path, args.rows, urns)
        size_mb = path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows over {args.schools} schools "
              f"({size_mb:.0f} MB) in {time.perf_counter() - started:.1f}s")

        started = time.perf_counter()
        with path.open(encoding="utf-8-sig", newline="") as stream:
            parsed = len(parse_roster(stream))
        baseline = time.perf_counter() - started
        print(f"baseline parse+validate (no DB): {baseline:.1f}s, {parsed / baseline:,.0f} rows/s")

        name, url = (None, args.database_url) if args.database_url else asyncio.run(
            create_database())
        try:
            print(f"register {args.schools} schools (GIAS import): "
                  f"{asyncio.run(register_schools(url, urns)):.2f}s")
            for label in ("first load", "replace all rolls"):
                elapsed = timed_cli_import(path, url)
                print(f"roster import, {label}: {elapsed:.1f}s total, "
                      f"{args.rows / elapsed:,.0f} rows/s, database share "
                      f"{elapsed - baseline:.1f}s ({(elapsed - baseline) / elapsed:.0%})")
        finally:
            if name is not None:
                asyncio.run(drop_database(name))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
