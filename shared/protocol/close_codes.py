"""WebSocket close codes (RFC 6455, section 7.4.1) as both ends of a link use them."""

from __future__ import annotations

NORMAL_CLOSURE = 1000  # done: a session or an enrollment ended as it should
GOING_AWAY = 1001  # the relay is shutting down
PROTOCOL_ERROR = 1002  # the peer broke the protocol
UNSUPPORTED_DATA = 1003  # a text frame on a data tunnel
POLICY_VIOLATION = 1008  # refused: authentication, authorisation, throttle
INTERNAL_ERROR = 1011  # our own failure (logged; the peer gets a fixed reason)
TRY_AGAIN_LATER = 1013  # busy: too many connections waiting to authenticate
