"""A school's roll from its Common Transfer File (CTF): the DfE's XML that every school MIS in
England (SIMS, Arbor, Bromcom, Scholarpack, ...) exports.

The file is parsed with defusedxml, which refuses a DTD, entity declarations and external
references, so a hostile file can neither expand nor reach out. Each `<Pupil>` becomes one
roster record checked by the CSV import's own rules (roster.py), and the roll is then replaced
as a CSV import replaces it: all pupils or none. Problems are numbered by the pupil's position
in the file (`row` N is the N-th `<Pupil>`, "pupil N" in the CLI) and never quote a pupil's values.

What is read, by element (CTF 18.0 and later; `Gender` before CTF 20, `Sex` after, both read):
- `Header/CTFversion`, `Header/SourceSchool/{URN,LEA,Estab}`: the school the roll belongs to;
- `Pupil/{UPN,Surname,Forename,DOB,Sex|Gender}`;
- `BasicDetails/{PreferredForename,PreferredSurname,FormerSurname,EnrolStatus}` (also read
  directly under `Pupil`, where some exports put them);
- `Address/{BS7666Address/{SAON,PAON,Street},AddressLines/AddressLine1,PostCode}`;
- `SchoolHistory/School` for the source school (`LEA`+`Estab` or `URN`): `EntryDate` and
  `LeavingDate` become the dates the pupil is on roll, so a leaver stops matching the day after.
Enrolment status C (single), M (main dual) and S (subsidiary dual) are kept; G (guest) and O
(other) are not on this school's roll and are skipped and counted. A preferred or former
surname that differs from the legal one is kept as the pupil's other family name, which the
matcher tries as well. `FormerUPN` is read but not used: a UPN is for life, and the matcher keys
on the current one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from services.matcher.records import Pupil
from services.matcher.registry_files import RejectedFile, RosterFile, RowProblem
from services.matcher.roster import pupil_from_fields

MIN_VERSION = 18
MAX_BYTES = 256 * 1024 * 1024  # a large secondary's full CTF is a few tens of MB
ON_ROLL = frozenset({"C", "M", "S"})
NOT_ON_ROLL = frozenset({"G", "O"})
_ROW_PROBLEM = re.compile(r"([a-z_0-9]+): (.+)")
_HOUSE_NUMBER = re.compile(r"\d+[A-Za-z]?(?:-\d+[A-Za-z]?)?")
_VERSION = re.compile(r"(\d+)(?:\.\d+)?")
# the CTF element a roster field comes from, to name it in a problem
ELEMENT_OF = {
    "upn": "UPN", "given_name": "Forename", "family_name": "Surname", "date_of_birth": "DOB",
    "gender": "Sex", "preferred_name": "PreferredForename", "former_family_name": "FormerSurname",
    "address_line1": "Address", "postcode": "Address/PostCode",
    "enrolment_status": "BasicDetails/EnrolStatus", "on_roll_from": "SchoolHistory/EntryDate",
    "on_roll_to": "SchoolHistory/LeavingDate",
}


@dataclass(frozen=True, slots=True)
class CtfRoll:
    """A valid CTF: the roll it gives, its source school, and the pupils it skipped."""

    roster: RosterFile
    urn: str
    version: str
    skipped: int


def looks_like_xml(head: bytes) -> bool:
    """True when a file's first bytes begin an XML document (after a BOM and whitespace)."""
    return head.lstrip(b"\xef\xbb\xbf").lstrip()[:1] == b"<"


def read_ctf(raw: BinaryIO, *, urn: str | None) -> CtfRoll:
    """Parse a CTF stream into the roll of its source school; with `urn`, the file must be that
    school's. Raises RejectedFile listing every problem."""
    data = raw.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise _file_problem(f"larger than {MAX_BYTES // (1024 * 1024)} MB")
    root = _parse(data)
    header = _child(root, "Header")
    if _tag(root) != "CTfile" or header is None:
        raise _file_problem("not a Common Transfer File (no CTfile/Header)")
    version = _text(header, "CTFversion")
    found = _VERSION.fullmatch(version)
    if found is None or int(found[1]) < MIN_VERSION:
        raise _file_problem(f"CTF version {version or 'missing'} is not read; "
                            f"version {MIN_VERSION}.0 or later is")
    source = _child(header, "SourceSchool")
    source_urn = _text(source, "URN") if source is not None else ""
    school = _school_of(urn, source_urn)
    estab = (_text(source, "LEA"), _text(source, "Estab")) if source is not None else ("", "")
    pupils: list[Pupil] = []
    problems: list[RowProblem] = []
    skipped = 0
    seen: dict[str, int] = {}
    data_root = _child(root, "CTFpupilData")
    for number, element in enumerate(_children(data_root, "Pupil"), start=1):
        fields = _fields(element, school, estab)
        if fields["enrolment_status"] in NOT_ON_ROLL:
            skipped += 1
            continue
        pupil, found_problems = pupil_from_fields(fields)
        if pupil.upn and seen.setdefault(pupil.upn, number) != number:
            found_problems.append(f"upn: listed twice (first as pupil {seen[pupil.upn]})")
        problems.extend(_row_problem(number, text) for text in found_problems)
        pupils.append(pupil)
    if problems:
        raise RejectedFile(problems)
    return CtfRoll(RosterFile(pupils, hashlib.sha256(data).hexdigest()), school, version,
                   skipped)


