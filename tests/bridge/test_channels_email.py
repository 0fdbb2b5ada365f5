import pytest

from bridge.channels.base import DeliveryError
from bridge.channels.email import EmailNotifier
from tests.bridge.channel_support import make_alert, make_message

SENDER = "PassItOn Alerts <alerts@passiton.test>"
OPS = ("ops@passiton.test", "oncall@passiton.test")


def notifier_for(server, **kwargs) -> EmailNotifier:
    kwargs.setdefault("tls", server.tls)
    kwargs.setdefault("recipients", OPS)
    return EmailNotifier(server.host, server.port, sender=SENDER, timeout=5, **kwargs)


async def test_one_mail_with_text_and_escaped_html(fake_smtp):
    evil = make_alert(
        "WidgetDown",
        fingerprint="f2",
        summary="<script>alert(1)</script> & co",
        description='<img src=x onerror="steal()">',
        runbook_url='javascript:alert("x")',
    )
    await notifier_for(fake_smtp).notify(make_message(make_alert(), evil))
    assert len(fake_smtp.messages) == 1
    received = fake_smtp.messages[0]
    assert received.mail_from == "alerts@passiton.test"
    assert received.rcpt_tos == OPS
    mail = received.message
    assert mail["Subject"] == "[FIRING:2] [CRITICAL] PaymentFailureRateHigh"
    assert mail["From"] == SENDER
    assert mail["To"] == "ops@passiton.test, oncall@passiton.test"
    assert mail["X-PassItOn-Severity"] == "critical"
    assert mail["Message-ID"]
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "1. Payment failure rate 12% for org-123" in text
    assert "Runbook: https://docs.passiton.test/runbooks#payment-failure-rate-high" in text
    assert "2. <script>alert(1)</script> & co (org-123)" in text  # plain text needs no escaping
    assert "<h3>Payment failure rate 12% for org-123</h3>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "&lt;img src=x onerror=&quot;steal()&quot;&gt;" in html
    assert "<script>" not in html
    assert "<img" not in html
    assert "javascript:" not in html
    assert (
        '<a href="http://prometheus.test:9090/graph?g0.expr=rate%28x%5B5m%5D%29&amp;g0.tab=1">Graph</a>'
        in html
    )


async def test_message_recipients_override_defaults(fake_smtp):
    await notifier_for(fake_smtp).notify(make_message(recipients=("org-admin@example.org",)))
    assert fake_smtp.messages[0].rcpt_tos == ("org-admin@example.org",)
    assert fake_smtp.messages[0].message["To"] == "org-admin@example.org"


@pytest.mark.parametrize("tls", ["starttls", "tls"])
async def test_tls_modes_with_authentication(fake_smtp_factory, client_ssl_context, tls):
    server = await fake_smtp_factory(tls=tls, credentials=("mailer", "s3cret"))
    notifier = notifier_for(
        server, username="mailer", password="s3cret", tls_context=client_ssl_context
    )
    await notifier.notify(make_message())
    assert len(server.messages) == 1
    assert server.messages[0].tls is True
    assert server.messages[0].authenticated_as == "mailer"
    assert "s3cret" not in repr(notifier)


async def test_wrong_password_is_permanent(fake_smtp_factory, client_ssl_context):
    server = await fake_smtp_factory(tls="starttls", credentials=("mailer", "s3cret"))
    notifier = notifier_for(
        server, username="mailer", password="nope", tls_context=client_ssl_context
    )
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert info.value.retryable is False
    assert "535" in str(info.value)


async def test_untrusted_certificate_is_transient_not_silently_accepted(fake_smtp_factory):
    server = await fake_smtp_factory(tls="tls")
    with pytest.raises(DeliveryError) as info:
        await notifier_for(server).notify(make_message())  # system trust store only
    assert info.value.retryable is True
    assert server.messages == []


async def test_starttls_required_but_server_offers_none_is_permanent(fake_smtp):
    with pytest.raises(DeliveryError) as info:
        await notifier_for(fake_smtp, tls="starttls").notify(make_message())
    assert info.value.retryable is False
    assert fake_smtp.messages == []


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [
        ("451 4.3.0 Try again later", True),
        ("452 4.3.1 Insufficient system storage", True),
        ("554 5.7.1 Message rejected as spam", False),
        ("552 5.3.4 Message too big", False),
    ],
)
async def test_data_replies(fake_smtp, reply, retryable):
    fake_smtp.reply_data(reply)
    with pytest.raises(DeliveryError) as info:
        await notifier_for(fake_smtp).notify(make_message())
    assert info.value.retryable is retryable
    assert reply.split()[0] in str(info.value)


async def test_all_recipients_refused(fake_smtp):
    fake_smtp.reply_rcpt("550 5.1.1 No such user", times=2)
    with pytest.raises(DeliveryError) as info:
        await notifier_for(fake_smtp).notify(make_message())
    assert info.value.retryable is False
    assert "550" in str(info.value)


async def test_one_recipient_deferred_is_retried_alone(fake_smtp):
    fake_smtp.reply_rcpt_for("oncall@passiton.test", "450 4.2.1 Mailbox busy")
    with pytest.raises(DeliveryError) as info:
        await notifier_for(fake_smtp).notify(make_message())
    assert info.value.retryable is True
    assert info.value.remaining == ("oncall@passiton.test",)
    assert fake_smtp.messages[0].rcpt_tos == ("ops@passiton.test",)


async def test_one_recipient_rejected_is_permanent_and_named(fake_smtp):
    fake_smtp.reply_rcpt_for("oncall@passiton.test", "550 5.1.1 No such user")
    with pytest.raises(DeliveryError) as info:
        await notifier_for(fake_smtp).notify(make_message())
    assert info.value.retryable is False
    assert info.value.remaining == ("oncall@passiton.test",)
    assert "1/2 accepted" in str(info.value)
    assert len(fake_smtp.messages) == 1


async def test_connection_refused_is_transient(fake_smtp):
    await fake_smtp.stop()
    with pytest.raises(DeliveryError) as info:
        await notifier_for(fake_smtp).notify(make_message())
    assert info.value.retryable is True


async def test_no_valid_recipient_is_permanent(fake_smtp):
    with pytest.raises(DeliveryError) as info:
        await notifier_for(fake_smtp).notify(make_message(recipients=("not-an-address",)))
    assert info.value.retryable is False


async def test_alert_text_cannot_inject_headers(fake_smtp):
    alert = make_alert("Evil\r\nBcc: victim@example.org", summary="x\r\n\r\nfake body")
    await notifier_for(fake_smtp).notify(make_message(alert))
    received = fake_smtp.messages[0]
    assert received.rcpt_tos == OPS
    assert received.message["Bcc"] is None
    assert received.message["Subject"] == "[FIRING:1] [CRITICAL] Evil Bcc: victim@example.org"


async def test_server_too_slow_is_transient(fake_smtp):
    fake_smtp.stall_data(5)
    notifier = EmailNotifier(
        fake_smtp.host, fake_smtp.port, sender=SENDER, recipients=OPS, tls="none", timeout=0.3
    )
    with pytest.raises(DeliveryError) as info:
        await notifier.notify(make_message())
    assert info.value.retryable is True
    assert "Timeout" in str(info.value)
