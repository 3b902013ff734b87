"""What a reply says: a result with its own facts (weight reading, round trip), or one of the typed errors.

Pure: no socket. The connection reads frames; this reads what is in them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from services.errors import (
    CLOCK_CODE,
    CREDENTIAL_CODES,
    RATE_LIMIT_CODE,
    SERVER_CODES,
    ClockSkew,
    CredentialsRejected,
    ExchangeError,
    ProtocolError,
    RateLimited,
    RequestRejected,
    ServerError,
    because,
)
from services.models import RateLimit, WeightReading
from services.weight import window_end_ms

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: The id at the start of a reply that is not JSON (a frame cut short): which request it answered.
_FRAME_ID = re.compile(r'\s*\{\s*"id"\s*:\s*(-?\d+|"[^"]*")\s*,')
_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")
BAN_WITHOUT_HINT_MS = 120_000  # a ban that does not say until when lasts at least two minutes


@dataclass(frozen=True)
class Reply:
    """A successful reply: its ``result`` (JSON, numbers as Decimal) and the weight reading it carried.

    What a request learned travels with its reply: two requests in flight can never overwrite each other's reading.
    """

    method: str
    result: Any
    weight: WeightReading | None
    rtt_ms: int


@dataclass(frozen=True)
class Fetched(Generic[T]):
    """A validated result with the facts of the reply that carried it."""

    value: T
    weight: WeightReading | None
    rtt_ms: int
    method: str


def request_weight(message: Mapping[str, Any]) -> RateLimit | None:
    """The REQUEST_WEIGHT entry of a reply's ``rateLimits`` (None when the reply carries none)."""
    limits = message.get("rateLimits")
    if not isinstance(limits, list):
        return None
    for entry in limits:
        if isinstance(entry, dict) and entry.get("rateLimitType") == "REQUEST_WEIGHT":
            try:
                return RateLimit.model_validate(entry)
            except ValidationError:
                return None
    return None


def frame_id(frame: str | bytes) -> str | None:
    """The id a frame that is not JSON begins with, if it begins as a reply does (``{"id": 7, ...``)."""
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    found = _FRAME_ID.match(text)
    return found.group(1).strip('"') if found else None


def classify_error(message: Mapping[str, Any], *, method: str, now_ms: int) -> ExchangeError:
    """The typed error an error reply means; a rate limit carries when to come back (``now_ms``: the exchange's)."""
    status = message.get("status")
    error = message.get("error")
    if not isinstance(status, int) or not isinstance(error, dict):
        return ProtocolError(f"reply to {method} has neither a result nor an error")
    code = error.get("code") if isinstance(error.get("code"), int) else None
    text = str(error.get("msg", "")) or f"status {status}"
    if status in (418, 429) or code == RATE_LIMIT_CODE:
        data = error.get("data")
        retry_at = retry_at_ms(data if isinstance(data, dict) else {}, text)
        if retry_at is None:
            # No hint given: a 429 lasts to the end of the fixed window; a ban at least two minutes.
            retry_at = window_end_ms(now_ms) if status != 418 else now_ms + BAN_WITHOUT_HINT_MS
        return RateLimited(text, status=status, code=code, retry_at_ms=retry_at, banned=status == 418)
    if status == 401 or code in CREDENTIAL_CODES:
        return CredentialsRejected(text, status=status, code=code)
    if code == CLOCK_CODE:
        return ClockSkew(text, status=status, code=code)
    if status >= 500 or code in SERVER_CODES:
        return ServerError(text, status=status, code=code)
    if status == 403:
        return RequestRejected(because("blocked by the exchange's firewall", text), status=status, code=code)
    return RequestRejected(because(f"{method} rejected", text), status=status, code=code)


def refused_handshake(status: int, headers: Mapping[str, str], now_ms: int) -> RateLimited | None:
    """A handshake the exchange refused with 429 or 418: until when (its Retry-After, else a minute)."""
    if status not in (418, 429):
        return None
    retry_after = headers.get("Retry-After", "")
    seconds = int(retry_after) if retry_after.isdigit() else 60
    text = f"the exchange refused the connection ({status})"
    return RateLimited(
        text, status=status, code=RATE_LIMIT_CODE, retry_at_ms=now_ms + seconds * 1000, banned=status == 418
    )


def retry_at_ms(data: Mapping[str, Any], text: str) -> int | None:
    """When a 429/418 says to come back: ``error.data.retryAfter`` if sent, else the time in the message."""
    retry_after = data.get("retryAfter")
    if isinstance(retry_after, int) and retry_after > 0:
        return retry_after
    match = _BANNED_UNTIL.search(text)
    return int(match.group(1)) if match else None


# -- results ------------------------------------------------------------------------------------------------------


@functools.cache
def _list_of(model: type[M]) -> TypeAdapter[list[M]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def validated_list(model: type[M], result: Any, method: str, what: str) -> list[M]:
    """The rows of a list reply, validated in one call (a row at a time was one call into pydantic-core a row)."""
    if not isinstance(result, list):
        raise ProtocolError(f"{method}: expected a list of {what}, got {type(result).__name__}")
    try:
        return _list_of(model).validate_python(result)
    except ValidationError as exc:
        raise ProtocolError(f"{method}: unexpected reply: {first_error(exc)}") from None


def validated(model: type[M], result: Any, method: str) -> M:
    try:
        return model.model_validate(result)
    except ValidationError as exc:
        raise ProtocolError(f"{method}: unexpected reply: {first_error(exc)}") from None


def as_dict(result: Any, method: str) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise ProtocolError(f"{method}: expected an object, got {type(result).__name__}")
    return result


def listen_key(result: Any, method: str) -> str:
    key = as_dict(result, method).get("listenKey")
    if not isinstance(key, str) or not key:
        raise ProtocolError(f"{method}: no listenKey in the reply")
    return key


def first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}"
