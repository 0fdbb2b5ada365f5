"""Outgoing HTTP: every client of a process on one verifying TLS context."""

from __future__ import annotations

import ssl

import httpx

from passiton_common.http_client import async_client, tls_context


def _context_of(client: httpx.AsyncClient) -> ssl.SSLContext:
    return client._transport._pool._ssl_context  # type: ignore[attr-defined]


async def test_clients_share_one_verifying_tls_context() -> None:
    async with async_client() as first, async_client(timeout=3.0) as second:
        assert _context_of(first) is _context_of(second) is tls_context()
    assert tls_context().verify_mode == ssl.CERT_REQUIRED
    assert tls_context().check_hostname


async def test_a_client_given_its_own_context_keeps_it() -> None:
    own = ssl.create_default_context()
    async with async_client(verify=own) as client:
        assert _context_of(client) is own
