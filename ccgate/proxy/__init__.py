"""Forwarding one request to the upstream pool, with failover, and relaying the answer.

- ``types``: ``ProxyRequest``, ``Outcome``, ``Relay`` and the ``Observer`` protocol (plain data).
- ``headers``: which headers pass each way (pure).
- ``attempt``: one try of one upstream; its verdicts (fail over? commit the stream?) are pure.
- ``forwarder``: the loop over attempts.
- ``relay``: the accepted answer's body, relayed as it arrives, with exactly one cleanup.
- ``watch``: noticing a client that hung up.
- ``response_head``: upstream answer heads parsed without the ``email`` package.
"""
from .forwarder import Forwarder
from .types import Observer, Outcome, ProxyRequest, Relay

__all__ = ["Forwarder", "Observer", "Outcome", "ProxyRequest", "Relay"]
