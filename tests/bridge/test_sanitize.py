import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.sanitize import REDACTED_CARD, _redact_all, luhn_valid, redact, redact_mapping


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOi.abc-def_123", "eyJhbGciOi"),
        ("authorization: basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
        ("stripe key sk_live_51HxYzAbCdEfGhIj in logs", "sk_live_51HxYzAbCdEfGhIj"),
        ("restricted rk_test_abcdefghij1234", "rk_test_abcdefghij1234"),
        ("whsec_abcdefghijklmnopqrstu leaked", "whsec_abcdefghijklmnopqrstu"),
        ("slack xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl"),
        ("user token xoxp-1111-2222-3333-abcd", "xoxp-1111-2222-3333-abcd"),
        ("aws AKIAIOSFODNN7EXAMPLE key", "AKIAIOSFODNN7EXAMPLE"),
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXX", "T000/B000/XXXXXXXX"),
        ("postgresql://postgres:s3cr3t@db.supabase.co:6543/postgres", "s3cr3t"),
        ("smtp://mailer:p%40ss@smtp.example.org", "p%40ss"),
        ("GET /callback?code=1&token=abc123&x=2", "abc123"),
        ("https://api.example.org/v1?api_key=ZZZ999&page=2", "ZZZ999"),
        ("login failed password=hunter2 for user", "hunter2"),
        ("config secret: 'correct horse battery'", "correct horse battery"),
        ("client_secret=shhh", "shhh"),
        ("supabase eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.sig-nature_x", "eyJyb2xlIjoiYW5vbiJ9"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ],
)
def test_secrets_redacted(text, secret):
    out = redact(text)
    assert secret not in out
    assert "[REDACTED]" in out


def test_url_keeps_user_and_host_without_password():
    out = redact("postgresql://postgres:s3cr3t@db.example.org:5432/app")
    assert out == "postgresql://postgres:[REDACTED]@db.example.org:5432/app"


def test_query_keeps_other_parameters():
    out = redact("https://x.org/cb?token=abc&page=2&password=p")
    assert out == "https://x.org/cb?token=[REDACTED]&page=2&password=[REDACTED]"


@pytest.mark.parametrize(
    "card",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "378282246310005",  # Amex, 15 digits
        "6011 0009 9013 9424",
        "4222222222222",  # 13 digits
        "6759649826438453",
    ],
)
def test_luhn_valid_card_numbers_redacted(card):
    out = redact(f"payment for card {card} declined")
    assert out == f"payment for card {REDACTED_CARD} declined"


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # fails Luhn
        "123456789012",  # 12 digits: too short
        "12345678901234567890",  # 20 digits: too long to be a card
        "1700000000001",  # a timestamp that fails Luhn
    ],
)
def test_other_numbers_kept(number):
    text = f"value {number} here"
    assert redact(text) == text


def test_emails_redacted():
    assert redact("contact jane.doe+alerts@example.co.uk now") == "contact [REDACTED-EMAIL] now"
    assert redact("from ops@passiton.org.") == "from [REDACTED-EMAIL]."


def test_ordinary_alert_text_unchanged():
    text = (
        "Payment failure rate for org-123 is 12.5% over 5m (threshold 5%). "
        "See https://prometheus.example.org/graph?g0.expr=rate(x%5B5m%5D) and the token expired."
    )
    assert redact(text) == text
    assert redact("") == ""


def test_redact_mapping_redacts_values_and_secret_named_keys():
    labels = {
        "alertname": "PaymentFailures",
        "organization_id": "org-123",
        "db_password": "plain",
        "api_key": "k",
        "authorization": "Basic abc",
        "description": "card 4111 1111 1111 1111 by bob@example.com",
        "tokens_used": "5",
    }
    out = redact_mapping(labels)
    assert out["alertname"] == "PaymentFailures"
    assert out["organization_id"] == "org-123"
    assert out["db_password"] == "[REDACTED]"
    assert out["api_key"] == "[REDACTED]"
    assert out["authorization"] == "[REDACTED]"
    assert out["description"] == "card [REDACTED-CARD] by [REDACTED-EMAIL]"
    assert out["tokens_used"] == "5"
    assert labels["db_password"] == "plain"  # input untouched


def _luhn_complete(prefix: str) -> str:
    for check in "0123456789":
        if luhn_valid(prefix + check):
            return prefix + check
    raise AssertionError("unreachable")


@given(
    body=st.text(alphabet="0123456789", min_size=12, max_size=18),
    sep=st.sampled_from(["", " ", "-"]),
    before=st.text(alphabet="abc :=,.", max_size=10),
    after=st.text(alphabet="abc :=,.", max_size=10),
)
def test_property_any_luhn_number_is_redacted(body, sep, before, after):
    number = _luhn_complete(body)
    formatted = sep.join(number[i : i + 4] for i in range(0, len(number), 4))
    out = redact(f"{before} {formatted} {after}")
    assert number not in out.replace(" ", "").replace("-", "")
    assert REDACTED_CARD in out


@given(body=st.text(alphabet="0123456789", min_size=13, max_size=19))
def test_property_non_luhn_numbers_kept(body):
    if luhn_valid(body):
        return
    assert redact(f"id {body} end") == f"id {body} end"


@given(st.text(max_size=200))
def test_property_redact_is_idempotent(text):
    once = redact(text)
    assert redact(once) == once


_TRIGGERS = [
    "@",
    "://",
    "user:pw@",
    "password=",
    "Token: ",
    "Bearer ",
    "sk_live_",
    "rk_",
    "xoxb-",
    "AKIA",
    "eyJ",
    ".",
    "-",
    " ",
    "=",
    ":",
    "4111",
    "1111 ",
    "0",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "whsec_abcdefghijklmnopqrstu",
    "AIza" + "x" * 35,
    "API-KEY: ",
    "hooks.slack.com/services/T/B/x",
    "sig",
    "PRIVATE_KEY=",
]


@settings(max_examples=400)
@given(st.lists(st.sampled_from(_TRIGGERS) | st.text(max_size=12), max_size=12).map("".join))
def test_property_fast_path_never_skips_something_to_redact(text):
    assert redact(text) == _redact_all(text)
