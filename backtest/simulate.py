"""Drives the real exporter (event decoding, recorder, metrics, /metrics renderer) with simulated
traffic on a simulated clock, and writes what Prometheus would have scraped as OpenMetrics, one
file per day, for ``promtool tsdb create-blocks-from openmetrics``."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

from backtest.scenario import (
    BOT_SHARE,
    DAY,
    FOREIGN_COUNTRIES,
    FOREIGN_SHARE,
    ORGANIZATIONS,
    ROUTES,
    SUSPICIOUS_SHARE,
    Incident,
    Organization,
)
from exporter.config import ExporterConfig
from exporter.events import (
    AuthFailed,
    DatabaseError,
    EndpointRequest,
    PaymentFailed,
    PaymentSucceeded,
    PaymentTimeout,
    StripeWebhookFailed,
    TrafficRequest,
    WidgetLoaded,
    WidgetLoadError,
    WidgetRenderError,
    WidgetScriptError,
    decode_events,
)
from exporter.metrics import ExporterMetrics
from exporter.recorder import Recorder

EXPORTER_LABELS = 'instance="exporter:9820",job="passiton-exporter"'
# Series of the other scrape targets the rules read (all healthy in the replay).
STATIC_SERIES = (
    'up{instance="exporter:9820",job="passiton-exporter"}',
    'up{instance="bridge:9821",job="passiton-bridge"}',
    'up{instance="alertmanager:9093",job="alertmanager"}',
    'up{instance="prometheus:9090",job="prometheus"}',
    'up{instance="https://api.example.org/health",job="passiton-uptime",service="api"}',
    'probe_success{instance="https://api.example.org/health",job="passiton-uptime",service="api"}',
)

HUMAN_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Safari/605.1.15",
)
BOT_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
)
SUSPICIOUS_AGENT = "python-requests/2.31"
DECLINES = (  # (decline code, weight) of ordinary card declines
    ("insufficient_funds", 0.35),
    ("generic_decline", 0.25),
    ("do_not_honor", 0.1),
    ("expired_card", 0.1),
    ("incorrect_cvc", 0.1),
    ("card_velocity_exceeded", 0.05),
    ("lost_card", 0.05),
)
# what card testing tries stolen cards with: $1 payments, declined mostly for the card's details
CARD_TESTING_DECLINES = (
    ("generic_decline", 0.45),
    ("incorrect_cvc", 0.2),
    ("incorrect_number", 0.15),
    ("insufficient_funds", 0.1),
    ("stolen_card", 0.1),
)
CARD_TESTING_PER_MINUTE = 15
BASE_FAILURE = 0.04  # share of payments declined on an ordinary day
RETRY_PROBABILITY = 0.3  # a declined donor tries again (and is declined again)


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def series_names_read_by_rules(rule_texts: list[str]) -> frozenset[str]:
    """The exporter's series names (with _total, _bucket, _count) the rules read."""
    # not the middle of a recorded series' name (level:metric:operations)
    return frozenset(re.findall(r"(?<![\w:])(passiton_[a-z0-9_]+)(?![\w:])", "\n".join(rule_texts)))


@dataclass
class _Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


