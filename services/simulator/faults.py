"""Switchable misbehaviour of the simulated exchange, and how a spoiled reply is made."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Faults:
    """Switchable misbehaviour. Counters (``*_next``) apply to that many coming requests, then wear off."""

    drop_next: int = 0  # abort the TCP connection on receiving a request, no reply, no close frame
    close_next: int = 0  # close the connection with ``close_code`` on receiving a request
    close_code: int = 1001
    silent: bool = False  # read requests, never answer
    malformed_next: int = 0  # answer with text that is not JSON
    wrong_shape_next: int = 0  # answer valid JSON of the wrong shape
    bad_amount_next: int = 0  # answer with an amount that is not a number
    oversized_next: int = 0  # answer with a frame of ``oversized_bytes``
    oversized_bytes: int = 9 * 1024 * 1024
    shutdown_notice_next: int = 0  # send a serverShutdown event before the reply
    clock_skew_ms: int = 0  # the server's clock runs this far ahead of the machine's
    reported_skew_ms: int = 0  # the time the server *says* (session.status, /fapi/v1/time) is off by this much
    # from the time it checks timestamps by: a client that trusts it stays skewed, and can only report it
    retry_after_in_errors: bool = True  # 429/418 replies carry error.data.retryAfter [open: spot does]
    close_on_ban: bool = True  # a 418 also closes the socket [open: spot does]
    logon_skew_next: int = 0  # refuse the next N session.logon with -1021, as a clock not yet measured would get
    # A poor link, as seen in use (a train, a hotspot): each connection takes so many requests, then drops, or goes
    # silent; or every so many replies, across connections, come out malformed. 0: off.
    drop_after: int = 0  # abort a connection on the request after this many on it
    silent_after: int = 0  # answer this many requests on a connection, then nothing more on it
    malformed_every: int = 0  # every Nth reply is text that is not JSON
    replies: int = 0  # replies sent, for malformed_every
    stream_mute: bool = False
    marks_stop: bool = False  # /market connections stay open, and no mark price is sent  # user-data streams stay open and deliver nothing, while balances still change


def spoil_amount(result: Any) -> Any:
    if isinstance(result, list) and result and isinstance(result[0], dict):
        return [{**result[0], "balance": "12O.5"}, *result[1:]]
    if isinstance(result, dict) and result.get("assets"):
        assets = result["assets"]
        return {**result, "assets": [{**assets[0], "walletBalance": "12O.5"}, *assets[1:]]}
    return result


def spoiled_reply(faults: Faults, reply: dict[str, Any], json_default: Any) -> str:
    """The reply's text, spoiled as the faults switched on say (each counter wears off as it is used)."""
    faults.replies += 1
    every = faults.malformed_every and faults.replies % faults.malformed_every == 0
    if faults.malformed_next or every:
        faults.malformed_next -= 0 if every else 1
        return '{"id": ' + json.dumps(reply["id"]) + ', "status": 200, "result": [{"asset": "USDT", "bal'
    if faults.wrong_shape_next:
        faults.wrong_shape_next -= 1
        reply = {**reply, "result": {"unexpected": True}}
    if faults.bad_amount_next and isinstance(reply.get("result"), list | dict):
        faults.bad_amount_next -= 1
        reply = {**reply, "result": spoil_amount(reply["result"])}
    text = json.dumps(reply, separators=(",", ":"), default=json_default)
    if faults.oversized_next:
        faults.oversized_next -= 1
        padding = "x" * max(0, faults.oversized_bytes - len(text))
        text = text[:-1] + ',"padding":"' + padding + '"}'
    return text
