"""The few kinds of failure a caller has to tell apart, each with what it needs to act on it.

The client never lets a raw websockets, JSON or pydantic exception out: everything is one of these.
"""

from __future__ import annotations


class ExchangeError(Exception):
    """Base of every error the client raises. ``status`` and ``code`` are the exchange's when it gave them."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        if self.code is not None:
            return f"{self.message} (code {self.code})"
        return self.message


class CredentialsRejected(ExchangeError):
    """The exchange refused the key or the signature: bad key, revoked key, IP not whitelisted, bad signature.

    Retrying cannot help until a person changes something, so callers stop and say what to check.
    """


class ClockSkew(ExchangeError):
    """The request's timestamp fell outside the server's window (-1021)."""

    retryable = True


class RateLimited(ExchangeError):
    """The IP is over its request weight (429) or banned (418). Do not send anything before ``retry_at_ms``."""

    retryable = True

    def __init__(self, message: str, *, status: int, code: int | None, retry_at_ms: int, banned: bool) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_at_ms = retry_at_ms
        self.banned = banned


class ServerError(ExchangeError):
    """The exchange failed on its side (5xx, -1000, -1001, -1006, -1007, -1008): a balance read can be retried."""

    retryable = True


class NetworkError(ExchangeError):
    """The connection could not be opened, dropped, or went silent. ``retry_in`` is the backoff's advice."""

    retryable = True

    def __init__(self, message: str, *, retry_in: float = 0.0) -> None:
        super().__init__(message)
        self.retry_in = retry_in


class ProtocolError(ExchangeError):
    """The server sent something that is not what the protocol says: bad JSON, wrong shape, oversized frame.

    Retryable: a later reply may be fine, and the last good numbers stay on screen meanwhile.
    """

    retryable = True


class RequestRejected(ExchangeError):
    """Any other error reply (a bad parameter, an unknown code): shown with its code and message, not retried."""


# Codes that mean the same thing whatever the status says.
CREDENTIAL_CODES = frozenset({-2014, -2015, -1022, -2008})
SERVER_CODES = frozenset({-1000, -1001, -1006, -1007, -1008})
CLOCK_CODE = -1021
RATE_LIMIT_CODE = -1003


def because(what: str, why: object) -> str:
    """``what: why`` as one clean sentence: no ``: :`` when ``why`` is empty or brings its own colon."""
    reason = str(why).strip().lstrip(":").strip() if why is not None else ""
    what = what.rstrip().rstrip(":")
    return f"{what}: {reason}" if reason else what
