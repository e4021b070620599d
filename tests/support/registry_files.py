"""Files the registry imports, as schools and GIAS write them: rosters, calendars, GIAS."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from string import Template

from stdnum.gb.upn import calc_check_digit

from services.matcher.roster import ROSTER_HEADER

GIAS_HEADER = ("URN,LA (code),EstablishmentName,EstablishmentStatus (name),"
               "PhaseOfEducation (name),StatutoryLowAge,StatutoryHighAge,Postcode,Street")


def upn(serial: int) -> str:
    """A valid UPN (its check letter computed) for pupil number `serial`."""
    body = f"801{serial % 10_000:04d}26{serial % 1000:03d}"
    return calc_check_digit(body) + body


def pupil_row(urn: str, serial: int, **changes: str) -> dict[str, str]:
    """A good roster row for pupil number `serial` at the school, with `changes` applied."""
    row = {"urn": urn, "upn": upn(serial), "given_name": "Zebedee",
           "preferred_name": "", "family_name": f"Quibble{serial}", "former_family_name": "",
           "date_of_birth": "2016-03-02", "gender": "M", "address_line1": "12 Oak Road",
           "postcode": "DY1 2AB", "enrolment_status": "C", "on_roll_from": "2020-09-01",
           "on_roll_to": ""}
    return row | changes


def roster_csv(*rows: dict[str, str]) -> str:
    """A roster file: the header, then the rows."""
    lines = [",".join(ROSTER_HEADER), *(",".join(r[c] for c in ROSTER_HEADER) for r in rows)]
    return "\n".join(lines) + "\n"


def roll(urn: str, size: int, start: int = 0) -> str:
    """A roster of `size` good pupils numbered from `start`."""
    return roster_csv(*(pupil_row(urn, start + i) for i in range(size)))


def gias_file(*rows: str) -> bytes:
    """A GIAS extract in cp1252 with CRLF line ends, as GIAS serves it."""
    return "\r\n".join([GIAS_HEADER, *rows]).encode("cp1252")


def calendar_csv(*rows: tuple[str, str, str]) -> str:
    """A calendar file of (urn, date, kind) rows."""
    return "urn,date,kind\n" + "".join(f"{u},{d},{k}\n" for u, d, k in rows)


def la_calendar_csv(*rows: tuple[str, str]) -> str:
    """An LA's term dates as a CSV of (date, kind) rows."""
    return "date,kind\n" + "".join(f"{d},{k}\n" for d, k in rows)


HOLIDAYS = (("2026-12-21", "2027-01-01"), ("2027-03-29", "2027-04-09"),
            ("2027-07-22", "2027-08-31"), ("2027-10-25", "2027-10-29"))


def holidays_csv() -> str:
    """An LA's term dates as a CSV: the Christmas, Easter and summer holidays of 2026-27 and
    the October half term of 2027-28, every day of each closed."""
    days = [date.fromisoformat(first) + timedelta(days=n) for first, last in HOLIDAYS
            for n in range((date.fromisoformat(last) - date.fromisoformat(first)).days + 1)]
    return la_calendar_csv(*((d.isoformat(), "closed") for d in days))


def ics(*events: str) -> bytes:
    """An iCalendar file of the events (each the properties between BEGIN and END:VEVENT)."""
    body = "".join(f"BEGIN:VEVENT\r\nUID:{n}@test\r\nDTSTAMP:20260101T000000Z\r\n{e}"
                   "END:VEVENT\r\n" for n, e in enumerate(events))
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{body}"
            "END:VCALENDAR\r\n").encode()


def all_day(summary: str, first: str, stop: str) -> str:
    """An all-day event from `first` to the day before `stop` (DTEND is exclusive)."""
    return f"SUMMARY:{summary}\r\nDTSTART;VALUE=DATE:{first}\r\nDTEND;VALUE=DATE:{stop}\r\n"


def academy_term_dates() -> bytes:
    """An academy's own 2026-27 term dates, unlike its LA's (the demo's): it breaks up for
    Christmas on 16 December and returns on 6 January, takes Easter from 2 to 16 April, and
    its summer holiday starts on 19 July."""
    return ics(all_day("Autumn term", "20260902", "20261217"),
               all_day("Christmas holiday", "20261217", "20270106"),
               all_day("Spring term", "20270106", "20270402"),
               all_day("Easter break", "20270402", "20270419"),
               all_day("Summer term", "20270419", "20270717"),
               all_day("Summer holiday", "20270719", "20270901"),
               all_day("Staff training day", "20270901", "20270902"))


CTF_FILES = Path(__file__).parent.parent / "data" / "ctf"


def ctf_file(name: str, *, urn: str, pru_urn: str = "") -> bytes:
    """A Common Transfer File from tests/data/ctf (`oak-road-primary`, or
    `riverside-learning-centre`: the pupil referral unit a pupil is dual registered at), made the
    roll of the test's own schools."""
    text = (CTF_FILES / f"{name}.xml").read_text(encoding="utf-8")
    return Template(text).substitute(URN=urn, PRU_URN=pru_urn).encode()
