"""The partnership's figures from rows: weeks in London, every figure, suppression, the CSV."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.problems import Problem
from services.common.security import ROLE_AUDIENCES, ROLE_SCOPES
from services.identity.accounts import AccountError, create_user
from services.identity.totp_vault import TotpVault
from services.notifier import figures
from services.notifier.figures import (
    ActionRow,
    Cell,
    ChildRow,
    NotificationRow,
    ReviewRow,
    Rows,
    count_cell,
    minutes_cell,
    share_cell,
)
from services.notifier.figures_charts import Series, bar_chart, line_chart
from services.notifier.portal_partnership import FigureFilters, words
from tests.support.tokens import person

MON = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday of 2026-W49
DEADLINE = MON.replace(hour=8, minute=45)


def note(minutes_to_ack: float | None = None, *, la: str = "332", force: str = "WMP",
         at: datetime = MON, pushed: bool = True, in_time: bool = True, school: bool = True,
         deputy: bool = False, la_stage: bool = False, repeat: int = 0) -> NotificationRow:
    late = timedelta(hours=4)
    return NotificationRow(
        la_code=la, force_code=force, scheduled_at=at,
        deadline_at=DEADLINE if school else None,
        pushed_at=(at + timedelta(minutes=30) + (timedelta(0) if in_time else late))
        if pushed else None,
        acknowledged_at=None if minutes_to_ack is None else at + timedelta(
            minutes=minutes_to_ack),
        escalated_deputy_at=at if deputy else None, escalated_la_at=at if la_stage else None,
        repeat_children=repeat)


def week_of(rows: Rows, week: str = "2026-W49") -> dict[str, Cell]:
    return dict(figures.by_week(rows, [week]))[week]


@pytest.mark.parametrize(("n", "status"), [
    pytest.param(0, "shown", id="zero-shown-as-0"),
    pytest.param(1, "suppressed", id="one"),
    pytest.param(4, "suppressed", id="four"),
    pytest.param(5, "shown", id="five"),
])
def test_counts_from_1_to_4_are_suppressed_zero_is_not(n: int, status: str) -> None:
    cell = count_cell(n)
    assert cell.status == status
    assert cell.csv() == ("[c]" if status == "suppressed" else str(n))
    assert words(cell) == ("fewer than 5" if status == "suppressed" else str(n))


@pytest.mark.parametrize(("part", "base", "csv", "said"), [
    pytest.param(0, 0, "[z]", "not applicable", id="no-base"),
    pytest.param(4, 4, "[c]", "not shown (fewer than 5)", id="base-under-5"),
    pytest.param(4, 5, "80.0", "80%", id="base-5"),
    pytest.param(0, 7, "0.0", "0%", id="none-in-time"),
])
def test_shares_over_fewer_than_5_are_suppressed(part: int, base: int, csv: str,
                                                  said: str) -> None:
    cell = share_cell(part, base)
    assert (cell.csv(), words(cell)) == (csv, said)


def test_medians_over_fewer_than_5_are_suppressed() -> None:
    assert minutes_cell([10, 20, 30, 40], figures.median).csv() == "[c]"
    assert minutes_cell([], figures.median).csv() == "[z]"
    assert minutes_cell([10, 20, 30, 40, 50], figures.median).csv() == "30"
    assert words(minutes_cell([60, 70, 130, 140, 150], figures.median)) == "2 hours 10 minutes"


def test_p90_is_the_nearest_rank() -> None:
    assert figures.p90([float(v) for v in range(1, 11)]) == 9
    assert figures.p90([float(v) for v in range(1, 21)]) == 18
    assert figures.p90([5.0, 1.0, 3.0, 2.0, 4.0]) == 5
    assert figures.median([1.0, 2.0, 3.0, 10.0]) == 2.5


@pytest.mark.parametrize(("moment", "week"), [
    pytest.param(datetime(2026, 11, 29, 23, 30, tzinfo=UTC), "2026-W48", id="sunday-night"),
    pytest.param(datetime(2026, 6, 28, 23, 30, tzinfo=UTC), "2026-W27",
                 id="bst-sunday-2330-utc-is-monday-in-london"),
    pytest.param(datetime(2026, 12, 31, 12, tzinfo=UTC), "2026-W53", id="iso-year-53-weeks"),
    pytest.param(datetime(2027, 1, 4, 0, 0, tzinfo=UTC), "2027-W01", id="new-year"),
])
def test_weeks_are_iso_weeks_in_london(moment: datetime, week: str) -> None:
    assert figures.iso_week(moment) == week


def test_week_ranges_cross_the_year_and_refuse_nonsense() -> None:
    assert figures.weeks_from("2026-W52", "2027-W02") == [
        "2026-W52", "2026-W53", "2027-W01", "2027-W02"]
    assert figures.weeks_from("2026-W49", "2026-W48") == []
    assert figures.parse_week("2026-W54") is None  # 2026 has 53
    assert figures.parse_week("2025-W53") is None  # 2025 has 52
    assert figures.parse_week("2026-W9") is None
    assert figures.parse_week(" 2026-W09 ") == "2026-W09"
    assert figures.last_weeks(MON) == ("2026-W38", "2026-W49")
    # midnight in London, in winter and in summer
    assert figures.week_start("2026-W49").astimezone(UTC).hour == 0
    assert figures.week_start("2026-W27").astimezone(UTC) == datetime(2026, 6, 28, 23,
                                                                          tzinfo=UTC)


def test_notifications_and_their_timeliness() -> None:
    rows = Rows(notifications=[
        *(note(m) for m in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)),
        note(None, in_time=False), note(None, pushed=False),  # told late; never told
        note(400), note(None, school=False), note(None, school=False)])  # the LA's own
    cells = week_of(rows)
    assert cells["notifications"].csv() == "15"
    # base: the 13 schools' notifications; 11 told by the deadline, 10 acknowledged by it
    assert cells["pushed_before_school_day_pct"].csv() == f"{11 / 13 * 100:.1f}"
    assert cells["acknowledged_before_school_day_pct"].csv() == f"{10 / 13 * 100:.1f}"
    assert cells["minutes_to_acknowledge_median"].csv() == "60"
    assert cells["minutes_to_acknowledge_p90"].csv() == "100"


def test_escalations_repeats_and_a_small_week_suppressed() -> None:
    rows = Rows(notifications=[
        *(note(deputy=True, repeat=1) for _ in range(6)), note(deputy=True, la_stage=True),
        note(la_stage=True, repeat=2)])
    cells = week_of(rows)
    assert (cells["escalations_deputy"].csv(), cells["escalations_la"].csv()) == ("7", "[c]")
    assert cells["children_notified_before"].csv() == "8"
    assert week_of(Rows(notifications=[note(5)] * 3))["notifications"].csv() == "[c]"
    assert week_of(Rows(), "2026-W50")["notifications"].csv() == "0"


def test_reviews_children_and_actions() -> None:
    opened = MON - timedelta(days=3)  # the week before
    rows = Rows(
        reviews=[*(ReviewRow("332", "WMP", MON, MON + timedelta(hours=h)) for h in range(1, 6)),
                 ReviewRow("332", "WMP", opened, MON + timedelta(hours=10)),
                 ReviewRow("332", None, MON, None)],
        children=[*(ChildRow("332", "WMP", "unmatched", MON) for _ in range(5)),
                  ChildRow("332", "WMP", "matched", MON), ChildRow("332", None, "review", MON)],
        actions=[*(ActionRow("332", "WMP", MON, "early_help") for _ in range(6)),
                 ActionRow("332", "WMP", MON, "camhs")])
    combined = week_of(rows)  # every force together, the unknown one too
    assert combined["reviews_opened"].csv() == "6"  # not the one opened the week before
    assert combined["reviews_resolved"].csv() == "6"
    assert combined["review_age_minutes_median"].csv() == str(int(3.5 * 60))
    assert combined["children_routed_to_la"].csv() == "5"
    assert (combined["actions_early_help"].csv(), combined["actions_camhs"].csv(),
            combined["actions_housing"].csv()) == ("6", "[c]", "0")
    per_key = figures.tally(rows, figures.by_key)
    assert per_key[("332", "WMP", "2026-W49")].reviews_opened == 5
    assert per_key[("332", "", "2026-W49")].reviews_opened == 1
    assert per_key[("332", "WMP", "2026-W48")].reviews_opened == 1


def test_the_csv_has_a_row_per_la_force_and_week_with_suppressed_cells() -> None:
    rows = Rows(notifications=[*(note(30) for _ in range(6)), note(30, force="GMP"),
                               note(30, la="333", at=MON + timedelta(days=7))])
    out = figures.csv_rows(rows, ["2026-W49", "2026-W50"])
    header = list(figures.CSV_HEADER)
    assert [r[:4] for r in out] == [
        ["332", "GMP", "2026-W49", "2026-11-30"], ["332", "GMP", "2026-W50", "2026-12-07"],
        ["332", "WMP", "2026-W49", "2026-11-30"], ["332", "WMP", "2026-W50", "2026-12-07"],
        ["333", "WMP", "2026-W49", "2026-11-30"], ["333", "WMP", "2026-W50", "2026-12-07"]]
    at = header.index("notifications")
    assert [r[at] for r in out] == ["[c]", "0", "6", "0", "0", "[c]"]
    assert all(len(r) == len(header) for r in out)
    assert out[2][header.index("pushed_before_school_day_pct")] == "100.0"
    assert out[1][header.index("minutes_to_acknowledge_median")] == "[z]"


def test_charts_are_svg_with_a_title_and_mark_suppressed_weeks() -> None:
    weeks = ["30 Nov", "7 Dec", "14 Dec"]
    cells = [count_cell(12), count_cell(3), count_cell(0)]
    svg = str(bar_chart("c1", "Notifications <per> week", weeks, cells, "desc"))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "<title id=\"c1-title\">Notifications &lt;per&gt; week</title>" in svg
    assert svg.count("<rect") == 1  # the suppressed week and the zero week draw no bar
    assert ">c</text>" in svg
    shares = [share_cell(5, 5), share_cell(1, 2), share_cell(4, 5)]
    lines = str(line_chart("c2", "In time", weeks, [Series("Told", shares, "#1d70b8")], "d",
                           share=True, target=0.95))
    assert lines.count("<polyline") == 2  # broken at the suppressed week
    assert "Target 95%" in lines and 'stroke-dasharray="8 4"' in lines
    long = str(line_chart("c3", "To acknowledge", weeks, [
        Series("Median", [minutes_cell([300.0] * 5, figures.median)] * 3, "#1d70b8")], "d",
        share=False))
    assert " h</text>" in long


def test_the_page_shows_the_last_12_weeks_unless_told_and_reports_bad_fields() -> None:
    now = datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    default = FigureFilters.of({}, now)
    assert (default.first, default.last, default.errors) == ("2026-W38", "2026-W49", [])
    bad = FigureFilters.of({"from": "2026-W50", "to": "2026-W49", "force": "wmp"}, now)
    assert (bad.first, bad.last, bad.force) == ("2026-W38", "2026-W49", "WMP")
    assert [e["href"] for e in bad.errors] == ["#from"]
    worse = FigureFilters.of({"from": "last week", "force": "W M P"}, now)
    assert sorted(e["href"] for e in worse.errors) == ["#force", "#from"]
    assert worse.query() == "from=2026-W38&to=2026-W49"


def test_a_partnership_sees_only_its_own_las() -> None:
    filters = FigureFilters.of({"la": "333"}, MON)
    with pytest.raises(Problem) as refused:
        filters.las(person("partnership", las=["332"]))
    assert refused.value.status == 403
    assert filters.las(person("la_officer", las=["332", "333"])) == ["333"]
    assert FigureFilters.of({}, MON).las(person("partnership", las=["333", "332"])) == [
        "332", "333"]


async def test_a_partnership_account_names_its_las_and_no_school() -> None:
    assert ROLE_SCOPES["partnership"] == ("figures:read",)
    assert ROLE_AUDIENCES["partnership"] == ("notifier",)
    for schools, las in (([], []), (["100001"], ["332"])):
        with pytest.raises(AccountError, match="partnership"):
            await create_user(None, vault=TotpVault(bytes(32)),  # type: ignore[arg-type]
                              email="p@partnership.test",
                              password="a long enough password", role="partnership",
                              school_urns=schools, la_codes=las)
