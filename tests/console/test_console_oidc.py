"""Signing in to the console with an OpenID provider: a local provider (``tests/fakes/oidc.py``:
discovery, JWKS with a real RSA key, auto-consent, a token endpoint checking code, client and
PKCE) reached over real HTTP through the console's own client code; the mapped role and
organizations, rewritten at every sign-in; a scoped user refused elsewhere; and the attacks the
callback must refuse (state, replay, PKCE, nonce, keys, algorithms, expiry, audience)."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from tests.console.api_support import get, post, token_for
from tests.console.oidc_support import (
    Leg,
    authorize,
    callback,
    sign_in,
    start,
)
from tests.console.support import (
    PASSWORD,
    PASSWORD_HASH,
    alert_path,
    csrf_of,
    incident_ids,
    outage,
)
from tests.fakes.oidc import CLIENT_ID, s256

ADA = "ada@example.org"


@pytest.fixture
def console(oidc_console):
    return oidc_console


@pytest.fixture
def provider(oidc_provider):
    return oidc_provider


async def user_row(console, name: str = ADA):
    rows = await console.bridge.storage.query(
        "SELECT username, password_hash, role, organizations, oidc_issuer, oidc_subject,"  # noqa: S608
        f" session_epoch FROM console_users WHERE username = '{name}'"
    )
    return rows[0] if rows else None


async def audit(console, action: str) -> list[dict]:
    return await console.bridge.storage.query(
        "SELECT username, detail::text AS detail FROM console_audit"  # noqa: S608
        f" WHERE action = '{action}' ORDER BY id"
    )


async def signed_in(console) -> bool:
    """Whether the test client's session is a user's (else: sent to the login page)."""
    response = await console.get("/console/", allow_redirects=False)
    assert response.status in (200, 303), await response.text()
    return response.status == 200


async def test_sign_in_lands_with_the_mapped_role_and_organizations(console, provider):
    page = await (await console.get("/console/login?next=/console/history")).text()
    assert "Sign in with Local provider" in page
    assert 'href="/console/oidc/start?next=/console/history"' in page
    assert 'name="password"' in page  # local passwords stay

    started = await console.get("/console/oidc/start?next=/console/history", allow_redirects=False)
    assert started.status == 303
    url = started.headers["Location"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{provider.issuer}/authorize"
    asked = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert asked["response_type"] == "code"
    assert asked["client_id"] == CLIENT_ID
    assert asked["scope"] == "openid email profile"
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["code_challenge"]) == 43
    assert len(asked["state"]) >= 43
    assert len(asked["nonce"]) >= 43
    assert asked["redirect_uri"] == str(console.make_url("/console/oidc/callback"))
    flow = next(
        c for c in started.headers.getall("Set-Cookie") if c.startswith("passiton_console_oidc=")
    )
    for flag in ("HttpOnly", "Path=/console/", "SameSite=Lax", "Max-Age=600"):
        assert flag in flow

    response = await callback(console, await authorize(url))
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/console/history"
    set_cookies = response.headers.getall("Set-Cookie")
    session = next(c for c in set_cookies if c.startswith("passiton_console="))
    for flag in ("HttpOnly", "Path=/console/", "SameSite=Lax"):
        assert flag in session
    # the flow is used up: its cookie is cleared
    cleared = [c for c in set_cookies if c.startswith("passiton_console_oidc=")]
    assert cleared
    assert "Max-Age=0" in cleared[0]

    row = await user_row(console)
    assert row["role"] == "responder"  # engineers=responder
    assert row["organizations"] == ["org-a"]
    assert row["password_hash"] == ""
    assert (row["oidc_issuer"], row["oidc_subject"]) == (provider.issuer, "user-0001")
    assert await signed_in(console)
    home = await console.get("/console/")
    assert ADA in await home.text()

    # the token request: client_secret_basic and the PKCE verifier of the challenge
    token_request = next(r for r in provider.requests if r.path == "/token")
    assert token_request.headers["authorization"].startswith("Basic ")
    form = token_request.form()
    assert s256(form["code_verifier"]) == asked["code_challenge"]
    assert form["redirect_uri"] == asked["redirect_uri"]
    [entry] = await audit(console, "login")
    assert entry["username"] == ADA
    assert '"method": "oidc"' in entry["detail"]
    assert '"role": "responder"' in entry["detail"]

    # no password login for a user of the provider
    console.session.cookie_jar.clear()
    login = await console.get("/console/login")
    refused = await console.post(
        "/console/login",
        data={"csrf": csrf_of(await login.text()), "username": ADA, "password": ""},
        allow_redirects=False,
    )
    assert refused.status == 401
    # ...while local passwords keep working beside the provider
    local = await console.post(
        "/console/login",
        data={"csrf": csrf_of(await login.text()), "username": "admin", "password": PASSWORD},
        allow_redirects=False,
    )
    assert local.status == 303


async def test_a_scoped_user_is_refused_other_organizations_pages_and_api_objects(
    console, provider
):
    await outage(console)  # incidents of org-a, org-b, org-c, org-w and the platform
    assert (await sign_in(console)).status == 303
    ids = await incident_ids(console)
    home = await (await console.get("/console/")).text()
    assert "org-a" in home
    assert "WidgetLoadErrorRatioHigh" not in home
    assert (await console.get(await alert_path(console, "pay0"))).status == 200
    # another organization's alert and incident: 403, saying so
    other = await console.get(await alert_path(console, "pay1"))
    assert other.status == 403
    assert "This alert is outside your organizations." in await other.text()
    other = await console.get(f"/console/incidents/{ids['wid1']}")
    assert other.status == 403
    assert f"Incident #{ids['wid1']} is outside your organizations." in await other.text()
    # the settings of their organizations only; the review is of their organizations only
    settings = await console.get("/console/settings")
    assert settings.status == 200
    assert "org-b" not in await settings.text()
    settings = await console.get("/console/settings?org=org-b")
    assert settings.status == 403
    assert "outside your organizations" in await settings.text()
    review = await console.get("/console/review")
    assert review.status == 200
    assert "org-b" not in await review.text()

    # the API reads no session: the console's cookie is not a credential there
    assert (await console.get("/api/v1/incidents")).status == 401
    # a token of the user is limited to the user's organizations
    token = await token_for(console, ADA)
    listed = await get(console, "/incidents", token)
    assert {o for i in listed["incidents"] for o in i["organizations"]} == {"org-a"}
    await get(console, f"/incidents/{ids['wid1']}", token, status=403)
    refused = await get(console, "/settings?organization=org-b", token, status=403)
    assert refused == {"error": "organization org-b is outside the token's organizations"}
    await post(
        console,
        "/silences",
        token,
        status=403,
        json={
            "matchers": [{"name": "organization_id", "value": "org-b"}],
            "duration_seconds": 3600,
            "comment": "not mine",
        },
    )
    # the provider widens the user: every organization, admin; read at the next sign-in
    provider.user |= {"groups": ["engineers", "oncall-admins"], "organizations": ["*"]}
    assert (await sign_in(console)).status == 303
    row = await user_row(console)
    assert (row["role"], row["organizations"]) == ("admin", None)
    assert (await console.get("/console/settings")).status == 200
    # a token keeps the organizations it was made with (within its user's, never beyond)
    await get(console, "/settings?organization=org-b", token, status=403)


async def test_rights_removed_at_the_provider_are_removed_here(console, provider):
    provider.user |= {"groups": ["oncall-admins"], "organizations": ["*"]}
    assert (await sign_in(console)).status == 303
    assert (await user_row(console))["role"] == "admin"
    token = await token_for(console, ADA)
    await get(console, "/incidents", token)

    # an admin limited to organizations is an organization admin: theirs, not the users
    provider.user |= {"organizations": ["org-a", "org-b"]}
    assert (await sign_in(console)).status == 303
    row = await user_row(console)
    assert (row["role"], row["organizations"]) == ("admin", ["org-a", "org-b"])
    assert "org-a, org-b" in (await audit(console, "login"))[-1]["detail"]
    assert (await console.get("/console/settings?org=org-a")).status == 200
    assert (await console.get("/console/settings?org=org-c")).status == 403
    assert (await console.get("/console/users")).status == 403

    # the group is gone at the provider: refused, and the account keeps no rights
    old_session = console.session.cookie_jar.filter_cookies(console.make_url("/console/"))
    provider.user |= {"groups": ["marketing"]}
    refused = await sign_in(console)
    assert refused.status == 403
    assert "has no console role" in await refused.text()
    row = await user_row(console)
    assert (row["role"], row["organizations"]) == ("viewer", [])
    console.session.cookie_jar.update_cookies(old_session)
    assert not await signed_in(console)  # that session ended
    listed = await get(console, "/incidents", token)
    assert listed["incidents"] == []  # and the token sees nothing
    [withdrawn] = await audit(console, "rights withdrawn")
    assert withdrawn["username"] == ADA

    # no organization at all in the claim: refused (never "every organization")
    provider.user |= {"groups": ["engineers"], "organizations": []}
    refused = await sign_in(console)
    assert refused.status == 403
    assert "names no organization" in await refused.text()
    del provider.user["organizations"]
    assert (await sign_in(console)).status == 403


async def test_a_local_user_of_that_name_is_never_taken_over(console, provider):
    storage = console.bridge.storage
    await storage.console().upsert_user(ADA, PASSWORD_HASH, "viewer", console.clock())
    refused = await sign_in(console)
    assert refused.status == 403
    assert f"already has a user named {ADA}" in await refused.text()
    row = await user_row(console)
    assert row["oidc_subject"] is None
    assert row["role"] == "viewer"
    assert not await signed_in(console)

    # another subject's name is not taken either; its own keeps the name of its first sign-in
    provider.user |= {"sub": "user-0002", "email": "grace@example.org"}
    assert (await sign_in(console)).status == 303
    provider.user |= {"email": "grace.hopper@example.org"}
    console.session.cookie_jar.clear()
    assert (await sign_in(console)).status == 303
    assert (await user_row(console, "grace@example.org"))["oidc_subject"] == "user-0002"
    assert await user_row(console, "grace.hopper@example.org") is None
    # `user add` of that name makes it a local user: the provider no longer signs into it
    # (the subject's next sign-in makes a user of its current name)
    await storage.console().upsert_user(
        "grace@example.org", PASSWORD_HASH, "viewer", console.clock()
    )
    assert (await user_row(console, "grace@example.org"))["oidc_subject"] is None
    console.session.cookie_jar.clear()
    assert (await sign_in(console)).status == 303
    assert (await user_row(console, "grace@example.org"))["oidc_subject"] is None
    assert (await user_row(console, "grace.hopper@example.org"))["oidc_subject"] == "user-0002"


async def test_the_callback_refuses_every_forged_or_broken_leg(console, provider, caplog):
    caplog.set_level(logging.DEBUG)
    issued: list[str] = []

    async def refused(leg: Leg | dict, status: int, words: str) -> None:
        response = await callback(console, leg)
        body = await response.text()
        assert response.status == status, body
        assert words in body
        assert not await signed_in(console)

    # a forged state: refused before the code is exchanged
    url = await start(console)
    leg = await authorize(url)
    await refused({**leg.query, "state": "forged"}, 400, "state does not match")
    assert not any(r.path == "/token" for r in provider.requests)
    # no flow in this browser (started elsewhere, or expired): refused
    await start(console)
    console.session.cookie_jar.clear()
    await refused(await authorize(url), 400, "started in another browser")

    # a good sign-in, then its callback replayed (the flow is used up) ...
    first = await authorize(await start(console))
    issued.append(first.query["code"])
    assert (await callback(console, first)).status == 303
    console.session.cookie_jar.clear()
    await refused(first, 400, "started in another browser")
    # ... and its code replayed into a new flow: the provider refuses it
    console.session.cookie_jar.clear()
    second = await authorize(await start(console))
    await refused(
        {"code": first.query["code"], "state": second.query["state"]}, 400, "code (invalid_grant)"
    )
    assert provider.refusals[-1] == "code already used"

    # a code bound to another PKCE challenge (an injected code): the provider refuses it
    url = await start(console)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["code_challenge"] = s256("an attacker's own verifier, not the console's flow")
    leg = await authorize(urlunsplit(parts._replace(query=urlencode(query))))
    issued.append(leg.query["code"])
    await refused(leg, 400, "code (invalid_grant)")
    assert provider.refusals[-1] == "PKCE verifier does not match"

    # the provider says no
    provider.deny = "access_denied"
    await refused(await authorize(await start(console)), 403, "(access_denied: The user said no.)")
    provider.deny = ""
    # the token endpoint down
    provider.script(503, {"error": "temporarily_unavailable"})
    await refused(await authorize(await start(console)), 502, "token endpoint answered HTTP 503")

    # ID tokens the console must not accept
    provider.algorithms = ["RS256", "HS256", "none"]  # a provider that would allow worse
    hostile = {  # name: (how the provider signs, what it changes, why the console refuses)
        "wrong nonce": ("key", lambda h, c: c.update(nonce="another flow's"), "claim: &#39;nonce"),
        "another key under the same kid": ("other", None, "bad_signature"),
        "alg none": ("none", None, "Algorithm of &#39;none&#39; is not allowed"),
        "HS256 keyed with the public key": ("hs256", None, "&#39;HS256&#39; is not allowed"),
        "expired": (
            "key",
            lambda h, c: c.update(exp=c["iat"] - 3600, iat=c["iat"] - 7200),
            "expired_token",
        ),
        "another audience": ("key", lambda h, c: c.update(aud="someone-else"), "claim: &#39;aud"),
        "another issuer": ("key", lambda h, c: c.update(iss="https://evil.example"), "&#39;iss"),
        "no subject": ("key", lambda h, c: c.pop("sub"), "Missing claim: &#39;sub"),
    }
    before = len(await audit(console, "login failed"))
    for name, (sign_with, tamper, why) in hostile.items():
        provider.sign_with, provider.tamper = sign_with, tamper
        leg = await authorize(await start(console))
        issued.append(leg.query["code"])
        response = await callback(console, leg)
        assert response.status == 403, name
        page = await response.text()
        assert "ID token is not valid" in page, name
        assert why in page, (name, page)
        assert not await signed_in(console), name
    failures = await audit(console, "login failed")
    assert len(failures) == before + len(hostile)
    assert all('"reason": "id_token"' in f["detail"] for f in failures[before:])
    assert (await user_row(console))["role"] == "responder"  # only the one good sign-in

    # nothing logged or audited holds a code or a token
    tokens = [r for r in provider.requests if r.path == "/token"]
    assert tokens
    # (the test server's own access log is the harness's: the bridge serves without one)
    ours = [r for r in caplog.records if r.name != "aiohttp.access"]
    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in ours)
    everything = logged + str(await console.bridge.storage.query("SELECT * FROM console_audit"))
    for code in issued:
        assert code not in everything
    metrics = await (await console.get("/metrics")).text()
    assert 'passiton_console_login_failures_total{reason="oidc"}' in metrics
