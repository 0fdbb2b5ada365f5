"""JSON forms of alerts and messages, as kept in the outbox and in the fatigue state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from bridge.model import Alert, Message

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def alert_to_dict(alert: Alert) -> dict[str, Any]:
    return {
        "fingerprint": alert.fingerprint,
        "status": alert.status,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
        "generator_url": alert.generator_url,
    }


def alert_from_dict(data: dict[str, Any]) -> Alert:
    return Alert(
        fingerprint=data["fingerprint"],
        status=data["status"],
        labels=dict(data["labels"]),
        annotations=dict(data["annotations"]),
        starts_at=datetime.fromisoformat(data["starts_at"]),
        ends_at=datetime.fromisoformat(data["ends_at"]) if data.get("ends_at") else None,
        generator_url=data.get("generator_url", ""),
    )


def encode_message(message: Message) -> bytes:
    data: dict[str, Any] = {
        "group_key": message.group_key,
        "status": message.status,
        "receiver": message.receiver,
        "alerts": [alert_to_dict(a) for a in message.alerts],
        "common_labels": message.common_labels,
        "external_url": message.external_url,
        "recipients": list(message.recipients),
        "notice": message.notice,
        "group_status": message.group_status,
        "incident_id": message.incident_id,
        "incident_title": message.incident_title,
        "action": message.action,
        "mentions": list(message.mentions),
    }
    if message.ack_token:  # only a push page carries one
        data["ack_token"] = message.ack_token
    return _encoder.encode(data)


def decode_message(raw: bytes | str) -> Message:
    data = _decoder.decode(raw)
    return Message(
        group_key=data["group_key"],
        status=data["status"],
        receiver=data["receiver"],
        alerts=tuple(alert_from_dict(a) for a in data["alerts"]),
        common_labels=dict(data.get("common_labels") or {}),
        external_url=data.get("external_url", ""),
        recipients=tuple(data.get("recipients") or ()),
        notice=data.get("notice", ""),
        group_status=data.get("group_status", ""),
        incident_id=data.get("incident_id"),
        incident_title=data.get("incident_title", ""),
        action=data.get("action", ""),
        mentions=tuple(data.get("mentions") or ()),
        ack_token=data.get("ack_token", ""),
    )


def encode_json(value: Any) -> str:
    return _encoder.encode(value).decode()


def decode_json(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    return _decoder.decode(raw)
