"""Free text in, bounded label values out: decline codes, failure and error classes, client
classes, countries, currencies, route templates."""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from functools import lru_cache

import pycountry
from crawlerdetect import CrawlerDetect

UNKNOWN = "unknown"
OTHER = "other"

# Stripe's documented decline codes (https://docs.stripe.com/declines/codes).
STRIPE_DECLINE_CODES = frozenset(
    [
        "authentication_required",
        "approve_with_id",
        "call_issuer",
        "card_not_supported",
        "card_velocity_exceeded",
        "currency_not_supported",
        "do_not_honor",
        "do_not_try_again",
        "duplicate_transaction",
        "expired_card",
        "fraudulent",
        "generic_decline",
        "incorrect_number",
        "incorrect_cvc",
        "incorrect_pin",
        "incorrect_zip",
        "insufficient_funds",
        "invalid_account",
        "invalid_amount",
        "invalid_cvc",
        "invalid_expiry_month",
        "invalid_expiry_year",
        "invalid_number",
        "invalid_pin",
        "issuer_not_available",
        "lost_card",
        "merchant_blacklist",
        "new_account_information_available",
        "no_action_taken",
        "not_permitted",
        "offline_pin_required",
        "online_or_offline_pin_required",
        "pickup_card",
        "pin_try_exceeded",
        "processing_error",
        "reenter_transaction",
        "restricted_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "security_violation",
        "service_not_allowed",
        "stolen_card",
        "stop_payment_order",
        "testmode_decline",
        "transaction_not_allowed",
        "try_again_later",
        "withdrawal_count_limit_exceeded",
    ]
)

_DECLINE_CLASS = {
    **dict.fromkeys(
        [
            "fraudulent",
            "stolen_card",
            "lost_card",
            "pickup_card",
            "merchant_blacklist",
            "security_violation",
            "restricted_card",
        ],
        "fraud",
    ),
    **dict.fromkeys(
        ["insufficient_funds", "card_velocity_exceeded", "withdrawal_count_limit_exceeded"],
        "insufficient_funds",
    ),
    **dict.fromkeys(
        ["authentication_required", "offline_pin_required", "online_or_offline_pin_required"],
        "authentication_required",
    ),
    **dict.fromkeys(
        [
            "expired_card",
            "incorrect_number",
            "incorrect_cvc",
            "invalid_cvc",
            "invalid_number",
            "invalid_expiry_month",
            "invalid_expiry_year",
            "incorrect_zip",
            "incorrect_pin",
            "invalid_pin",
            "pin_try_exceeded",
        ],
        "invalid_card",
    ),
    **dict.fromkeys(
        ["processing_error", "issuer_not_available", "try_again_later", "reenter_transaction"],
        "processing_error",
    ),
}

# Stripe error codes (the `code` of a Stripe error; https://docs.stripe.com/error-codes).
_FAILURE_CODE_CLASS = {
    "card_declined": "card_declined",
    "expired_card": "invalid_card",
    "incorrect_cvc": "invalid_card",
    "incorrect_number": "invalid_card",
    "incorrect_zip": "invalid_card",
    "invalid_cvc": "invalid_card",
    "invalid_expiry_month": "invalid_card",
    "invalid_expiry_year": "invalid_card",
    "invalid_number": "invalid_card",
    "processing_error": "processing_error",
    "authentication_required": "authentication_required",
    "payment_intent_authentication_failure": "authentication_required",
    "card_decline_rate_limit_exceeded": "rate_limited",
    "rate_limit": "rate_limited",
    "api_connection_error": "network",
    "lock_timeout": "processing_error",
    "api_key_expired": "configuration",
    "secret_key_required": "configuration",
    "parameter_missing": "configuration",
    "parameter_invalid_integer": "configuration",
    "amount_too_small": "invalid_amount",
    "amount_too_large": "invalid_amount",
    "balance_insufficient": "insufficient_funds",
}

FAILURE_CLASSES = (
    "card_declined",
    "insufficient_funds",
    "fraud",
    "authentication_required",
    "invalid_card",
    "invalid_amount",
    "processing_error",
    "rate_limited",
    "network",
    "timeout",
    "configuration",
    UNKNOWN,
)

# Failures the card (or its holder) causes: the payment path worked and the issuer said no. They
# neither extend nor break an organization's run of failed payments (the failure streak).
CARD_FAILURE_CLASSES = frozenset(
    [
        "card_declined",
        "insufficient_funds",
        "fraud",
        "authentication_required",
        "invalid_card",
        "invalid_amount",
    ]
)

