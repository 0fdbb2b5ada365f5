"""The console's on-call page (who is on call now and next, the week's calendar across Berlin's
DST change, policies and routes, feeds for admins) and its overrides (cover, swap, remove:
validated against the on-call file, stored with their audit entry, refused to viewers), on the
bridge process's app with an on-call file, PostgreSQL and a test-driven clock."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.bridge.support import count
from tests.console.oncall_support import DST_WEEK, NOW, oncall_console
from tests.console.support import PASSWORD_HASH, csrf_of, login, switch_user
from tests.oncall.bridge_support import PUBLIC_URL

_BLOCK = re.compile(
    r'class="shift( override)?".*?data-person="([a-z]+)" data-start="([^"]+)"'
    r' data-end="([^"]+)" data-hours="([^"]+)"',
    re.S,
)
_DAY = re.compile(
    r'class="cal-day( today)?" style="left: ([\d.]+)%; width: ([\d.]+)%"'
    r' data-day="([\d-]+)" data-hours="([\d.]+)"'
)


async def page(client, path: str = "/console/oncall") -> str:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    return await response.text()


def section(text: str, ident: str) -> str:
    """The part of the page from the element with this id to the next card or row."""
    start = text.index(f'id="{ident}"')
    markers = ('id="now-', 'id="week-', "</section>", "<details")
    ends = [i for m in markers if (i := text.find(m, start + 1)) > 0]
    return text[start : min(ends)]


def blocks(row: str) -> list[tuple[bool, str, datetime, datetime, float]]:
    return [
        (bool(m[0]), m[1], datetime.fromisoformat(m[2]), datetime.fromisoformat(m[3]), float(m[4]))
        for m in _BLOCK.findall(row)
    ]


def days(row: str) -> list[tuple[bool, float, float, str, float]]:
    return [(bool(m[0]), float(m[1]), float(m[2]), m[3], float(m[4])) for m in _DAY.findall(row)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def test_who_is_on_call_now_and_next_and_the_week_across_the_dst_change(
    oncall_console,
):
    await login(oncall_console, "viewer")
    text = await page(oncall_console)
    assert 'aria-current="page">On <u>c</u>all' in text
    primary = section(text, "now-primary")
    assert "<b>Alice Example</b>" in primary
    assert "until Mon 26 Oct 09:00 CET" in primary  # the week ends after summer time
    assert "next: <b>Bob Example</b> <small>from Mon 26 Oct 09:00 CET" in primary
    daily = section(text, "now-daily")
    assert "<b>Bob Example</b>" in daily
    assert "until Thu 22 Oct 09:00 CEST" in daily
    assert "next: <b>Alice Example</b> <small>from Thu 22 Oct 09:00 CEST" in daily

    # this week, Monday 19 October to Sunday 25 October (25 hours: back to CET)
    assert f"Week of {DST_WEEK}" in text
    grid = days(section(text, "week-daily"))
    assert [d[3] for d in grid] == [f"2026-10-{n}" for n in range(19, 26)]
    assert [d[4] for d in grid] == [24, 24, 24, 24, 24, 24, 25]
    assert [d[3] for d in grid if d[0]] == ["2026-10-21"]  # today
    assert sum(d[2] for d in grid) == pytest.approx(100, abs=0.01)
    assert grid[6][2] == pytest.approx(100 * 25 / 169, abs=0.01)
    daily_shifts = blocks(section(text, "week-daily"))
    assert [(s[1], s[2]) for s in daily_shifts][:2] == [
        ("alice", utc(2026, 10, 18, 7)),  # Sunday's shift reaches into Monday
        ("bob", utc(2026, 10, 19, 7)),
    ]
    saturday = next(s for s in daily_shifts if s[2] == utc(2026, 10, 24, 7))
    assert saturday == (False, "alice", utc(2026, 10, 24, 7), utc(2026, 10, 25, 8), 25.0)
    assert len(daily_shifts) == 8
    assert blocks(section(text, "week-primary")) == [
        (False, "bob", utc(2026, 10, 12, 7), utc(2026, 10, 19, 7), 168.0),
        (False, "alice", utc(2026, 10, 19, 7), utc(2026, 10, 26, 8), 169.0),
    ]
    assert 'class="cal-now" style="left: ' in text
    assert "?week=2026-10-12#week" in text
    assert "?week=2026-10-26#week" in text

    # the next week (a Wednesday's date names its week): all days 24 hours, none today
    later = await page(oncall_console, "/console/oncall?week=2026-10-28")
    assert "Week of 2026-10-26" in later
    assert 'class="cal-now"' not in later
    grid = days(section(later, "week-primary"))
    assert [d[4] for d in grid] == [24] * 7
    assert not any(d[0] for d in grid)
    assert blocks(section(later, "week-primary"))[0][1:3] == ("alice", utc(2026, 10, 19, 7))
    assert blocks(section(later, "week-primary"))[1][1:3] == ("bob", utc(2026, 10, 26, 8))
    # a viewer changes nothing: no forms, no links on the blocks
    assert "Save override" not in text
    assert '<a class="shift' not in text
    for bad in ("nonsense", "2026-13-01", "99999-01-01", "0001-01-01"):
        response = await oncall_console.get(f"/console/oncall?week={bad}")
        assert response.status == 400, bad


async def test_policies_routes_and_feeds_for_admins_only(oncall_console):
    await login(oncall_console, "responder")
    text = html.unescape(await page(oncall_console))
    policy = text[text.index('id="policy-by-phone"') :]
    assert 'severity="critical", category="widget"' in policy[: policy.index("</div>")]
    default = text[text.index('id="policy-default"') :]
    default = default[: default.index("</div>")]
    assert "repeats 1\u00d7" in default
    assert "an acknowledgement lasts 30m00s" in default
    assert "at once: whoever is on call on primary by sms, slack" in default
    assert "after 1m00s: Bob Example by sms" in default
    assert ".ics?token=" not in text
    await switch_user(oncall_console, "admin")
    text = await page(oncall_console)
    assert f"{PUBLIC_URL}/v1/oncall/schedule/primary.ics?token=" in text
    assert f"{PUBLIC_URL}/v1/oncall/person/alice.ics?token=" in text
    # an organization admin: the feeds carry the platform's token, not theirs to hand out
    await oncall_console.bridge.storage.console().upsert_user(
        "oda", PASSWORD_HASH, "admin", oncall_console.clock(), ("org-a",)
    )
    await switch_user(oncall_console, "oda")
    assert ".ics?token=" not in await page(oncall_console)


async def test_feeds_need_the_public_url(db_url, aiohttp_client, console_alertmanager, tmp_path):
    client = await oncall_console(
        db_url, aiohttp_client, tmp_path, console_alertmanager, public_url=""
    )
    await login(client, "admin")
    text = await page(client)
    assert "Set <code>BRIDGE_PUBLIC_URL</code>" in text
    assert ".ics?token=" not in text


async def test_without_an_oncall_file_the_page_says_what_to_set(console):
    csrf = await login(console, "responder")
    text = await page(console)
    assert "Set <code>ONCALL_CONFIG</code>" in text
    response = await console.post(
        "/console/oncall/overrides",
        data={"csrf": csrf, "kind": "cover", "schedule": "primary", "person": "bob"},
        allow_redirects=False,
    )
    assert response.status == 409


def cover(csrf: str, **fields: str) -> dict[str, str]:
    form = {
        "csrf": csrf,
        "kind": "cover",
        "week": DST_WEEK,
        "schedule": "primary",
        "person": "bob",
        "replaces": "alice",
        "start": "2026-10-22T18:00",
        "end": "2026-10-23T08:00",
        "reason": "dentist",
    }
    form.update(fields)
    return form


async def oncall_audit(client) -> list:
    entries = await client.bridge.storage.console().recent_audit(50)
    return [e for e in entries if "on-call" in e.action]


async def test_a_cover_is_stored_audited_and_shown(oncall_console):
    csrf = await login(oncall_console, "responder")
    response = await oncall_console.post(
        "/console/oncall/overrides", data=cover(csrf), allow_redirects=False
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"].startswith(f"/console/oncall?week={DST_WEEK}&notice=")
    (made,) = await oncall_console.bridge.storage.overrides(NOW, NOW + timedelta(days=30))
    assert (made.schedule_id, made.person_id, made.replaces) == ("primary", "bob", "alice")
    assert (made.start, made.end) == (utc(2026, 10, 22, 16), utc(2026, 10, 23, 6))  # CEST
    assert (made.reason, made.created_by) == ("dentist", "console:responder")
    (entry,) = await oncall_audit(oncall_console)
    assert (entry.username, entry.action) == ("responder", "added on-call override")
    assert entry.detail["overrides"] == [made.id]
    assert entry.detail["replaces"] == "alice"

    text = await page(oncall_console)
    label = f"Bob Example, covering Alice Example (override #{made.id}: dentist)"
    assert f"next: <b>{label}</b> <small>from Thu 22 Oct 18:00 CEST" in section(text, "now-primary")
    assert (True, "bob", made.start, made.end, 14.0) in blocks(section(text, "week-primary"))
    assert f'id="override-{made.id}"' in text
    oncall_console.clock.now = utc(2026, 10, 22, 20)
    text = await page(oncall_console)
    assert f"<b>{label}</b>" in section(text, "now-primary")
    assert "next: <b>Alice Example</b> <small>from Fri 23 Oct 08:00 CEST" in text


async def test_take_this_shift_prefills_the_cover_from_a_calendar_block(oncall_console):
    await login(oncall_console, "responder")
    text = await page(oncall_console)
    row = section(text, "week-daily")
    link = re.search(r'<a class="shift"[^>]*data-start="2026-10-24T07:00:00\+00:00"', row)
    assert link, "Saturday's shift is not a link"
    href = html.unescape(re.search(r'href="([^"]+)"', row[link.start() :])[1])
    assert "schedule=daily" in href
    assert "replaces=alice" in href
    form = await page(oncall_console, href.split("#")[0])
    cover_form = form[form.index('id="override"') : form.index('id="swap"')]
    assert 'value="2026-10-24T09:00"' in cover_form
    assert 'value="2026-10-25T09:00"' in cover_form
    assert '<option value="alice" selected>' in cover_form
    assert '<option value="daily" selected>' in cover_form


async def test_a_swap_stores_both_covers_in_one_audited_write(oncall_console):
    csrf = await login(oncall_console, "responder")
    form = cover(
        csrf,
        kind="swap",
        other="alice",
        other_start="2026-11-02T09:00",
        other_end="2026-11-02T21:00",
    )
    del form["replaces"]
    response = await oncall_console.post(
        "/console/oncall/overrides", data=form, allow_redirects=False
    )
    assert response.status == 303, await response.text()
    first, second = await oncall_console.bridge.storage.overrides(NOW, NOW + timedelta(days=30))
    assert (first.person_id, first.replaces, first.start) == ("bob", "alice", utc(2026, 10, 22, 16))
    assert (second.person_id, second.replaces) == ("alice", "bob")
    assert (second.start, second.end) == (utc(2026, 11, 2, 8), utc(2026, 11, 2, 20))  # CET
    (entry,) = await oncall_audit(oncall_console)
    assert entry.action == "swapped on-call shifts"
    assert entry.detail["overrides"] == [first.id, second.id]


SWAP = {"kind": "swap", "other": "alice", "replaces": ""}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"end": "2026-10-22T17:00"}, "end must be after start"),
        ({"person": "mallory"}, "person: not a person of the on-call file ('mallory')"),
        ({"replaces": "eve"}, "replaces: not a person of the on-call file"),
        ({"schedule": "nightly"}, "schedule: not a schedule of the on-call file"),
        ({"replaces": "bob"}, "bob cannot cover their own time"),
        ({"end": "2027-02-01T08:00"}, "an override lasts at most 90 days"),
        ({"start": "2026-10-01T08:00", "end": "2026-10-02T08:00"}, "end is in the past"),
        ({"start": "2028-01-01T08:00", "end": "2028-01-02T08:00"}, "more than 366 days ahead"),
        ({"start": "tomorrow"}, "start: expected a time like 2026-12-07T09:00"),
        ({"end": ""}, "end: missing"),
        ({"reason": "x" * 501}, "reason: at most 500 characters"),
        ({"kind": "steal"}, "kind must be one of cover, swap"),
        # a swap's first cover is right, its second is not: neither is stored
        (
            {**SWAP, "other_start": "2026-11-02T21:00", "other_end": "2026-11-02T09:00"},
            "other end must be after other start",
        ),
        ({**SWAP, "other_start": "2026-11-02T09:00"}, "other end: missing"),
        ({**SWAP, "other": "bob"}, "bob cannot cover their own time"),
    ],
)
async def test_an_invalid_override_is_a_400_with_the_reason_and_stores_nothing(
    oncall_console, fields, reason
):
    csrf = await login(oncall_console, "responder")
    response = await oncall_console.post(
        "/console/oncall/overrides", data=cover(csrf, **fields), allow_redirects=False
    )
    assert response.status == 400
    assert reason in html.unescape(await response.text())
    assert await count(oncall_console.bridge.storage, "oncall_overrides") == 0
    assert await oncall_audit(oncall_console) == []


async def test_viewers_and_forged_forms_change_nothing(oncall_console):
    csrf = await login(oncall_console, "viewer")
    response = await oncall_console.post(
        "/console/oncall/overrides", data=cover(csrf), allow_redirects=False
    )
    assert response.status == 403
    responder_csrf = await switch_user(oncall_console, "responder")
    response = await oncall_console.post(
        "/console/oncall/overrides", data=cover("0" * 64), allow_redirects=False
    )
    assert response.status == 403  # CSRF
    assert await count(oncall_console.bridge.storage, "oncall_overrides") == 0

    made = await oncall_console.bridge.storage.add_override(
        "primary", "bob", utc(2026, 10, 22, 16), utc(2026, 10, 23, 6), replaces="alice"
    )
    viewer_csrf = await switch_user(oncall_console, "viewer")
    response = await oncall_console.post(
        f"/console/oncall/overrides/{made.id}/remove",
        data={"csrf": viewer_csrf},
        allow_redirects=False,
    )
    assert response.status == 403
    assert await count(oncall_console.bridge.storage, "oncall_overrides") == 1
    assert responder_csrf  # the responder's session was replaced by the viewer's


async def test_a_responder_removes_an_override(oncall_console):
    made = await oncall_console.bridge.storage.add_override(
        "primary", "bob", utc(2026, 10, 22, 16), utc(2026, 10, 23, 6), replaces="alice"
    )
    csrf = await login(oncall_console, "responder")
    text = await page(oncall_console)
    assert f'action="/console/oncall/overrides/{made.id}/remove"' in text
    path = f"/console/oncall/overrides/{made.id}/remove"
    response = await oncall_console.post(
        path, data={"csrf": csrf, "week": DST_WEEK}, allow_redirects=False
    )
    assert response.status == 303
    assert "removed" in response.headers["Location"]
    assert await count(oncall_console.bridge.storage, "oncall_overrides") == 0
    (entry,) = await oncall_audit(oncall_console)
    assert entry.action == "removed on-call override"
    assert (entry.detail["override"], entry.detail["person"]) == (made.id, "bob")
    response = await oncall_console.post(path, data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 404
    for bad in ("0", "x", str(2**63)):
        response = await oncall_console.post(
            f"/console/oncall/overrides/{bad}/remove", data={"csrf": csrf}
        )
        assert response.status == 404
    assert csrf_of(await page(oncall_console))
