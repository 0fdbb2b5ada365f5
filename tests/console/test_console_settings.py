"""The alert console's settings and users: thresholds, preferences, users added by an admin
or by ``passiton-monitoring user add``."""

from __future__ import annotations

import argparse
import asyncio
import io

from bridge.storage import open_storage
from console.cli import cmd_user
from tests.bridge.support import count, make_config
from tests.console.support import PASSWORD_HASH, fire, login


async def test_settings_validate_and_save_and_the_threshold_is_exported(console):
    await fire(console, organization_id="org-set")
    token = await login(console, "admin")
    page = await (await console.get("/console/settings")).text()
    assert "org-set" in page
    bad_forms = [
        ({"channels_critical": "slack, telegram"}, "unknown telegram"),
        ({"email": "not-an-address"}, "e-mail address not valid"),
        ({"sms": "0170 123456"}, "E.164"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"quiet_hours_start": "22:00"}, "both a start and an end"),
        ({"quiet_hours_start": "25:00", "quiet_hours_end": "07:00"}, "expected HH:MM"),
        ({"min_severity": "urgent"}, "minimum severity"),
    ]
    for form, problem in bad_forms:
        response = await console.post(
            "/console/settings/preferences",
            data={"csrf": token, "org": "org-set", "timezone": "UTC", **form},
        )
        assert response.status == 400, form
        assert problem in await response.text(), form
    assert await count(console.bridge.storage, "notification_preferences") == 0
    response = await console.post(
        "/console/settings/preferences",
        data={
            "csrf": token,
            "org": "org-set",
            "channels_critical": "pagerduty sms",
            "channels_high": "slack",
            "email": "ops@example.com",
            "sms": "+14155550100",
            "min_severity": "medium",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:00",
            "timezone": "Europe/Berlin",
        },
    )
    assert response.status == 200
    html = await response.text()
    assert "preferences saved" in html
    pref = await console.bridge.storage.console().preference("org-set")
    assert pref.channels == {"critical": ["pagerduty", "sms"], "high": ["slack"]}
    assert pref.recipients == {"email": ["ops@example.com"], "sms": ["+14155550100"]}
    assert pref.timezone == "Europe/Berlin"
    assert str(pref.quiet_hours_start) == "22:00:00"
    for threshold, problem in (("1.5", "within"), ("abc", "not a number"), ("nan", "within")):
        response = await console.post(
            "/console/settings/thresholds",
            data={
                "csrf": token,
                "org": "org-set",
                "alertname": "PaymentFailureRatioHigh",
                "threshold": threshold,
                "enabled": "on",
            },
        )
        assert response.status == 400
        assert problem in await response.text()
    response = await console.post(
        "/console/settings/thresholds",
        data={"csrf": token, "org": "org-set", "alertname": "NotTunable", "threshold": "0.3"},
    )
    assert response.status == 400
    response = await console.post(
        "/console/settings/thresholds",
        data={
            "csrf": token,
            "org": "org-set",
            "alertname": "PaymentFailureRatioHigh",
            "threshold": "0.35",
            "enabled": "on",
        },
    )
    assert response.status == 200
    html = await response.text()
    assert 'data-exported="PaymentFailureRatioHigh">0.35<' in html
    assert "Prometheus unreachable" in html
    metrics = await (await console.get("/metrics")).text()
    assert (
        'passiton_alert_threshold{alertname="PaymentFailureRatioHigh",organization_id="org-set"}'
        " 0.35" in metrics
    )
    response = await console.post(
        "/console/settings/thresholds",
        data={
            "csrf": token,
            "org": "org-set",
            "alertname": "PaymentFailureRatioHigh",
            "delete": "1",
        },
    )
    assert response.status == 200
    metrics = await (await console.get("/metrics")).text()
    assert 'organization_id="org-set"' not in metrics
    assert (await console.get("/console/settings?org=bad%20org!")).status == 400


async def test_admin_adds_users_with_validation(console):
    token = await login(console, "admin")
    for form, problem in (
        ({"username": "a b", "role": "viewer", "password": "p" * 16}, "user name"),
        ({"username": "bo", "role": "root", "password": "p" * 16}, "role must be"),
        ({"username": "bo", "role": "viewer", "password": "short"}, "at least 12"),
    ):
        response = await console.post("/console/users", data={"csrf": token, **form})
        assert response.status == 400
        assert problem in await response.text()
    response = await console.post(
        "/console/users",
        data={"csrf": token, "username": "bo", "role": "responder", "password": "a long password"},
    )
    assert "bo saved as responder" in await response.text()
    console.session.cookie_jar.clear()
    await login(console, "bo", "a long password")


# -- the command line -----------------------------------------------------------------------


