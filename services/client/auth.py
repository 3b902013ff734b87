"""How a request proves who sends it (PROTOCOL.md §3): nothing, the API key, or a timestamp and a signature; a
logged-on session stands for the key that logged on, so that key's requests carry only the timestamp."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from services.endpoints import Credentials
from services.signing import ParamValue, signing_text

Security = Literal["none", "api_key", "signed"]


def request_params(
    params: Mapping[str, ParamValue] | None,
    security: Security,
    creds: Credentials | None,
    *,
    now_ms: int,
    recv_window: int | None,
    session: bool,
) -> dict[str, ParamValue]:
    """The params to send: ``params`` with what ``security`` asks of ``creds`` (``session``: logged on as them)."""
    out = dict(params or {})
    if creds is None or security == "none":
        return out
    if security == "api_key":
        out["apiKey"] = creds.api_key
        return out
    out["timestamp"] = now_ms
    if recv_window is not None:
        out["recvWindow"] = recv_window
    if session:
        return out
    out["apiKey"] = creds.api_key
    out["signature"] = creds.signer.sign(signing_text(out))
    return out
