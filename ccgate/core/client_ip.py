"""Who the client is, behind reverse proxies the operator trusts (pure).

Only when the connecting address is a trusted proxy are ``X-Forwarded-For`` (or, without it,
``Forwarded``) believed: the client is the right-most address in the chain that is not itself a
trusted proxy. Anyone can write those headers, so from any other address they change nothing.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """``server.trustedProxies``: addresses or CIDRs (ValueError names a bad one)."""
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a header element: quotes, ``[v6]`` brackets and ports removed."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":")[0]  # v4 with a port
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def in_networks(text: str, networks: tuple[Network, ...]) -> bool:
    """Whether the address ``text`` is in one of ``networks``."""
    addr = _address(text)
    return addr is not None and any(addr in net for net in networks)


def _forwarded_for(value: str) -> list[str]:
    """The ``for=`` of each element of a ``Forwarded`` header (RFC 7239), in order."""
    out = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, _, val = pair.partition("=")
            if name.strip().lower() == "for":
                out.append(val)
    return out


def client_address(peer: str, x_forwarded_for: str | None, forwarded: str | None,
                   trusted: tuple[Network, ...]) -> str:
    """The client's address for limits, logs and records."""
    def is_trusted(addr) -> bool:
        return addr is not None and any(addr in net for net in trusted)

    if not trusted or not is_trusted(_address(peer)):
        return peer
    chain = (x_forwarded_for.split(",") if x_forwarded_for
             else _forwarded_for(forwarded) if forwarded else [])
    for hop in reversed(chain):
        addr = _address(hop)
        if addr is None:
            return peer  # garbage in the chain: believe nothing past it
        if not is_trusted(addr):
            return str(addr)
    return str(_address(chain[0])) if chain else peer