class _Stdin(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_user_add_reads_the_password_from_stdin_and_hashes_it(db_url, capsys):
    config = make_config(db_url)
    args = argparse.Namespace(name="carol", role="responder")
    assert cmd_user(args, config, _Stdin("short\n")) == 2
    assert "at least 12" in capsys.readouterr().err
    assert cmd_user(args, config, _Stdin("a long enough secret\n")) == 0
    assert "carol saved with role responder" in capsys.readouterr().out
    bad = argparse.Namespace(name="no spaces allowed", role="viewer")
    assert cmd_user(bad, config, _Stdin("a long enough secret\n")) == 2

    async def stored():
        async with open_storage(db_url) as storage:
            return await storage.console().get_user("carol")

    user = asyncio.run(stored())
    assert user.role == "responder"
    assert user.password_hash.startswith("$argon2id$")
    assert "a long enough secret" not in user.password_hash


# -- organization scopes -------------------------------------------------------------------

_PREFERENCES = {
    "channels_critical": "sms",
    "email": "alice@example.org",
    "sms": "+15550000001",
    "min_severity": "high",
    "timezone": "UTC",
}


async def _org_users(console) -> None:
    store = console.bridge.storage.console()
    for name, role in (("oda", "admin"), ("vic", "viewer")):
        await store.upsert_user(name, PASSWORD_HASH, role, console.clock(), ("org-a",))


async def test_an_organization_admin_tunes_their_organizations_only(console):
    await fire(console, organization_id="org-a")
    await fire(console, organization_id="org-b")
    await _org_users(console)
    token = await login(console, "oda")
    page = await (await console.get("/console/settings")).text()
    assert 'href="?org=org-a"' in page
    assert "org-b" not in page  # the list names theirs only
    assert 'href="/console/users"' not in page
    saved = await console.post(
        "/console/settings/preferences", data={"csrf": token, "org": "org-a", **_PREFERENCES}
    )
    assert saved.status == 200
    assert "preferences saved" in await saved.text()
    routed = console.bridge.router.preferences("org-a")  # routing reloaded
    assert routed.recipients == {"email": ["alice@example.org"], "sms": ["+15550000001"]}
    saved = await console.post(
        "/console/settings/thresholds",
        data={
            "csrf": token,
            "org": "org-a",
            "alertname": "PaymentFailureRatioHigh",
            "threshold": "0.3",
            "enabled": "on",
        },
    )
    assert saved.status == 200
    assert 'data-exported="PaymentFailureRatioHigh">0.3<' in await saved.text()
    # their contacts in full, on the page they can change
    page = await (await console.get("/console/settings?org=org-a")).text()
    assert 'value="alice@example.org"' in page
    assert "Save preferences" in page

    # another organization's settings: 403, and nothing stored
    refused = await console.get("/console/settings?org=org-b")
    assert refused.status == 403
    assert "Organization org-b is outside your organizations." in await refused.text()
    before = await count(console.bridge.storage, "console_audit")
    for path, form in (
        ("preferences", _PREFERENCES),
        ("thresholds", {"alertname": "PaymentFailureRatioHigh", "threshold": "0.2"}),
        ("thresholds", {"alertname": "PaymentFailureRatioHigh", "delete": "1"}),
    ):
        refused = await console.post(
            f"/console/settings/{path}", data={"csrf": token, "org": "org-b", **form}
        )
        assert refused.status == 403
        assert "outside your organizations" in await refused.text()
    assert await console.bridge.storage.console().preference("org-b") is None
    assert await console.bridge.storage.console().configurations("org-b") == []
    assert await count(console.bridge.storage, "console_audit") == before
    # never the console's users
    assert (await console.get("/console/users")).status == 403
    refused = await console.post(
        "/console/users",
        data={"csrf": token, "username": "mal", "role": "admin", "password": "a long password"},
    )
    assert refused.status == 403
    assert "an admin of every organization" in await refused.text()
    assert await console.bridge.storage.console().get_user("mal") is None


async def test_viewers_read_settings_with_contacts_masked(console):
    await fire(console, organization_id="org-a")
    await fire(console, organization_id="org-b")
    await _org_users(console)
    token = await login(console, "admin")
    for org in ("org-a", "org-b"):
        await console.post(
            "/console/settings/preferences", data={"csrf": token, "org": org, **_PREFERENCES}
        )
    for responder in ("admin", "responder"):  # in full
        console.session.cookie_jar.clear()
        await login(console, responder)
        page = await (await console.get("/console/settings?org=org-b")).text()
        assert 'value="alice@example.org"' in page
        assert 'value="+15550000001"' in page
    # a viewer of every organization: every organization's, masked, read-only
    console.session.cookie_jar.clear()
    await login(console, "viewer")
    page = await (await console.get("/console/settings?org=org-b")).text()
    assert 'value="a•••@example.org"' in page
    assert 'value="+1•••••0001"' in page
    assert "alice@" not in page
    assert "0000001" not in page
    assert "masked for the viewer role" in page
    assert "Save preferences" not in page
    # a viewer limited to organizations: theirs, masked; no other's
    console.session.cookie_jar.clear()
    token = await login(console, "vic")
    page = await (await console.get("/console/settings?org=org-a")).text()
    assert 'value="a•••@example.org"' in page
    assert "alice@" not in page
    assert (await console.get("/console/settings?org=org-b")).status == 403
    refused = await console.post(
        "/console/settings/preferences", data={"csrf": token, "org": "org-a", **_PREFERENCES}
    )
    assert refused.status == 403
    assert "needs the admin role" in await refused.text()
