"""Beacon keys: the platform vouches for an (organization, widget) pair without a lookup per event.

A key is ``v1.`` followed by the first 16 bytes of HMAC-SHA256 over the pair, base64url without
padding, with ``EXPORTER_BEACON_SECRET`` as the HMAC key. The message is length-prefixed so that no
two pairs share one::

    "passiton-beacon-v1\\n" + str(len(organization_id as UTF-8)) + ":" + organization_id + widget_id

``passiton-monitoring beacon-key --organization ORG --widget W`` prints one; the Python and
TypeScript clients compute the same (``tests/data/beacon_key_vectors.json`` holds them to it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "v1."
KEY_LENGTH = len(PREFIX) + 22  # 16 bytes in unpadded base64url
_DOMAIN = b"passiton-beacon-v1\n"


def beacon_key(secret: str, organization_id: str, widget_id: str) -> str:
    """The key the platform embeds in the snippet of ``widget_id`` of ``organization_id``."""
    if not secret:
        raise ValueError("the beacon secret is empty")
    org = organization_id.encode()
    message = _DOMAIN + str(len(org)).encode() + b":" + org + widget_id.encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()[:16]
    return PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def well_formed(key: str) -> bool:
    """Shape only (length, prefix, alphabet): checked before the body is read."""
    if len(key) != KEY_LENGTH or not key.startswith(PREFIX):
        return False
    return all(c.isascii() and (c.isalnum() or c in "-_") for c in key[len(PREFIX) :])


def verify(secret: str, organization_id: str, widget_id: str, key: str) -> bool:
    """Constant-time comparison of ``key`` with the pair's key."""
    expected = beacon_key(secret, organization_id, widget_id)
    return hmac.compare_digest(expected.encode(), key.encode())
