"""The exact shapes every exchange model is built from: amounts as Decimals from the exchange's strings, event times
as ints from ints or strings, and the immutable, unknown-fields-ignored base model."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer


def decimal_text(value: Decimal) -> str:
    """A Decimal as plain positional text (never scientific notation): the exchange's own form, but never a negative
    zero (``-0.00000000`` is what a short at its entry price computes to, and reads as a loss)."""
    return format(value if value else abs(value), "f")


_EXACT_JSON = json.JSONDecoder(parse_float=Decimal)  # one decoder: json.loads(parse_float=...) makes one a call


def loads_exact(frame: str | bytes) -> Any:
    """A frame's JSON with every number that has a fraction as an exact Decimal (raises ValueError if not JSON)."""
    return _EXACT_JSON.decode(frame if isinstance(frame, str) else frame.decode())


def _parse_amount(value: object) -> Decimal:
    # Only exact inputs: the exchange's strings, ints, or Decimals. A float already lost digits, and a bool is a bug.
    # The exchange's string first, on the type itself: every amount of every reply comes this way (Decimal takes
    # the surrounding whitespace a string may carry).
    kind = type(value)
    if kind is str or kind is Decimal or kind is int or (kind is not bool and isinstance(value, str | int | Decimal)):
        try:
            amount = Decimal(value)  # type: ignore[arg-type]
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
        if not amount.is_finite():
            raise ValueError(f"not a finite decimal number: {value!r}")
        return amount
    raise ValueError(f"an amount must be a decimal string, not {kind.__name__}")


Amount = Annotated[
    Decimal,
    BeforeValidator(_parse_amount),
    PlainSerializer(decimal_text, return_type=str, when_used="json"),
]


class ExchangeModel(BaseModel):
    """Base of the exchange's shapes: immutable, unknown fields ignored, fields named as the exchange names them."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, serialize_by_alias=True)


def _event_time(value: object) -> int:
    # ``E`` is an int on most events and a string on ``listenKeyExpired`` (PROTOCOL.md §6): accept both.
    if isinstance(value, bool):
        raise ValueError("an event time must be a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str | Decimal) and str(value).strip().isdigit():
        return int(str(value).strip())
    raise ValueError(f"not an event time: {value!r}")


EventTime = Annotated[int, BeforeValidator(_event_time)]
