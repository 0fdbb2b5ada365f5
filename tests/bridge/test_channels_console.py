import io

from bridge.channels.console import ConsoleNotifier
from tests.bridge.channel_support import make_alert, make_message


async def test_console_prints_a_readable_block(capsys):
    message = make_message(
        make_alert(),
        make_alert(
            "WidgetDown",
            severity="high",
            fingerprint="f2",
            summary="Widget down",
            organization_id=None,
        ),
        notice="Flapping",
    )
    await ConsoleNotifier().notify(message)
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "=" * 72,
        "[FIRING:2] [CRITICAL] PaymentFailureRateHigh",
        "",
        "Flapping",
        "",
        "1. Payment failure rate 12% for org-123",
        "   12% of payments failed over the last 5 minutes (threshold 5%).",
        "   Labels: severity=critical, category=payment, organization_id=org-123",
        "   Started: 2026-03-01 09:30:00 UTC",
        "   Graph: http://prometheus.test:9090/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1",
        "   Runbook: https://docs.passiton.test/runbooks#payment-failure-rate-high",
        "",
        "2. Widget down",
        "   12% of payments failed over the last 5 minutes (threshold 5%).",
        "   Labels: severity=high, category=payment",
        "   Started: 2026-03-01 09:30:00 UTC",
        "   Graph: http://prometheus.test:9090/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1",
        "   Runbook: https://docs.passiton.test/runbooks#payment-failure-rate-high",
        "",
        "Alertmanager: http://alertmanager.test:9093",
        "=" * 72,
    ]


async def test_console_resolved_and_custom_stream():
    stream = io.StringIO()
    alert = make_alert(status="resolved", ends_at=make_alert().starts_at.replace(hour=10))
    await ConsoleNotifier(stream).notify(make_message(alert))
    text = stream.getvalue()
    assert "[RESOLVED] [CRITICAL] PaymentFailureRateHigh" in text
    assert "1. RESOLVED: Payment failure rate 12% for org-123" in text
    assert "   Resolved: 2026-03-01 10:30:00 UTC" in text


async def test_console_neutralises_terminal_escape_sequences():
    stream = io.StringIO()
    alert = make_alert(summary="\x1b[2J\x1b]0;pwned\x07 cleared")
    await ConsoleNotifier(stream).notify(make_message(alert))
    assert "\x1b" not in stream.getvalue()
    assert "\x07" not in stream.getvalue()
    assert "?[2J?]0;pwned? cleared" in stream.getvalue()
