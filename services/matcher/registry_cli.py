"""`daybreak schools|roster|calendar import`: load a file (CSV, or iCalendar term dates) into
the registry."""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, BinaryIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from services.common.cli_errors import CliError
from services.common.context import utc_now
from services.common.db import UnitOfWork, service_engine
from services.common.problems import Problem
from services.common.settings import MissingSetting, Settings
from services.matcher import registry, term_dates
from services.matcher.ctf import looks_like_xml
from services.matcher.directory import announce_everything

MAX_SHOWN = 20
PROGRESS_FROM_BYTES = 1 << 20
EXIT_REJECTED = 2


def schools_import(path: str, settings: Settings) -> int:
    """Upsert schools from a GIAS establishments CSV; 0, or 2 when the file is refused."""
    with _opened(path) as (file, size), _progress(file, size) as (_, reader):
        started = time.perf_counter()
        outcome = _run(settings, lambda uow: registry.import_gias(
            reader, uow=uow, now=utc_now(), topic_prefix=settings.topic_prefix))
    if isinstance(outcome, registry.ImportRejected):
        return _report(outcome)
    print(json.dumps({
        "schools": outcome.schools, "created": outcome.created, "updated": outcome.updated,
        "local_authorities_created": outcome.local_authorities_created,
        "seconds": round(time.perf_counter() - started, 2),
    }))
    return 0


def roster_import(path: str, settings: Settings) -> int:
    """Replace the rolls of every school a roster CSV names, or the roll of a Common Transfer
    File's source school (an XML file), all or nothing; 0, or 2 if refused."""
    with _opened(path) as (file, size), _progress(file, size) as (progress, reader):
        fmt: registry.RosterFormat = "ctf" if looks_like_xml(file.read(64)) else "csv"
        file.seek(0)
        on_progress = _writing_bar(progress) if progress is not None else None
        started = time.perf_counter()
        outcome = _run(settings, lambda uow: registry.import_roster(
            None, reader, uow=uow, imported_by=_operator(), now=utc_now(),
            on_progress=on_progress, fmt=fmt,
        ))
    if isinstance(outcome, registry.ImportRejected):
        return _report(outcome)
    elapsed = time.perf_counter() - started
    print(json.dumps({
        "rows": outcome.rows, "replaced": outcome.replaced, "schools": outcome.schools,
        **({"skipped": outcome.skipped} if fmt == "ctf" else {}),
        "sha256": outcome.sha256, "seconds": round(elapsed, 2),
        "rows_per_second": round(outcome.rows / elapsed) if elapsed else None,
    }))
    return 0


def calendar_import(path: str, settings: Settings, *, la_code: str | None = None,
                    urn: str | None = None) -> int:
    """Replace calendar days, all or nothing; 0, or 2 when the file is refused. With neither
    `la_code` nor `urn`: the overrides of every school a `urn,date,kind` CSV names; with
    `la_code`: the LA's term dates (.ics, or a `date,kind` CSV); with `urn`: the school's own
    term dates (.ics), or its overrides (a `urn,date,kind` CSV naming it alone)."""
    with _opened(path) as (file, _):
        data = file.read()
    fmt, now, prefix = term_dates.format_of(data, path), utc_now(), settings.topic_prefix
    if la_code is not None:
        outcome = _run(settings, lambda uow: term_dates.put_la_calendar(
            la_code.upper(), data, fmt=fmt, uow=uow, now=now, topic_prefix=prefix))
    elif urn is not None and fmt == "ics":
        outcome = _run(settings, lambda uow: term_dates.put_school_term_dates(
            urn, data, uow=uow, now=now, topic_prefix=prefix))
    else:
        outcome = _run(settings, lambda uow: registry.import_calendar(
            urn, data, uow=uow, now=now, topic_prefix=prefix))
    if isinstance(outcome, registry.ImportRejected):
        return _report(outcome)
    if isinstance(outcome, registry.CalendarResult):
        print(json.dumps({"days": outcome.days, "replaced": outcome.replaced,
                          "schools": outcome.schools}))
    else:
        print(json.dumps(dataclasses.asdict(outcome)))
    return 0


@contextmanager
def _opened(path: str) -> Iterator[tuple[BinaryIO, int]]:
    with ExitStack() as stack:
        try:
            file = stack.enter_context(open(path, "rb"))
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
        yield file, os.fstat(file.fileno()).st_size


@contextmanager
def _progress(file: BinaryIO, size: int) -> Iterator[tuple[Progress | None, BinaryIO]]:
    """A progress bar on stderr for large files, only when a person is watching."""
    if size < PROGRESS_FROM_BYTES or not sys.stderr.isatty():
        yield None, file
        return
    columns = (TextColumn("{task.description:<8}"), BarColumn(), TextColumn(
        "{task.percentage:>3.0f}%"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield progress, progress.wrap_file(file, total=size, description="reading")


def _writing_bar(progress: Progress) -> Callable[[int, int], None]:
    task: list[TaskID] = []

    def advance(done: int, total: int) -> None:
        if not task:
            task.append(progress.add_task("writing", total=total))
        progress.update(task[0], completed=done)

    return advance


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def registry_republish(settings: Settings) -> int:
    """Stage every school, LA and calendar on registry.v1 again; prints how many events."""

    async def republish(uow: UnitOfWork) -> int:
        async with uow:
            staged = await announce_everything(uow.conn, topic_prefix=settings.topic_prefix,
                                               now=utc_now())
            await uow.commit()
        return staged

    print(json.dumps({"events": _run(settings, republish)}))
    return 0


def _run(
    settings: Settings, use_case: Callable[[UnitOfWork], Coroutine[Any, Any, Any]]
) -> Any:
    """Run a use case on a throwaway engine; a refused file comes back, other failures raise."""

    async def work() -> Any:
        engine = service_engine(settings, "matcher", pool_size=1)
        try:
            return await use_case(UnitOfWork(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(work())
    except registry.ImportRejected as rejected:
        return rejected
    except Problem as problem:
        raise CliError(f"{problem.title}: {problem.detail or ''}".rstrip(": ")) from None
    except MissingSetting:
        raise
    except Exception as exc:
        # the class name only: driver messages can carry values from the file
        raise CliError(f"database error ({type(exc).__name__})") from None


def _report(rejected: registry.ImportRejected) -> int:
    """A headline, then one line per problem (at most MAX_SHOWN) on stderr."""
    print(f"daybreak: {rejected.title.lower()}: {len(rejected.problems)} problem(s); "
          "nothing was imported", file=sys.stderr)
    for problem in rejected.problems[:MAX_SHOWN]:
        print(f"daybreak: {problem.line()}", file=sys.stderr)
    if len(rejected.problems) > MAX_SHOWN:
        print(f"... and {len(rejected.problems) - MAX_SHOWN} more", file=sys.stderr)
    return EXIT_REJECTED
