"""The VAPID keys and subject of the ``webpush`` channel (RFC 8292), read and checked at
start-up, and a new key pair for ``passiton-monitoring webpush-keys``.

The private key is the raw 32-byte P-256 scalar in base64url (what the ``web-push`` tools
print), the public key the uncompressed point (65 bytes) in base64url, what a browser's
``PushManager.subscribe({applicationServerKey})`` takes. A public key that does not match the
private key is refused: browsers would subscribe to a key the bridge cannot sign for, and every
push service would answer 401/403.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from passiton_common.settings import ConfigError, EnvReader


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """base64url with or without padding; ValueError for anything else."""
    text = text.strip()
    if not text or any(c not in _ALPHABET for c in text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def public_point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@dataclass(frozen=True)
class VapidKeys:
    private_key: str = field(repr=False)  # base64url of the raw scalar
    public_key: str  # base64url of the uncompressed point

    @classmethod
    def generate(cls) -> VapidKeys:
        key = ec.generate_private_key(ec.SECP256R1())
        raw = key.private_numbers().private_value.to_bytes(32, "big")
        return cls(b64url(raw), b64url(public_point(key.public_key())))

    @classmethod
    def load(cls, private_key: str, public_key: str | None = None) -> VapidKeys:
        """The pair from the private key (the public key derived, or checked when given)."""
        try:
            raw = b64url_decode(private_key)
        except ValueError:
            raise ValueError("is not base64url") from None
        if len(raw) != 32:
            raise ValueError(f"must be a raw 32-byte P-256 key, got {len(raw)} bytes")
        try:
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        except ValueError:
            raise ValueError("is not a valid P-256 private key") from None
        derived = b64url(public_point(key.public_key()))
        if public_key is not None:
            try:
                given = b64url_decode(public_key)
            except ValueError:
                raise ValueError("public key is not base64url") from None
            if given != b64url_decode(derived):
                raise ValueError("public key does not belong to the private key")
        return cls(b64url(raw), derived)


@dataclass(frozen=True)
class WebPushSettings:
    keys: VapidKeys
    subject: str  # mailto:… or https://…
    ttl_seconds: int = 4 * 3600  # how long a push service keeps a page for an offline device


def read_webpush(get: EnvReader) -> WebPushSettings | None:
    """``WEBPUSH_*``; None when the private key is unset. ConfigError names the culprit."""
    private = get("WEBPUSH_VAPID_PRIVATE_KEY")
    public = get("WEBPUSH_VAPID_PUBLIC_KEY")
    subject = get("WEBPUSH_SUBJECT")
    if private is None:
        if public is not None or subject is not None:
            set_ = "WEBPUSH_VAPID_PUBLIC_KEY" if public is not None else "WEBPUSH_SUBJECT"
            raise ConfigError(f"WEBPUSH_VAPID_PRIVATE_KEY is required when {set_} is set")
        return None
    try:
        keys = VapidKeys.load(private, public)
    except ValueError as exc:
        name = (
            "WEBPUSH_VAPID_PUBLIC_KEY" if "public key" in str(exc) else "WEBPUSH_VAPID_PRIVATE_KEY"
        )
        raise ConfigError(
            f"{name}: {exc} (make a pair with `passiton-monitoring webpush-keys`)"
        ) from None
    if subject is None:
        raise ConfigError(
            "WEBPUSH_SUBJECT is required when WEBPUSH_VAPID_PRIVATE_KEY is set"
            " (mailto:you@example.org or an https URL)"
        )
    if not (
        (subject.startswith("mailto:") and "@" in subject and " " not in subject)
        or subject.startswith("https://")
    ):
        raise ConfigError(
            f"WEBPUSH_SUBJECT must be mailto:an-address or an https:// URL, got {subject!r}"
        )
    return WebPushSettings(keys, subject)