class Platform:
    """The simulated platform, reporting to one in-process exporter."""

    def __init__(
        self,
        start: int,
        incidents: list[Incident],
        keep: frozenset[str],
        seed: int = 7,
    ) -> None:
        self.start = start
        self.incidents = incidents
        self.rng = random.Random(seed)
        # what an incident adds draws from its own generator, so that the rest of the history
        # stays the same when an incident gains an effect
        self.effects_rng = random.Random(seed + 1)
        # card testing's attempts: a generator of their own, added to the others' history
        self.testing_rng = random.Random(seed + 2)
        self.clock = _Clock(float(start))
        disable_created_metrics()  # as the exporter's create_app does
        self.registry = CollectorRegistry()
        config = ExporterConfig(probe_database_url="postgresql://replay/platform")
        self.metrics = ExporterMetrics.create(
            self.registry, config.widget_timeout_seconds, database_probe=True
        )
        self.recorder = Recorder(self.metrics, config, clock=self.clock)
        # the series the rules read (the others are not written, to keep the replay small)
        self.keep = keep
        self._encode = msgspec.json.Encoder().encode
        self._visitors = {
            o.id: [f"198.{i % 200}.{(i * 7 + n) % 250}.{n + 1}" for n in range(3000)]
            for i, o in enumerate(ORGANIZATIONS)
        }
        self._bots = [f"66.249.{i}.{i * 3 % 250}" for i in range(25)]
        self._beacons: list[tuple[str, list[msgspec.Struct]]] = []
        self._payment_ids = 0  # each donor's payment has an id its retries share

    # -- one scrape interval of events ---------------------------------------------------------

    def _active(self, name: str, t: float) -> Incident | None:
        for incident in self.incidents:
            if incident.name == name and incident.active(t - self.start):
                return incident
        return None

    def events(self, t: float, seconds: float) -> list[msgspec.Struct]:
        rng = self.rng
        out: list[msgspec.Struct] = []
        minutes = seconds / 60.0
        active = self._active
        small_outage = active("payment outage, small organization", t)
        large_outage = active("payment outage, large organization", t)
        cluster = active("decline-code cluster", t)
        surge = active("decline surge, mid-size organization", t)
        cdn = active("widget CDN outage", t) or active("widget CDN outage, traffic drops", t)
        scripts = active("widget script errors", t)
        spike = active("traffic spike", t)
        drop = active("traffic drop", t) or active("widget CDN outage, traffic drops", t)
        flood = active("flood from few sources", t)
        bots = active("bot surge", t)
        geo = active("geographic shift", t)
        for org in ORGANIZATIONS:
            level = org.activity(t)
            # payments
            outage = (small_outage and small_outage.target == org.id) or (
                large_outage and large_outage.target == org.id
            )
            surging = surge is not None and surge.target == org.id
            for _ in range(poisson(rng, org.payments_per_minute * level * minutes)):
                out.extend(self._payment(org, bool(outage), bool(cluster), surging))
            # widgets
            for _ in range(poisson(rng, org.widget_loads_per_minute * level * minutes)):
                beacon = self._widget(
                    org, bool(cdn), scripts is not None and scripts.target == org.id
                )
                out.extend(beacon)
                # widgets report from the donor's browser, through the beacon
                self._beacons.append((rng.choice(self._visitors[org.id]), beacon))
            # traffic
            rate = org.requests_per_minute * level
            if spike and spike.target == org.id:
                rate *= 5
            if drop:
                rate *= 0.2
            bot_share = 0.6 if bots and bots.target == org.id else BOT_SHARE
            for _ in range(poisson(rng, rate * minutes)):
                out.append(self._visit(org, bot_share, geo is not None))
            if flood and flood.target == org.id:
                for _ in range(poisson(rng, 900 * minutes)):
                    out.append(
                        TrafficRequest(
                            organization_id=org.id,
                            path="/give",
                            country="DE",
                            user_agent=HUMAN_AGENTS[0],
                            ip=f"203.0.113.{rng.randrange(1, 6)}",
                        )
                    )
        testing = active("card testing", t)
        if testing is not None:
            out.extend(self._card_testing(testing.target, minutes))
        out.extend(self._api(t, minutes))
        return out

    def _card_testing(self, org: str, minutes: float) -> list[msgspec.Struct]:
        """Stolen cards tried one after another on an organization's form: $1 payments, each
        card once, nearly all declined."""
        rng = self.testing_rng
        codes = [c for c, _ in CARD_TESTING_DECLINES]
        weights = [w for _, w in CARD_TESTING_DECLINES]
        return [
            PaymentFailed(
                organization_id=org,
                amount=100,
                currency="usd",
                decline_code=rng.choices(codes, weights)[0],
                payment_id=self._payment_id(),
            )
            for _ in range(poisson(rng, CARD_TESTING_PER_MINUTE * minutes))
        ]

    def _payment(
        self, org: Organization, outage: bool, cluster: bool, surge: bool = False
    ) -> list[msgspec.Struct]:
        attempts = self._ordinary_payment(org, outage, cluster)
        # a decline surge overrides the outcome with its own draws, so that the rest of the
        # history stays the same: 70% of the payments declined, donors retrying as usual
        if surge and self.effects_rng.random() < 0.7:
            failed = PaymentFailed(
                organization_id=org.id,
                amount=2500,
                currency="usd",
                decline_code="generic_decline",
                payment_id=self._payment_id(),
            )
            attempts = [failed]
            while self.effects_rng.random() < RETRY_PROBABILITY and len(attempts) < 4:
                attempts.append(failed)
        return attempts

    def _payment_id(self) -> str:
        self._payment_ids += 1
        return f"pi_{self._payment_ids}"

    def _ordinary_payment(
        self, org: Organization, outage: bool, cluster: bool
    ) -> list[msgspec.Struct]:
        rng = self.rng
        if outage:
            return [
                PaymentFailed(
                    organization_id=org.id,
                    amount=2500,
                    currency="usd",
                    error="An error occurred while processing your card. Try again.",
                    failure_code="processing_error",
                    payment_id=self._payment_id(),
                )
            ]
        if cluster and rng.random() < 0.45:
            return [
                PaymentFailed(
                    organization_id=org.id,
                    amount=2500,
                    currency="usd",
                    decline_code="do_not_honor",
                    payment_id=self._payment_id(),
                )
            ]
        roll = rng.random()
        if roll < 0.003:
            return [PaymentTimeout(organization_id=org.id, duration_ms=30000.0, provider="stripe")]
        if roll < 0.003 + BASE_FAILURE:
            code = rng.choices([c for c, _ in DECLINES], [w for _, w in DECLINES])[0]
            failed = PaymentFailed(
                organization_id=org.id,
                amount=2500,
                currency="usd",
                decline_code=code,
                payment_id=self._payment_id(),
            )
            attempts = [failed]
            while rng.random() < RETRY_PROBABILITY and len(attempts) < 4:
                attempts.append(failed)
            return attempts
        return [PaymentSucceeded(organization_id=org.id, amount=2500, currency="usd")]

    def _widget(self, org: Organization, cdn: bool, scripts: bool) -> list[msgspec.Struct]:
        rng = self.rng
        widget = f"{org.id}-w{rng.randrange(org.widgets)}"
        if cdn and rng.random() < 0.95:
            return [WidgetLoadError(organization_id=org.id, widget_id=widget, error="timeout")]
        roll = rng.random()
        if roll < 0.005:
            return [WidgetLoadError(organization_id=org.id, widget_id=widget, error="network")]
        duration = rng.lognormvariate(math.log(800), 0.6)
        out: list[msgspec.Struct] = [
            WidgetLoaded(organization_id=org.id, widget_id=widget, duration_ms=min(duration, 6e4))
        ]
        if roll < 0.008:
            out.append(WidgetRenderError(organization_id=org.id, widget_id=widget))
        if rng.random() < (0.25 if scripts else 0.006):
            out.append(
                WidgetScriptError(organization_id=org.id, widget_id=widget, error="TypeError")
            )
        return out

    def _visit(self, org: Organization, bot_share: float, geo_shift: bool) -> msgspec.Struct:
        rng = self.rng
        roll = rng.random()
        if roll < bot_share:
            agent, ip = rng.choice(BOT_AGENTS), rng.choice(self._bots)
        elif roll < bot_share + SUSPICIOUS_SHARE:
            agent, ip = SUSPICIOUS_AGENT, rng.choice(self._bots)
        else:
            agent, ip = rng.choice(HUMAN_AGENTS), rng.choice(self._visitors[org.id])
        if geo_shift and rng.random() < 0.3:
            country = "BR"
        elif rng.random() < FOREIGN_SHARE:
            country = rng.choice(FOREIGN_COUNTRIES)
        else:
            country = rng.choices([c for c, _ in org.countries], [w for _, w in org.countries])[0]
        return TrafficRequest(
            organization_id=org.id, path="/give", country=country, user_agent=agent, ip=ip
        )

    def _api(self, t: float, minutes: float) -> Iterator[msgspec.Struct]:
        rng = self.rng
        # the API follows the whole platform's activity (an average organization's curve)
        level = sum(o.activity(t) for o in ORGANIZATIONS) / len(ORGANIZATIONS)
        burst = self._active("API 5xx burst", t)
        slow = self._active("slow API", t)
        db = self._active("database down", t)  # every route needs the database
        for route, method, per_minute in ROUTES:
            for _ in range(poisson(rng, per_minute * level * minutes)):
                status = 200
                roll = rng.random()
                if (burst and burst.target == route and roll < 0.15) or (db and roll < 0.6):
                    status = 503
                elif roll < 0.0004:
                    status = 500
                elif roll < 0.02:
                    status = 404
                duration = rng.lognormvariate(math.log(60), 0.7)
                if slow and slow.target == route:
                    duration *= 25
                yield EndpointRequest(
                    route=route.replace("{id}", str(rng.randrange(1, 500))),
                    method=method,
                    status=status,
                    duration_ms=min(duration, 6e4),
                )
        brute = self._active("brute force", t)
        for _ in range(poisson(rng, (150 if brute else 2) * minutes)):
            yield AuthFailed(reason="bad_password", ip="203.0.113.77")
        for _ in range(poisson(rng, (8 if db else 0.01) * minutes)):
            yield DatabaseError(operation="select", error="connection refused")
        stripe = self._active("Stripe webhook handler failing", t)
        for _ in range(poisson(rng, (2 if stripe else 0.0007) * minutes)):
            yield StripeWebhookFailed(
                event_type="payment_intent.succeeded", error="database timeout"
            )
        for _ in range(poisson(self.effects_rng, 2 * minutes) if db else 0):
            yield StripeWebhookFailed(
                event_type="payment_intent.succeeded", error="database unavailable"
            )

    # -- the replay ----------------------------------------------------------------------------

    def ingest(self, events: list[msgspec.Struct]) -> None:
        """Through the exporter's own event decoding (the /v1/events schema) and recorder; the
        widgets' events came as beacons from donors' browsers, and their errors are counted by
        client as the beacon endpoint counts them."""
        if not events:
            return
        decoded, rejected, _ = decode_events(self._encode(events), len(events))
        if rejected:
            raise RuntimeError(f"the simulation produced invalid events: {rejected[:3]}")
        self.recorder.record(decoded)
        for client, beacon in self._beacons:
            self.recorder.widget_reports.count(beacon, "beacon", client)
        self._beacons.clear()

    def probe(self, t: float) -> None:
        down = self._active("database down", t)
        self.metrics.database_probe_up.set(0 if down else 1)
        self.metrics.database_probe_duration.set(5.0 if down else 0.004 + self.rng.random() * 0.01)


