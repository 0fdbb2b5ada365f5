"""Per-organization settings (preferences, thresholds) and users.

Every user sees the settings of their organizations (all of them when not limited): a viewer
with the recipients' phone numbers and addresses masked (``console/contacts.py``); an admin
changes them, an admin limited to organizations (an organization admin) those of their
organizations only (another's is a 403, nothing saved). The console's users are the admin's
of every organization (``platform_admin``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bridge.model import SEVERITIES
from bridge.storage.console import (
    ROLES,
)
from console import upstream
from console.auth import (
    Busy,
    valid_username,
)
from console.common import (
    PREFIX,
    Console,
    _audit,
    _back,
    _console,
    _forbidden,
    _form,
    _visitor,
    platform_admin,
    render,
    require,
)
from console.contacts import reads_contacts, recipients_for
from console.forms import (
    TUNABLE,
    FormError,
    parse_configuration,
    parse_organizations,
    parse_preference,
    valid_organization,
)
from console.passwords import password_problems


async def _threshold_readback(console: Console, organization_id: str) -> dict[str, Any]:
    """What the bridge exports now, and what Prometheus last scraped."""
    exported = {
        name: value
        for org, name, value in console.host.exported_thresholds()
        if org == organization_id
    }
    scraped: dict[str, float] | str = {}
    assert console.http is not None
    try:
        result = await upstream.instant(
            console.http,
            console.host.prometheus_url,
            f'passiton_alert_threshold{{organization_id="{organization_id}"}}',
        )
        scraped = {r["metric"].get("alertname", ""): float(r["value"][1]) for r in result}
    except upstream.UpstreamError as exc:
        scraped = str(exc)
    return {"exported": exported, "scraped": scraped}


def _own(request: web.Request, organization_id: str) -> str:
    """``organization_id`` when the user sees it; otherwise a 403 for the handler."""
    user = _visitor(request).user
    assert user is not None
    if not user.sees(organization_id):
        raise _forbidden(request, f"Organization {organization_id} is outside your organizations.")
    return organization_id


async def settings_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    user = _visitor(request).user
    assert user is not None
    recent = await console.store.organizations(console.now() - timedelta(days=90))
    if user.organizations is None:
        organizations = recent
    else:  # theirs, those with recent alerts first
        organizations = [o for o in recent if user.sees(o)]
        organizations += [o for o in user.organizations if o not in organizations]
    org = request.query.get("org", "").strip()
    context: dict[str, Any] = {"organizations": organizations, "org": org}
    if org:
        try:
            org = _own(request, valid_organization(org))
        except FormError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        preference = await console.store.preference(org)
        context.update(
            preference=preference,
            recipients=recipients_for(user.role, preference.recipients if preference else {}),
            masked=not reads_contacts(user.role),
            configurations={c.alertname: c for c in await console.store.configurations(org)},
            readback=await _threshold_readback(console, org),
        )
    return render(
        request,
        "settings.html",
        tunable=TUNABLE,
        severities=SEVERITIES,
        notice=request.query.get("notice", ""),
        problems=[],
        **context,
    )


@require("admin")
async def save_preferences(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    form = await _form(request)
    try:
        org = _own(request, valid_organization(form.get("org", "")))
        row = parse_preference(org, form)
    except FormError as exc:
        return render(
            request, "problem.html", status=400, message="Not saved.", problems=exc.problems
        )
    entry = _audit(
        request,
        "changed preferences",
        organization_id=org,
        channels=row.channels,
        min_severity=row.min_severity,
        timezone=row.timezone,
    )
    await console.store.save_preference(row, console.now(), entry)
    await console.host.reload_routing()
    raise _back(f"{PREFIX}/settings?{urlencode({'org': org})}", "preferences saved")


@require("admin")
async def save_threshold(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    form = await _form(request)
    try:
        org = _own(request, valid_organization(form.get("org", "")))
        if form.get("delete") == "1":
            alertname = form.get("alertname", "")
            if alertname not in TUNABLE:
                raise FormError([f"alert name must be one of {', '.join(TUNABLE)}"])
            entry = _audit(request, "removed threshold", organization_id=org, alertname=alertname)
            await console.store.delete_configuration(org, alertname, entry)
            notice = f"{alertname}: back to the default"
        else:
            row = parse_configuration(org, form)
            entry = _audit(
                request,
                "changed threshold",
                organization_id=org,
                alertname=row.alertname,
                threshold=row.threshold,
                enabled=row.enabled,
            )
            await console.store.save_configuration(row, console.now(), entry)
            notice = f"{row.alertname} saved"
    except FormError as exc:
        return render(
            request, "problem.html", status=400, message="Not saved.", problems=exc.problems
        )
    await console.host.reload_routing()
    raise _back(f"{PREFIX}/settings?{urlencode({'org': org})}", notice)


@platform_admin
async def users_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    return render(
        request,
        "users.html",
        users=await console.store.list_users(),
        audit=await console.store.recent_audit(100),
        roles=ROLES,
        notice=request.query.get("notice", ""),
    )


@platform_admin
async def save_user(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    form = await _form(request)
    username, role, password = (
        form.get("username", "").strip(),
        form.get("role", ""),
        form.get("password", ""),
    )
    problems = []
    if not valid_username(username):
        problems.append("user name: 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        problems.append(f"role must be one of {', '.join(ROLES)}")
    problems += password_problems(username, password)
    try:
        organizations = parse_organizations(form.get("organizations", ""))
    except FormError as exc:
        problems += exc.problems
        organizations = None
    if problems:
        return render(request, "problem.html", status=400, message="Not saved.", problems=problems)
    try:
        password_hash = await console.work.hash(password)
    except Busy:
        return render(request, "problem.html", status=503, message="Busy; try again.")
    await console.store.upsert_user(username, password_hash, role, console.now(), organizations)
    limited = ", ".join(organizations or ())
    await console.store.audit(
        _audit(request, "saved user", username=username, role=role, organizations=limited)
    )
    raise _back(
        f"{PREFIX}/users", f"{username} saved as {role}{' for ' + limited if limited else ''}"
    )
