"""Connections that start with a PROXY protocol header from a trusted proxy.

With ``limits.proxy_protocol`` on, a TCP peer listed in ``limits.trusted_proxies``
must open with a PROXY v1 or v2 header; the client address it names replaces the
peer's for everything the gate does (see :meth:`relay.transport.gate.Gate.client`).
Other peers are served as usual: a header from them is no HTTP and gets a 400.
The header precedes TLS, so this works on a plain listener behind a proxy only.
"""

from __future__ import annotations

import logging

from websockets.asyncio.server import ServerConnection

from relay.core.forwarded import ClientAddresses, parse_address
from relay.core.proxy_header import ProxyHeaderError, parse_proxy_header

log = logging.getLogger("qp.relay")


def proxied_connections(addresses: ClientAddresses) -> type[ServerConnection]:
    """A ServerConnection class that reads the header from ``addresses``' trusted
    proxies before handing the rest of the bytes to the WebSocket protocol."""

    class ProxiedConnection(ServerConnection):
        #: The client address the proxy's header named; None until read, or when
        #: the header names none (the proxy's own health check).
        proxied: str | None = None
        _state = "new"  # new, then header (from a trusted proxy) or plain
        _pending = b""  # bytes of an incomplete header

        def data_received(self, data: bytes) -> None:
            if self._state == "new":
                self._state = "header" if self._from_proxy() else "plain"
            if self._state == "plain":
                super().data_received(data)
                return
            buffered = self._pending + data
            try:
                header = parse_proxy_header(buffered)
            except ProxyHeaderError as exc:
                log.warning("dropping a connection from proxy %s: %s", self._peer(), exc)
                self.transport.abort()
                return
            if header is None:
                self._pending = buffered
                return
            self.proxied = header.source
            self._pending = b""
            self._state = "plain"
            if len(buffered) > header.length:
                super().data_received(buffered[header.length :])

        def _peer(self) -> str:
            addr = self.remote_address
            return str(addr[0]) if addr else "?"

        def _from_proxy(self) -> bool:
            parsed = parse_address(self._peer())
            return parsed is not None and addresses.is_trusted(parsed)

    return ProxiedConnection