def _parse(data: bytes) -> Element:
    try:
        root: Element = fromstring(data, forbid_dtd=True, forbid_entities=True,
                                   forbid_external=True)
    except DefusedXmlException:
        raise _file_problem("DTDs, entities and external references are refused") from None
    except ParseError as error:
        line, column = error.position
        raise _file_problem(f"not well-formed XML (line {line}, column {column})") from None
    return root


def _school_of(urn: str | None, source_urn: str) -> str:
    if urn is not None and source_urn and source_urn != urn:
        raise _file_problem(f"the file is the roll of school {source_urn}, not {urn}")
    school = urn or source_urn
    if not school:
        raise _file_problem("Header/SourceSchool/URN is missing: the school cannot be told")
    return school


def _fields(pupil: Element, urn: str, estab: tuple[str, str]) -> dict[str, str]:
    """One `<Pupil>` as the roster's named fields ("" where the file has nothing)."""
    basic = _child(pupil, "BasicDetails")

    def detail(name: str) -> str:
        return _text(basic, name) or _text(pupil, name)

    forename, surname = _text(pupil, "Forename"), _text(pupil, "Surname")
    preferred = detail("PreferredForename")
    other_surname = next((name for name in (detail("FormerSurname"), detail("PreferredSurname"))
                          if name and name.casefold() != surname.casefold()), "")
    entry, leaving = _dates_here(pupil, urn, estab)
    return {
        "urn": urn, "upn": _text(pupil, "UPN"), "given_name": forename,
        "preferred_name": preferred if preferred.casefold() != forename.casefold() else "",
        "family_name": surname, "former_family_name": other_surname,
        "date_of_birth": _text(pupil, "DOB"),
        "gender": _text(pupil, "Sex") or _text(pupil, "Gender"),
        "address_line1": _address_line(_child(pupil, "Address")),
        "postcode": _postcode(_child(pupil, "Address")),
        "enrolment_status": (detail("EnrolStatus") or "C").upper(),
        "on_roll_from": entry, "on_roll_to": leaving,
    }


def _address_line(address: Element | None) -> str:
    if address is None:
        return ""
    bs7666 = _child(address, "BS7666Address")
    if bs7666 is not None:
        saon, paon, street = (_text(bs7666, name) for name in ("SAON", "PAON", "Street"))
        # "12 Oak Road", but "Elm Court, Castle Street": a number runs on into its street
        house = f"{paon} {street}" if _HOUSE_NUMBER.fullmatch(paon) and street else ", ".join(
            p for p in (paon, street) if p)
        return ", ".join(p for p in (saon, house) if p)
    return _text(_child(address, "AddressLines"), "AddressLine1")


def _postcode(address: Element | None) -> str:
    if address is None:
        return ""
    return _text(address, "PostCode") or _text(_child(address, "BS7666Address"), "PostCode")


def _dates_here(pupil: Element, urn: str, estab: tuple[str, str]) -> tuple[str, str]:
    """The pupil's entry and leaving dates at the source school, from its school history."""
    for school in _children(_child(pupil, "SchoolHistory"), "School"):
        here = _text(school, "URN") == urn or (
            all(estab) and (_text(school, "LEA"), _text(school, "Estab")) == estab)
        if here:
            return _text(school, "EntryDate"), _text(school, "LeavingDate")
    return "", ""


def _row_problem(number: int, text: str) -> RowProblem:
    found = _ROW_PROBLEM.fullmatch(text)
    if found is None:
        return RowProblem(number, None, text, unit="pupil")
    message = found[2].replace("YYYY-MM-DD", "YYYY-MM-DD (xs:date)")
    return RowProblem(number, ELEMENT_OF.get(found[1], found[1]), message, unit="pupil")


def _file_problem(message: str) -> RejectedFile:
    return RejectedFile([RowProblem(None, None, message)])


def _tag(element: Element) -> str:
    """An element's local name (a namespace, if an export adds one, is ignored)."""
    return element.tag.rpartition("}")[2]


def _child(parent: Element | None, name: str) -> Element | None:
    return next(_children(parent, name), None)


def _children(parent: Element | None, name: str) -> Iterator[Element]:
    return (e for e in (parent if parent is not None else ()) if _tag(e) == name)


def _text(parent: Element | None, name: str) -> str:
    element = _child(parent, name)
    return (element.text or "").strip() if element is not None else ""