class Scraper:
    """What one scrape of the exporter returns: every sample of the metrics the rules read, named
    as Prometheus stores it (with the scrape's job and instance labels). It walks the metrics the
    way the exporter's /metrics renderer does, without formatting the text to parse it again."""

    def __init__(self, metrics: list[MetricWrapperBase], keep: frozenset[str]) -> None:
        self._metrics = [m for m in metrics if any(n.startswith(m._name) for n in keep)]
        self._keep = keep
        self._names: dict[tuple[int, tuple[str, ...], str, str], str | None] = {}

    def _name(
        self, metric: MetricWrapperBase, values: tuple[str, ...], suffix: str, le: str
    ) -> str:
        pairs = sorted(zip(metric._labelnames, values, strict=True))
        if le:
            pairs.append(("le", le))
        labels = "".join(f',{k}="{_escape(v)}"' for k, v in pairs)
        name = metric._name + suffix
        return f"{name}{{{EXPORTER_LABELS}{labels}}}"

    def scrape(self) -> Iterator[tuple[str, float]]:
        names = self._names
        for metric in self._metrics:
            if metric._labelnames:
                with metric._lock:
                    children = list(metric._metrics.items())
            else:
                children = [((), metric)]
            for values, child in children:
                for suffix, extra, value, *_ in child._child_samples():
                    le = extra.get("le", "")
                    key = (id(metric), values, suffix, le)
                    name = names.get(key, "")
                    if name == "":
                        name = names[key] = (
                            self._name(metric, values, suffix, le)
                            if metric._name + suffix in self._keep
                            else None
                        )
                    if name is not None:
                        yield name, value


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def replay(
    platform: Platform,
    days: int,
    step: int,
    out_dir: Path,
    on_day: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Simulate ``days`` days; after each day write ``day-NN.om`` and call ``on_day`` with it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    scraper = Scraper(platform.metrics.all(), platform.keep)
    ticks_per_day = DAY // step
    for day in range(days):
        samples: dict[str, list[str]] = {}
        day_start = platform.start + day * DAY
        for i in range(ticks_per_day):
            t = day_start + i * step
            # the events of the interval before the scrape at t
            platform.clock.now = float(t)
            platform.ingest(platform.events(t - step, step))
            platform.probe(t)
            platform.recorder.widget_reports.refresh()  # as each scrape does
            stamp = f" {t}\n"
            for name, value in scraper.scrape():
                row = f"{value!r}{stamp}"
                rows = samples.get(name)
                if rows is None:
                    samples[name] = [row]
                else:
                    rows.append(row)
            for name in STATIC_SERIES:
                samples.setdefault(name, []).append("1" + stamp)
        path = out_dir / f"day-{day:02d}.om"
        with path.open("w") as f:
            for name in sorted(samples):
                prefix = name + " "
                f.writelines(prefix + row for row in samples[name])
            f.write("# EOF\n")
        files.append(path)
        if on_day is not None:
            on_day(path)
    return files