_TEXT_FAILURE_CLASS = (
    (re.compile(r"insufficient|not enough funds", re.I), "insufficient_funds"),
    (re.compile(r"fraud|stolen|lost card", re.I), "fraud"),
    (re.compile(r"authenticat|3d ?secure|\bsca\b", re.I), "authentication_required"),
    (re.compile(r"expired|incorrect|invalid (card|number|cvc|expiry)", re.I), "invalid_card"),
    (re.compile(r"time[d ]?out|timeout", re.I), "timeout"),
    (re.compile(r"rate.?limit|too many requests", re.I), "rate_limited"),
    (re.compile(r"network|connection|econn|socket|dns", re.I), "network"),
    (re.compile(r"declined", re.I), "card_declined"),
    (re.compile(r"processing error|try again", re.I), "processing_error"),
    (re.compile(r"api key|unauthori[sz]ed|permission", re.I), "configuration"),
)


def decline_code_label(decline_code: str | None) -> str:
    if not decline_code:
        return "none"
    code = decline_code.strip().lower()
    return code if code in STRIPE_DECLINE_CODES else OTHER


def failure_class(decline_code: str | None, failure_code: str | None, error: str | None) -> str:
    if decline_code:
        code = decline_code.strip().lower()
        if code in STRIPE_DECLINE_CODES:
            return _DECLINE_CLASS.get(code, "card_declined")
    if failure_code:
        cls = _FAILURE_CODE_CLASS.get(failure_code.strip().lower())
        if cls:
            return cls
    if error:
        return _classify_text(error[:512], _TEXT_FAILURE_CLASS)
    return UNKNOWN


ERROR_CLASSES = (
    "timeout",
    "network",
    "signature",
    "database",
    "validation",
    "not_found",
    "permission",
    "rate_limited",
    "server_error",
    UNKNOWN,
)

_TEXT_ERROR_CLASS = (
    (re.compile(r"time[d ]?out|timeout|deadline", re.I), "timeout"),
    (re.compile(r"signature|hmac", re.I), "signature"),
    (re.compile(r"database|sql|postgres|supabase|deadlock|relation .* does not", re.I), "database"),
    (re.compile(r"rate.?limit|too many requests|\b429\b", re.I), "rate_limited"),
    (re.compile(r"not found|\b404\b|no such", re.I), "not_found"),
    (re.compile(r"forbidden|unauthori[sz]ed|permission|denied|\b40[13]\b", re.I), "permission"),
    (
        re.compile(r"network|connection|econn|socket|dns|fetch failed|failed to fetch", re.I),
        "network",
    ),
    (re.compile(r"invalid|validation|missing|required|malformed|syntax|parse", re.I), "validation"),
    (re.compile(r"\b50[0-9]\b|internal server|bad gateway|unavailable", re.I), "server_error"),
)


def error_class(error: str | None) -> str:
    """Classify a free-text error message into one of ERROR_CLASSES."""
    if not error:
        return UNKNOWN
    return _classify_text(error[:512], _TEXT_ERROR_CLASS)


def _classify_text(text: str, table: tuple[tuple[re.Pattern[str], str], ...]) -> str:
    for pattern, cls in table:
        if pattern.search(text):
            return cls
    return UNKNOWN


COUNTRIES = frozenset(c.alpha_2 for c in pycountry.countries)


def country_label(country: str | None) -> str:
    if not country:
        return UNKNOWN
    code = country.strip().upper()
    return code if code in COUNTRIES else OTHER


CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies)
# Stripe's zero-decimal and three-decimal currencies (https://docs.stripe.com/currencies).
_ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
_THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])


def currency_label(currency: str | None) -> str:
    if not currency:
        return UNKNOWN
    code = currency.strip().upper()
    return code if code in CURRENCIES else OTHER


def major_units(amount_minor: int, currency: str) -> float:
    """Convert an amount in minor units (as Stripe sends it) to major units of its currency."""
    if currency in _ZERO_DECIMAL:
        return float(amount_minor)
    if currency in _THREE_DECIMAL:
        return amount_minor / 1000.0
    return amount_minor / 100.0


# Automation tools and scanners: crawlerdetect recognises them as crawlers, but they are not the
# declared search-engine bots a site expects, so they count as suspicious.
_TOOL_MARKERS = re.compile(
    r"curl|wget|python|requests|aiohttp|httpx|go-http|java|okhttp|libwww|perl|ruby|php|"
    r"headless|phantom|selenium|puppeteer|playwright|scrapy|sqlmap|nikto|nmap|masscan|zgrab|"
    r"zmeu|nuclei|httpclient|axios|node-fetch",
    re.I,
)
_crawler_detect = CrawlerDetect()


