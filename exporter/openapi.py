"""The OpenAPI 3 document the exporter serves at /v1/openapi.json, built from the event schemas."""

from __future__ import annotations

import json
import sys
from typing import Any

import msgspec

from exporter.events import BEACON_TYPES, EVENT_CLASSES, Rejection


def _rename(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _rename(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_rename(v) for v in schema]
    return schema


def openapi_document() -> dict[str, Any]:
    refs, components = msgspec.json.schema_components(
        (*EVENT_CLASSES, Rejection), ref_template="#/components/schemas/{name}"
    )
    *event_refs, rejection_ref = refs
    components = _rename(components)
    event_names = [ref["$ref"].rsplit("/", 1)[1] for ref in event_refs]
    for name, cls in zip(event_names, EVENT_CLASSES, strict=True):
        schema = components[name]
        schema["properties"]["type"]["enum"] = [cls.__struct_config__.tag]
        # msgspec states a tag as `enum`; give it a description for readers.
        schema["description"] = f"Event of type `{cls.__struct_config__.tag}`."
    components["Event"] = {
        "oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in event_names],
        "discriminator": {
            "propertyName": "type",
            "mapping": {
                cls.__struct_config__.tag: f"#/components/schemas/{n}"
                for n, cls in zip(event_names, EVENT_CLASSES, strict=True)
            },
        },
    }
    beacon_names = [
        n
        for n, cls in zip(event_names, EVENT_CLASSES, strict=True)
        if cls.__struct_config__.tag in BEACON_TYPES
    ]
    components["BeaconEvent"] = {
        "oneOf": [{"$ref": f"#/components/schemas/{n}"} for n in beacon_names]
    }
    components["IngestResult"] = {
        "type": "object",
        "required": ["accepted", "rejected", "errors"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "rejected": {"type": "integer", "minimum": 0},
            "errors": {"type": "array", "items": rejection_ref},
        },
    }
    components["Error"] = {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
    }

    def body(ref: str, max_items: int = 1000) -> dict[str, Any]:
        return {
            "oneOf": [
                {"$ref": f"#/components/schemas/{ref}"},
                {
                    "type": "array",
                    "maxItems": max_items,
                    "items": {"$ref": f"#/components/schemas/{ref}"},
                },
            ]
        }

    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    result = {"application/json": {"schema": {"$ref": "#/components/schemas/IngestResult"}}}
    responses = {
        "202": {
            "description": "Events recorded; invalid events rejected one by one",
            "content": result,
        },
        "400": {"description": "Malformed JSON or an invalid single event", "content": error},
        "401": {"description": "Missing or wrong bearer token", "content": error},
        "413": {"description": "Body or batch over the limit", "content": error},
        "415": {"description": "Wrong content type", "content": error},
        "408": {"description": "Body not received in time", "content": error},
    }
    overloaded = {
        "description": "The public listener is past EXPORTER_PUBLIC_RATE_PER_SECOND (everyone "
        "together) and this request's turn was more than EXPORTER_PUBLIC_MAX_WAIT_SECONDS away: "
        "answered after that wait, with Retry-After, and the connection closed",
        "content": error,
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "PassItOn monitoring exporter",
            "version": "1",
            "description": "Application signals in, Prometheus metrics out. Two listeners: "
            "the internal one (EXPORTER_LISTEN) serves /v1/events, /metrics and this document; "
            "the public one (EXPORTER_PUBLIC_LISTEN) serves /v1/beacon, /v1/beacon.js and "
            "/v1/stripe/webhook.",
        },
        "paths": {
            "/v1/events": {
                "post": {
                    "summary": "Ingest one event or a batch",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": body("Event")}},
                    },
                    "responses": responses,
                }
            },
            "/v1/beacon": {
                "post": {
                    "summary": "Widget events from browsers (sendBeacon), public listener",
                    "description": "The same JSON is also accepted as a text/plain body, which "
                    "is what navigator.sendBeacon sends without a CORS preflight. Every event "
                    "must be for the organization and widget of the key (`passiton-monitoring "
                    "beacon-key`); at most 20 events and 16 KiB per beacon.",
                    "parameters": [
                        {
                            "name": "key",
                            "in": "query",
                            "required": True,
                            "description": "the widget's beacon key",
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": body("BeaconEvent", 20)}},
                    },
                    "responses": {
                        **responses,
                        "401": {"description": "Missing beacon key", "content": error},
                        "403": {
                            "description": "Origin not allowed, or a key that is malformed, "
                            "forged or for another widget",
                            "content": error,
                        },
                        "404": {"description": "EXPORTER_BEACON_SECRET not set", "content": error},
                        "429": {"description": "Rate limited", "content": error},
                        "503": overloaded,
                    },
                }
            },
            "/v1/stripe/webhook": {
                "post": {
                    "summary": "Stripe events, verified with the Stripe-Signature header",
                    "parameters": [
                        {
                            "name": "Stripe-Signature",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "responses": {
                        "200": {"description": "Received (or a duplicate, ignored)"},
                        "400": {"description": "Bad signature or payload", "content": error},
                        "404": {"description": "STRIPE_WEBHOOK_SECRET not set", "content": error},
                        "429": {"description": "Rate limited (per client)", "content": error},
                        "503": overloaded,
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text exposition"}},
                }
            },
            "/-/healthy": {
                "get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}
            },
            "/-/ready": {
                "get": {"summary": "Readiness", "responses": {"200": {"description": "ready"}}}
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


if __name__ == "__main__":  # `python -m exporter.openapi`: the document /v1/openapi.json serves
    json.dump(openapi_document(), sys.stdout, indent=2)
    sys.stdout.write("\n")
