"""Who the client is behind trusted proxies: the exporter's public edge and the bridge's console
(its login throttle) read ``X-Forwarded-For`` the same way."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from passiton_common.settings import ConfigError

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_FORWARDED_HOPS = 32  # a longer X-Forwarded-For is read only this far from the right


def parse_networks(values: Iterable[str], name: str = "EXPORTER_TRUSTED_PROXIES") -> tuple:
    """Addresses or CIDRs; an error names the variable and the value."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {value!r} is not an address or CIDR") from None
    return tuple(networks)


class ClientAddress:
    """The donor's address: the connection's, or read from ``X-Forwarded-For`` right to left
    through trusted proxy hops only (each proxy appends the address it received from)."""

    def __init__(self, trusted: Iterable[_Network]) -> None:
        self._trusted = tuple(trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str:
        client = peer or "unknown"
        if not self._trusted or not forwarded_for or not self._is_trusted(client):
            return client
        hops = forwarded_for.rsplit(",", _MAX_FORWARDED_HOPS)[-_MAX_FORWARDED_HOPS:]
        for hop in reversed(hops):
            address = hop.strip()
            try:
                ipaddress.ip_address(address)
            except ValueError:
                return client  # a garbled hop: the last trusted proxy is all we know
            client = address
            if not self._is_trusted(address):
                return client
        return client
