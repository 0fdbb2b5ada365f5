"""Beacon keys for widget snippets, without the server installed.

The same function as the exporter's ``passiton-monitoring beacon-key`` (``exporter.beacon_keys``):
HMAC-SHA256 with the exporter's ``EXPORTER_BEACON_SECRET`` over
``"passiton-beacon-v1\\n" + byte length of organization_id + ":" + organization_id + widget_id``,
first 16 bytes, base64url without padding, prefixed ``v1.``. The repository's
``tests/data/beacon_key_vectors.json`` holds both implementations (and the TypeScript client's)
to the same answers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def beacon_key(secret: str, organization_id: str, widget_id: str) -> str:
    """The key to embed in the snippet of ``widget_id`` of ``organization_id``
    (``data-beacon-key``)."""
    if not secret:
        raise ValueError("the beacon secret is empty")
    org = organization_id.encode()
    message = b"passiton-beacon-v1\n" + str(len(org)).encode() + b":" + org + widget_id.encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()[:16]
    return "v1." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
