"""Files the registry imports, as schools and GIAS write them: rosters, calendars, GIAS."""

from __future__ import annotations

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
