"""Every environment variable the exporter and the bridge read, declared once.

Each entry has the variable's name, how it is parsed, its default, its bounds, which service
reads it, whether it is a secret and one line of help. The services read their variables through
``passiton_common.settings`` (``read_int(env, "NAME")`` and friends), which take the default and
the bounds from here; the README's configuration table is rendered from here:

    python -m passiton_common.variables --write README.md   # regenerate the table
    python -m passiton_common.variables --check README.md   # exit 1 when it differs (make lint)

This module imports nothing from the project, so anything may import it.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# text: a string (stripped); int/float: a number within the bounds; bool: true/false;
# listen: HOST:PORT; csv: comma-separated; list: separated by commas, semicolons or spaces;
# url: an http(s) URL with a host; choice: one of ``choices``, case-insensitive.
Kind = Literal["text", "int", "float", "bool", "listen", "csv", "list", "url", "choice"]
Default = str | int | float | bool | None

# SMTP_PORT's default follows SMTP_TLS.
SMTP_DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
# Shared tokens shorter than this are refused at start-up.
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Variable:
    name: str
    kind: Kind
    used_by: str
    help: str
    default: Default = None  # None: unset
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    # a credential: may be given as NAME_FILE, never printed
    secret: bool = False
    # a token the project's parts share: shorter than MIN_TOKEN_LENGTH is refused
    token: bool = False
    # the README's default cell when the default alone does not say it ("required", "unset (...)")
    shown: str = ""

    def __post_init__(self) -> None:
        expected: dict[str, tuple[type, ...]] = {
            "int": (int,),
            "float": (float, int),
            "bool": (bool,),
        }
        types = expected.get(self.kind, (str,))
        if self.default is not None and not isinstance(self.default, types):
            raise TypeError(f"{self.name}: default {self.default!r} is not a {self.kind}")
        if self.kind == "choice" and self.default is not None and self.default not in self.choices:
            raise ValueError(f"{self.name}: default {self.default!r} is not one of its choices")

    @property
    def default_cell(self) -> str:
        if self.shown:
            return self.shown
        if self.default is None:
            return "unset"
        if isinstance(self.default, bool):
            return "`true`" if self.default else "`false`"
        return f"`{_number(self.default) if not isinstance(self.default, str) else self.default}`"

    @property
    def help_cell(self) -> str:
        bounds = []
        if self.minimum is not None and self.minimum != 0:
            bounds.append(f"at least {_number(self.minimum)}")
        if self.maximum is not None:
            bounds.append(f"at most {_number(self.maximum)}")
        if self.token:
            bounds.append(f"at least {MIN_TOKEN_LENGTH} characters")
        return "; ".join((self.help, *bounds))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


EX, BR = "exporter", "bridge"
# fmt: off
_CATALOGUE = (
    # --- the exporter ---
    Variable("EXPORTER_LISTEN", "listen", EX, "internal listener: `/v1/events`, `/metrics`, OpenAPI (`--listen` overrides); keep it off the internet", "0.0.0.0:9820"),
    Variable("EXPORTER_PUBLIC_LISTEN", "listen", EX, "public listener: beacon, `beacon.js`, Stripe webhook, health (`--public-listen` overrides)", "0.0.0.0:9822"),
    Variable("EXPORTER_INGEST_TOKEN", "text", EX, "bearer token required on `POST /v1/events`; the exporter does not start without it, except `exporter --dev` (what `up` runs when it is unset)", secret=True, token=True, shown="required"),
    Variable("EXPORTER_BEACON_SECRET", "text", EX, "secret of the widget beacon keys (`passiton-monitoring beacon-key`)", secret=True, token=True, shown="unset (beacon off)"),
    Variable("EXPORTER_TRUSTED_PROXIES", "csv", EX, "comma-separated proxy addresses/CIDRs whose `X-Forwarded-For` is read (right to left, trusted hops only)", shown="unset (none)"),
    Variable("EXPORTER_CORS_ORIGINS", "csv", EX, "comma-separated origins allowed to post beacons (`*` for any)", shown="unset (no browser origin allowed)"),
    Variable("EXPORTER_BEACON_RATE_PER_MINUTE", "int", EX, "beacons accepted per client address per minute", 120, minimum=1),
    Variable("EXPORTER_BEACON_KEY_RATE_PER_MINUTE", "int", EX, "beacons accepted per widget key per minute", 3000, minimum=1),
    Variable("EXPORTER_STRIPE_RATE_PER_MINUTE", "int", EX, "requests to `/v1/stripe/webhook` accepted per client address per minute (Stripe retries a 429)", 600, minimum=1),
    Variable("EXPORTER_HEADER_TIMEOUT_SECONDS", "float", EX, "a connection that has not sent a complete request head (or sits idle) this long is closed", 10.0, minimum=0.001),
    Variable("EXPORTER_PUBLIC_MAX_CONNECTIONS", "int", EX, "connections the public listener holds at once; past it a new one is closed at accept (and counted). Lowered at start-up to what `RLIMIT_NOFILE` leaves after 256 descriptors kept for the internal listener", 1000, minimum=16),
    Variable("EXPORTER_PUBLIC_RATE_PER_SECOND", "int", EX, "requests the public listener serves a second from everyone together (a burst of as many); past it a request waits for its turn in arrival order (counted), so a flood cannot saturate the event loop that also serves `/metrics`", 500, minimum=1),
    Variable("EXPORTER_PUBLIC_MAX_WAIT_SECONDS", "float", EX, "a public request whose turn under `EXPORTER_PUBLIC_RATE_PER_SECOND` is further away than this is answered 503 with `Retry-After` after this long (counted); the answer is held, so a refused client cannot ask again at once", 2.0, minimum=0.1, maximum=60.0),
    Variable("EXPORTER_BODY_TIMEOUT_SECONDS", "float", EX, "a request body not received in this time is answered 408", 10.0, minimum=0.001),
    Variable("EXPORTER_MAX_BODY_BYTES", "int", EX, "largest request body", 1_048_576, minimum=1),
    Variable("EXPORTER_MAX_BATCH_EVENTS", "int", EX, "largest batch", 1000, minimum=1),
    Variable("EXPORTER_MAX_ORGANIZATIONS", "int", EX, "distinct `organization_id` label values before folding to `other`", 1000, minimum=1),
    Variable("EXPORTER_MAX_WIDGETS", "int", EX, "distinct `widget_id` label values before folding to `other`", 2000, minimum=1),
    Variable("EXPORTER_MAX_ROUTES", "int", EX, "distinct `route` label values before folding to `other`", 200, minimum=1),
    Variable("EXPORTER_LABEL_IDLE_SECONDS", "float", EX, "a label value unseen this long is forgotten and its series removed", 3600.0, minimum=1),
    Variable("EXPORTER_MAX_SERIES_PER_METRIC", "int", EX, "series budget of each labelled metric: past it a new combination folds its open-ended labels to `other`", 20_000, minimum=10),
    Variable("WIDGET_TIMEOUT_SECONDS", "float", EX, "widget performance-timeout threshold (a histogram bucket boundary)", 5.0, minimum=0.001),
    Variable("STRIPE_WEBHOOK_SECRET", "text", EX, "signing secret of the Stripe webhook endpoint", secret=True, shown="unset (endpoint off)"),
    Variable("PROBE_DATABASE_URL", "text", EX, "PostgreSQL URL probed with `SELECT 1`", secret=True, shown="unset (no probe)"),
    Variable("PROBE_INTERVAL_SECONDS", "float", EX, "probe interval", 15.0, minimum=0.001),
    # --- the bridge ---
    Variable("DATABASE_URL", "text", BR, "`postgresql://…` (Supabase included)", secret=True, shown="unset (an embedded PostgreSQL in `PASSITON_STATE_DIR`)"),
    Variable("BRIDGE_WEBHOOK_TOKEN", "text", BR, "bearer token (or basic-auth password) Alertmanager must send", secret=True, token=True),
    Variable("BRIDGE_LISTEN", "listen", BR, "listen address (`--listen` overrides)", "0.0.0.0:9821"),
    Variable("RETENTION_DAYS", "int", BR, "alert rows older than this are purged daily", 90, minimum=1),
    Variable("BRIDGE_RECONCILE_INTERVAL_SECONDS", "float", BR, "how often the bridge reads Alertmanager's alerts to resolve those it never heard resolved (silenced ones), store silences and inhibitions and catch missed alerts (`0`: off)", 30.0, minimum=0),
    Variable("BRIDGE_RECONCILE_MIN_UPTIME_SECONDS", "float", BR, "the reconciler resolves alerts missing from Alertmanager only once every Alertmanager has been up this long (a restarted one has no alerts until Prometheus resends them)", 120.0, minimum=0),
    Variable("BRIDGE_ROLLUP_INTERVAL_SECONDS", "float", BR, "how often the hourly history rollup into the metrics tables looks for completed hours (`0`: off)", 300.0),
    Variable("BRIDGE_MAX_BODY_BYTES", "int", BR, "largest Alertmanager notification accepted (413 above)", 4 * 1024 * 1024, minimum=1024),
    Variable("BRIDGE_HEADER_TIMEOUT_SECONDS", "float", BR, "a connection that has not sent a complete request head (or sits idle) this long is closed", 10.0, minimum=0.1),
    Variable("BRIDGE_BODY_TIMEOUT_SECONDS", "float", BR, "a notification body not received in this time is answered 503 (Alertmanager retries it)", 10.0, minimum=0.1),
    Variable("BRIDGE_AUTO_MIGRATE", "bool", BR, "apply pending migrations when the bridge starts", True),
    Variable("BRIDGE_DB_POOL_SIZE", "int", BR, "PostgreSQL connections per bridge", 10, minimum=1),
    Variable("BRIDGE_DELIVERY_CONCURRENCY", "int", BR, "deliveries sent at once per channel", 4, minimum=1),
    Variable("BRIDGE_DELIVERY_TIMEOUT_SECONDS", "float", BR, "one send's time limit", 30.0, minimum=1),
    Variable("BRIDGE_RETRY_INITIAL_SECONDS", "float", BR, "first retry delay (doubles, with jitter; Retry-After is a lower bound)", 1.0, minimum=0.001),
    Variable("BRIDGE_RETRY_MAX_DELAY_SECONDS", "float", BR, "longest retry delay", 300.0, minimum=0.001),
    Variable("BRIDGE_DELIVERY_MAX_AGE_SECONDS", "float", BR, "a delivery still failing this long after its first attempt is dead-lettered with its last error (time held by quiet hours or a rate limit does not count)", 6 * 3600.0, minimum=1),
    Variable("BRIDGE_COOLDOWN_SECONDS", "float", BR, "per alert and channel: a repeat within this is held back unless the severity rose", 1800.0),
    Variable("BRIDGE_FLAP_CYCLES", "int", BR, "fire/resolve cycles within the window that make an alert flapping", 4, minimum=2),
    Variable("BRIDGE_FLAP_WINDOW_SECONDS", "float", BR, "window for counting flap cycles", 3600.0, minimum=1),
    Variable("BRIDGE_FLAP_SETTLE_SECONDS", "float", BR, "quiet time after which a flapping alert counts as settled", 1800.0, minimum=1),
    Variable("BRIDGE_DEADMAN_AFTER_SECONDS", "float", BR, 'page "alerting pipeline is down" when the Watchdog has not arrived for this long (`0`: off)', 600.0),
    Variable("BRIDGE_INCIDENT_WINDOW_SECONDS", "float", BR, "a firing alert joins an open incident it is related to only if that incident had an alert within this long; otherwise it opens a new one", 1800.0, minimum=1),
    Variable("BRIDGE_RATE_LIMITS", "text", BR, "per-destination limits, e.g. `sms=10/h,email=60/h` (per `s`, `m`, `h` or `d`)", shown="unset (none)"),
    Variable("BRIDGE_CONSOLE_SECRET", "text", BR, "signing key of the console's session cookies; set it to rotate the key (every session ends)", shown="unset (a random key kept in the database's `bridge_state`)"),
    Variable("BRIDGE_CONSOLE_SESSION_SECONDS", "float", BR, "how long a console login lasts", 12 * 3600.0, minimum=60),
    Variable("BRIDGE_CONSOLE_WORKING_HOURS", "text", BR, "the days and hours the review counts as working hours (`DAYS HH:MM-HH:MM`, days a range or a list), on each paged person's clock (their `time_zone` in `ONCALL_CONFIG`; UTC for someone not in it); pages outside them are counted per person", "mon-fri 09:00-18:00"),
    Variable("BRIDGE_CONSOLE_TRUSTED_PROXIES", "csv", BR, "comma-separated proxy addresses/CIDRs in front of the console whose `X-Forwarded-For` is read for the login throttle's client address (right to left, trusted hops only)", shown="unset (none)"),
    Variable("BRIDGE_CONSOLE_PUBLIC_URL", "text", BR, "the console's address as its users reach it, e.g. `https://ops.example.org/console/`; `https` (or a TLS request) makes the session cookie `Secure` and `__Host-` and adds HSTS", shown="unset (decided per request)"),
    Variable("OIDC_ISSUER", "text", BR, "OpenID Connect provider of the console's sign-in (Supabase, Google Workspace, Okta, Keycloak...): its issuer URL, whose `/.well-known/openid-configuration` is read; `https` (plain `http` only on a loopback address). Set, the login page offers \"Sign in with ...\" beside the password form", shown="unset (passwords only)"),
    Variable("OIDC_CLIENT_ID", "text", BR, "the console's client id at the provider (its redirect URI: the console's address + `oidc/callback`, e.g. `https://ops.example.org/console/oidc/callback`)", shown="required with `OIDC_ISSUER`"),
    Variable("OIDC_CLIENT_SECRET", "text", BR, "the client's secret (`client_secret_basic`, or `client_secret_post` when the provider offers only that); unset: a public client, PKCE only", secret=True),
    Variable("OIDC_SCOPES", "text", BR, "scopes asked for, space-separated; must hold `openid`", "openid email profile"),
    Variable("OIDC_ROLE_CLAIM", "text", BR, "the ID token's claim whose value (a string or a list) is mapped to a console role; a dotted path reaches a nested claim (`app_metadata.roles`)", "groups"),
    Variable("OIDC_ROLE_MAP", "text", BR, "claim value to console role, the highest match wins, e.g. `oncall-admins=admin,engineers=responder,*=viewer` (`*`: anyone else the provider signs in; `;` separates entries whose values hold commas). A user matching nothing is refused (403). Read at every sign-in", shown="required with `OIDC_ISSUER`"),
    Variable("OIDC_ORGANIZATIONS_CLAIM", "text", BR, "the ID token's claim listing the organization ids a user is limited to (`*` in it: every one); a token without it is refused. Read at every sign-in", shown="unset (every user sees every organization)"),
    Variable("OIDC_ALLOWED_DOMAINS", "csv", BR, "comma-separated e-mail domains allowed to sign in (the ID token's verified `email`)", shown="unset (any)"),
    Variable("OIDC_PROVIDER_NAME", "text", BR, "the provider's name on the login page's button", shown="unset (the issuer's host)"),
    Variable("BRIDGE_PUBLIC_LISTEN", "text", BR, "the bridge's public listener (`HOST:PORT`): Twilio's SMS and voice callbacks, Slack's buttons, PagerDuty's webhooks and the e-mail acknowledgement links, and nothing else; the one bridge listener meant to face the internet", shown="unset (off)"),
    Variable("BRIDGE_PUBLIC_MAX_CONNECTIONS", "int", BR, "connections the public listener holds at once; past it a new one is closed at accept (and counted). Lowered at start-up to what `RLIMIT_NOFILE` leaves after 256 descriptors kept for the internal listener", 500, minimum=16),
    Variable("BRIDGE_PUBLIC_RATE_PER_SECOND", "int", BR, "requests the public listener serves a second from everyone together (a burst of as many); past it a request waits for its turn in arrival order (counted), so a flood cannot saturate the event loop that also serves Alertmanager's webhook and `/metrics`", 100, minimum=1),
    Variable("BRIDGE_PUBLIC_MAX_WAIT_SECONDS", "float", BR, "a public request whose turn under `BRIDGE_PUBLIC_RATE_PER_SECOND` is further away than this is answered 503 with `Retry-After` after this long (counted); the answer is held, so a refused client cannot ask again at once", 2.0, minimum=0.1, maximum=60.0),
    Variable("BRIDGE_PUBLIC_URL", "text", BR, "the public listener's address as Twilio, Slack, PagerDuty and people's phones reach it, e.g. `https://oncall.example.org`: the base of links in pages and of the URL Twilio signs", shown="unset (no links, no voice answers)"),
    Variable("PROMETHEUS_URL", "url", BR, "Prometheus for links, `doctor`, the history rollup and the console (threshold read-back, what-if)", "http://127.0.0.1:9090"),
    Variable("ALERTMANAGER_URL", "url", BR, "Alertmanager for links, `doctor`, the console's silences and the reconciler; comma-separated for an HA cluster or several Alertmanagers (the reconciler and silences use every one, the rest the first)", "http://127.0.0.1:9093"),
    Variable("PASSITON_STATE_DIR", "text", "bridge, `up`", "Prometheus, Alertmanager and the embedded database's data", ".passiton"),
    Variable("ONCALL_CONFIG", "text", BR, "path of the on-call file (YAML: people, schedules, escalation policies, routes; see `docs/oncall.example.yml`); the bridge refuses to start when it is invalid (`passiton-monitoring oncall check` lists every error)", shown="unset (the severity table and the `ALERT_*` recipients)"),
    # --- the bridge's channels: all of a channel's variables unset switches it off ---
    Variable("SLACK_WEBHOOK_URL", "url", BR, "Slack incoming webhook: one message per change (without `SLACK_BOT_TOKEN`), and organizations' own webhooks", secret=True),
    Variable("SLACK_BOT_TOKEN", "text", BR, "Slack bot token (`xoxb-…`, scopes `chat:write` and `channels:history` — `groups:history` for a private channel — to find a message whose answer was lost instead of posting it twice), with `SLACK_CHANNEL`: the Web API, one message per incident with buttons, later changes as thread replies and updates in place", secret=True),
    Variable("SLACK_CHANNEL", "text", BR, "the Slack channel the bot posts incidents to (an id like `C0123ABCD`, best: a lost answer can then be looked for at once; or `#name`), with `SLACK_BOT_TOKEN`"),
    Variable("SLACK_SIGNING_SECRET", "text", BR, "Slack app's signing secret: checks `X-Slack-Signature` on `POST /v1/slack/interactions` (button presses)", secret=True),
    Variable("SLACK_API_URL", "url", BR, "Slack Web API base URL override", "https://slack.com/api"),
    Variable("ALERT_EMAIL_RECIPIENTS", "list", BR, "comma-separated addresses"),
    Variable("ALERT_EMAIL_FROM", "text", BR, "sender address", "passiton-monitoring@localhost"),
    Variable("SMTP_HOST", "text", BR, "SMTP relay"),
    Variable("SMTP_PORT", "int", BR, "SMTP relay's port", minimum=1, maximum=65535, shown=", ".join(f"`{port}` with `{tls}`" for tls, port in SMTP_DEFAULT_PORTS.items())),
    Variable("SMTP_USERNAME", "text", BR, "SMTP user name (with `SMTP_PASSWORD`)"),
    Variable("SMTP_PASSWORD", "text", BR, "SMTP password (with `SMTP_USERNAME`)", secret=True),
    Variable("SMTP_TLS", "choice", BR, "`starttls`, `tls` (implicit) or `none`", "starttls", choices=tuple(SMTP_DEFAULT_PORTS)),
    Variable("ALERT_SMS_RECIPIENTS", "list", BR, "comma-separated E.164 numbers"),
    Variable("TWILIO_ACCOUNT_SID", "text", BR, "Twilio account (`AC` and 32 hexadecimal digits)"),
    Variable("TWILIO_AUTH_TOKEN", "text", BR, "Twilio credentials", secret=True),
    Variable("TWILIO_PHONE_NUMBER", "text", BR, "Twilio sender (E.164)"),
    Variable("TWILIO_API_URL", "url", BR, "base URL override", "https://api.twilio.com"),
    Variable("PAGERDUTY_INTEGRATION_KEY", "text", BR, "Events API v2 routing key", secret=True),
    Variable("PAGERDUTY_EVENTS_URL", "url", BR, "override", "https://events.pagerduty.com/v2/enqueue"),
    Variable("PAGERDUTY_DEDUP_KEY", "choice", BR, "`alert`: one PagerDuty incident per bridge incident (sha256 of `incident:<id>`; alerts stored before incidents existed: per alert); `group`: Alertmanager's own dedup_key (sha256 of the group key), required when Alertmanager also pages PagerDuty directly (the out-of-band path: `deploy/compose/pagerduty.yml`, and `up` with a PagerDuty key), so the two open one incident", "alert", choices=("alert", "group")),
    Variable("PAGERDUTY_WEBHOOK_SECRET", "text", BR, "the signing secret of the PagerDuty V3 webhook subscription posting to `BRIDGE_PUBLIC_URL/v1/pagerduty/webhook` (acknowledge and resolve in PagerDuty); unset: that endpoint answers 404", secret=True),
    Variable("APPRISE_URLS_CRITICAL", "text", BR, "Apprise URLs (`ntfys://…`, `tgram://…`, `json://…`; comma or space separated) that get every critical page besides the channels above", secret=True),
    Variable("APPRISE_URLS_HIGH", "text", BR, "Apprise URLs for high alerts", secret=True),
    Variable("APPRISE_URLS_MEDIUM", "text", BR, "Apprise URLs for medium alerts", secret=True),
    Variable("APPRISE_URLS_LOW", "text", BR, "Apprise URLs for low alerts", secret=True),
    Variable("WEBPUSH_VAPID_PRIVATE_KEY", "text", BR, "the VAPID private key (base64url of the raw P-256 key, as `passiton-monitoring webpush-keys` prints it) that signs Web Push sends to console users' phones and browsers (on-call `via: push`); unset: Web Push is off", secret=True),
    Variable("WEBPUSH_VAPID_PUBLIC_KEY", "text", BR, "the VAPID public key (base64url, uncompressed point) browsers subscribe with; derived from the private key when unset, refused when it does not match it"),
    Variable("WEBPUSH_SUBJECT", "text", BR, "the VAPID subject push services may contact about the sends: `mailto:` an address or an `https:` URL; required with `WEBPUSH_VAPID_PRIVATE_KEY`"),
    # --- both ---
    Variable("LOG_LEVEL", "text", "both", "log level", "INFO"),
)
# fmt: on

VARIABLES: dict[str, Variable] = {v.name: v for v in _CATALOGUE}
if len(VARIABLES) != len(_CATALOGUE):
    raise ValueError("a variable is declared twice")
# Variables that hold a credential, and the tokens shared between the project's parts.
SECRET_NAMES = tuple(v.name for v in _CATALOGUE if v.secret)
TOKEN_NAMES = tuple(v.name for v in _CATALOGUE if v.token)


def variable(name: str) -> Variable:
    """The declaration of ``name``; KeyError names an undeclared variable."""
    try:
        return VARIABLES[name]
    except KeyError:
        raise KeyError(f"{name} is not declared in passiton_common/variables.py") from None


def default_of(name: str) -> Any:
    """``name``'s default, typed as declared (for the configuration dataclasses' field defaults)."""
    return variable(name).default


# --- the README's table -------------------------------------------------------------------------

START = "<!-- variables:start (generated by `python -m passiton_common.variables --write README.md`) -->"
END = "<!-- variables:end -->"


def render_table() -> str:
    """The README's paragraph on secrets and its table of every variable, in Markdown."""
    secrets = ", ".join(f"`{name}`" for name in SECRET_NAMES)
    tokens = ", ".join(f"`{name}`" for name in TOKEN_NAMES)
    prose = (
        f"Secrets ({secrets}) can instead be read from a file: set `NAME_FILE` to its path (Docker"
        " and Kubernetes secrets; a trailing newline is dropped; setting both is an error). The"
        f" tokens the project's parts share ({tokens}) must be at least {MIN_TOKEN_LENGTH}"
        " characters: a shorter one stops the service at start-up. No secret is ever logged,"
        " shown by `doctor` or echoed by `/-/ready`."
    )
    rows = [
        textwrap.fill(prose, width=100, break_long_words=False, break_on_hyphens=False),
        "",
        "| variable | default | used by | meaning |",
        "|---|---|---|---|",
    ]
    for v in _CATALOGUE:
        rows.append(f"| `{v.name}` | {v.default_cell} | {v.used_by} | {v.help_cell} |")
    return "\n".join(rows) + "\n"


def render_into(text: str) -> str:
    """``text`` with the part between the markers replaced by the table."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the markers {START!r} and {END!r} are missing")
    return f"{head}{START}\n{render_table()}{END}{tail}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m passiton_common.variables")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path, metavar="README", help="regenerate the table")
    mode.add_argument("--check", type=Path, metavar="README", help="exit 1 when it differs")
    args = parser.parse_args(argv)
    path: Path = args.write or args.check
    current = path.read_text(encoding="utf-8")
    wanted = render_into(current)
    if args.write:
        if wanted != current:
            path.write_text(wanted, encoding="utf-8")
        return 0
    if wanted == current:
        return 0
    diff = difflib.unified_diff(
        current.splitlines(keepends=True),
        wanted.splitlines(keepends=True),
        fromfile=f"{path} (committed)",
        tofile=f"{path} (from passiton_common/variables.py)",
    )
    sys.stderr.writelines(diff)
    sys.stderr.write(
        f"\n{path}'s configuration table differs from passiton_common/variables.py; run"
        f" `python -m passiton_common.variables --write {path}`\n"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
