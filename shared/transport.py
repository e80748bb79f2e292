"""Opening WebSocket connections to the relay, with the product's settings and errors."""

from __future__ import annotations

import ssl
from collections.abc import Mapping

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from shared.errors import AuthError, ConfigError, NotFoundError, UnavailableError, UsageError
from shared.protocol.messages import MAX_CONTROL_MESSAGE, SUBPROTOCOL

#: Binary tunnel frames may be up to this size (the relay's default limit).
TUNNEL_MAX_SIZE = 1024 * 1024
OPEN_TIMEOUT = 10.0


def tls_context(url: str, ca_file: str | None) -> ssl.SSLContext | None:
    """Verification always on; ``ca_file`` adds a private CA to trust."""
    if not url.startswith("wss://"):
        return None
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(ca_file)
        except (OSError, ssl.SSLError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise ConfigError(f"cannot read the relay's CA file {ca_file}: {why}") from None
        # The pinned certificate may be an intermediate: trust it as an anchor.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


async def dial(
    url: str,
    *,
    tunnel: bool = False,
    headers: Mapping[str, str] | None = None,
    ca_file: str | None = None,
) -> ClientConnection:
    """Connect to a relay endpoint; translate failures into one-line errors."""
    if not url.startswith(("ws://", "wss://")):
        raise UsageError(f"relay URL {url!r} must start with ws:// or wss://")
    try:
        return await connect(
            url,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            compression=None,
            max_size=TUNNEL_MAX_SIZE if tunnel else MAX_CONTROL_MESSAGE,
            max_queue=8,
            open_timeout=OPEN_TIMEOUT,
            additional_headers=dict(headers or {}),
            ssl=tls_context(url, ca_file),
            user_agent_header="quarkpulse",
            ping_interval=20,
            ping_timeout=20,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status == 403:
            raise AuthError("the relay refused the connection (forbidden)") from None
        if status == 404:
            raise NotFoundError(f"{url} is not a Quarkpulse relay endpoint") from None
        raise UnavailableError(f"the relay answered HTTP {status}; try again later") from None
    except ssl.SSLCertVerificationError as exc:  # before ValueError: it is one too
        reason = exc.verify_message or exc.reason or str(exc)
        raise AuthError(
            f"the relay's certificate is not trusted: {reason} "
            "(use the --ca-pin or --ca-file the relay's operator gives you)"
        ) from None
    except (InvalidURI, ValueError) as exc:  # ValueError: bad port, unclosed [ in the host
        raise UsageError(f"invalid relay URL {url!r}: {exc}") from None
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        base = url.split("/v1/")[0]
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise UnavailableError(f"cannot reach the relay at {base}: {reason}") from None