# Outside text is cut before any classifier sees it, so that every classification costs a bounded
# time (docs/security.md; benchmarks/adversarial_inputs.py measures the worst cases).
USER_AGENT_MAX = 256
ROUTE_MAX = 256
# Declared crawlers, by the words they use: the quick classification when the thorough one
# (crawlerdetect, about 0.1 ms per character of a new agent) is over its budget.
_BOT_MARKERS = re.compile(r"bot|crawl|spider|slurp|archiver|scraper|preview|monitor", re.I)


def _classify_agent(ua: str) -> str:
    if not _crawler_detect.isCrawler(ua):
        return "human"
    if _TOOL_MARKERS.search(ua):
        return "suspicious"
    return "bot"


def _quick_class(ua: str) -> str:
    if _TOOL_MARKERS.search(ua):
        return "suspicious"
    return "bot" if _BOT_MARKERS.search(ua) else "human"


def _agent(user_agent: str) -> str:
    return user_agent.strip()[:USER_AGENT_MAX]


@lru_cache(maxsize=8192)
def client_class(user_agent: str | None) -> str:
    """human, bot (declared crawler) or suspicious (no agent, automation tool, scanner)."""
    if user_agent is None:
        return "human"
    ua = _agent(user_agent)
    if len(ua) < 8:
        return "suspicious"
    return _classify_agent(ua)


class ClientClassifier:
    """``client_class`` with a budget: per batch, at most ``thorough_per_batch`` agents not seen
    before, and crawlerdetect calls until ``thorough_seconds`` are spent; the rest get the quick
    marker classification (and are not cached, so a later batch classifies them thoroughly).
    crawlerdetect's large alternation is superlinear (up to tens of milliseconds for one crafted
    256-character agent), so a batch of 1,000 new agents would otherwise block the event loop
    for seconds."""

    def __init__(
        self,
        cache_size: int = 8192,
        thorough_per_batch: int = 16,
        thorough_seconds: float = 0.02,
    ) -> None:
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._size = cache_size
        self._per_batch = thorough_per_batch
        self._budget = thorough_per_batch
        self._seconds = thorough_seconds
        self._spent = 0.0

    def new_batch(self) -> None:
        self._budget = self._per_batch
        self._spent = 0.0

    def __call__(self, user_agent: str | None) -> str:
        if user_agent is None:
            return "human"
        ua = _agent(user_agent)
        if len(ua) < 8:
            return "suspicious"
        cache = self._cache
        cls = cache.get(ua)
        if cls is not None:
            cache.move_to_end(ua)
            return cls
        if self._budget <= 0 or self._spent >= self._seconds:
            return _quick_class(ua)
        self._budget -= 1
        started = time.perf_counter()
        cls = cache[ua] = _classify_agent(ua)
        self._spent += time.perf_counter() - started
        if len(cache) > self._size:
            cache.popitem(last=False)
        return cls


HTTP_METHODS = frozenset(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])


def method_label(method: str) -> str:
    m = method.upper()
    return m if m in HTTP_METHODS else OTHER


def status_class(status: int) -> str:
    return f"{status // 100}xx"


_ID_SEGMENT = re.compile(
    r"^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}"
    r"|[a-z]+_[A-Za-z0-9]{14,})$",
    re.I | re.ASCII,
)
_SLUG = re.compile(r"[A-Za-z0-9_-]{11,}", re.ASCII)
_DIGITS = frozenset("0123456789")


def _is_id(segment: str) -> bool:
    """An id-like path segment. Each test is linear: the slug rule (at least 11 characters of
    ``[A-Za-z0-9_-]`` with a digit followed by at least 10 more) is a character check, not the
    backtracking ``[A-Za-z0-9_-]*\\d[A-Za-z0-9_-]{10,}`` it replaces."""
    if _ID_SEGMENT.match(segment):
        return True
    return bool(_SLUG.fullmatch(segment)) and not _DIGITS.isdisjoint(segment[:-10])


@lru_cache(maxsize=8192)
def route_template(route: str) -> str:
    """Keep a template as given (`/orgs/{id}`, `/orgs/:id`); turn ids in raw paths into `:id`."""
    path = route[:ROUTE_MAX].split("?", 1)[0].split("#", 1)[0].strip() or "/"
    if not path.startswith("/"):
        path = "/" + path
    segments = [":id" if _is_id(s) else s for s in path.split("/")]
    return "/".join(segments)[:128]


_TOKEN = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


def token_label(value: str) -> str | None:
    """An identifier-like value (`invalid_token`, `insert`) normalised; None for free text."""
    token = value.strip().lower()
    return token if _TOKEN.match(token) else None
