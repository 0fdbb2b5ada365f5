"""Who the client is behind trusted proxies: the exporter's public edge and the bridge's console
(its login throttle) read ``X-Forwarded-For`` the same way."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

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


_IPV6_CLIENT_PREFIX = 64  # one subscriber's allocation: the least a provider hands out


def client_network(address: str) -> str:
    """The client a limit or a count is about: an IPv4 address as is, an IPv6 address as its /64
    (one machine can rotate through 2**64 addresses of its own prefix), an IPv4-mapped IPv6
    address as its IPv4 address. Anything else (``unknown``, a network already) is returned as
    is."""
    if ":" not in address or "/" in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((ip, _IPV6_CLIENT_PREFIX), strict=False))


def forwarded_for(headers: Mapping[str, str]) -> str | None:
    """Every ``X-Forwarded-For`` line of a request, joined in order (RFC 9110: several lines of one
    field are one comma-separated list). A proxy that adds its own line (HAProxy) puts it after
    the client's, so the right end is the proxy's however many lines the client sent."""
    getall = getattr(headers, "getall", None)
    lines = getall("X-Forwarded-For", ()) if getall else [headers.get("X-Forwarded-For", "")]
    joined = ", ".join(line for line in lines if line)
    return joined or None


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
