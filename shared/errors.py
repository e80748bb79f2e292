"""The product's exceptions.

Every error the programs raise on purpose derives from :class:`QPError`, so the
command-line front ends can print one line for it and exit non-zero::

    QPError
    ├── UsageError            the user asked for something malformed
    │   └── BadRequestError       a console call's parameter is malformed (names it)
    ├── ConfigError           a config or data directory is missing or broken
    ├── NotFoundError         unknown *or forbidden* (callers cannot tell them apart)
    │   └── OutOfScopeError       forbidden: exists, outside the caller's scope (audited)
    ├── AuthError             credentials refused
    ├── ConflictError         the request clashes with what exists (duplicate name…)
    ├── UnavailableError      the peer is offline, the relay is down, a timeout
    ├── StorageError          the database refused a write
    └── ProtocolError         a wire message broke the protocol
        ├── LocalProtocolError    we misused the protocol (a bug on our side)
        └── RemoteProtocolError   the peer misbehaved

Third-party exceptions are translated once, at the boundary, with ``raise … from``.
"""

from __future__ import annotations

from shared.protocol.close_codes import POLICY_VIOLATION


class QPError(Exception):
    """Root of every deliberate Quarkpulse error; ``str()`` is the one-line message."""

    #: Stable machine-readable code carried in wire ``error`` messages.
    code = "error"


class UsageError(QPError):
    code = "usage"


class BadRequestError(UsageError):
    """A console call's parameter is malformed or out of range; the message names it."""

    code = "bad_request"


class ConfigError(QPError):
    code = "config"


class NotFoundError(QPError):
    code = "not_found"


class OutOfScopeError(NotFoundError):
    """Something that exists but lies outside the caller's scope. It travels with
    the very code and message of an unknown one; only the relay's audit log tells
    them apart (``what`` names the kind of thing, ``subject`` the reference tried)."""

    def __init__(self, message: str, what: str, subject: str) -> None:
        super().__init__(message)
        self.what = what
        self.subject = subject


class AuthError(QPError):
    code = "auth"


class ConflictError(QPError):
    code = "conflict"


class UnavailableError(QPError):
    code = "unavailable"


class StorageError(QPError):
    code = "storage"


class ProtocolError(QPError):
    code = "protocol"


class LocalProtocolError(ProtocolError):
    pass


class RemoteProtocolError(ProtocolError):
    pass


_BY_CODE: dict[str, type[QPError]] = {
    cls.code: cls
    for cls in (
        UsageError,
        BadRequestError,
        ConfigError,
        NotFoundError,
        AuthError,
        ConflictError,
        UnavailableError,
        StorageError,
        ProtocolError,
    )
}


def error_from_code(code: str, message: str) -> QPError:
    """Rebuild the exception a peer reported in an ``error`` message."""
    return _BY_CODE.get(code, QPError)(message)


def error_from_close(code: int | None, reason: str) -> QPError:
    """The error the relay meant by closing a link with ``code`` and ``reason``.

    Its reason becomes the one-line message. A policy close is a refusal
    (:class:`AuthError`); anything else means try again later. ``code`` is None
    when no close frame came at all.
    """
    text = "".join(ch for ch in reason if ch.isprintable()).strip()
    if not text:
        text = (
            "the link to the relay broke"
            if code is None
            else f"the relay closed the link (code {code})"
        )
    return (AuthError if code == POLICY_VIOLATION else UnavailableError)(text)
