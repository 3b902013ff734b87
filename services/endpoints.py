"""Where the exchange is and who is asking: its URLs, the limits of its requests, and an account's credentials.

Settings, the client and the wiring read these; none of them need import another for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.signing import Signer

PRODUCTION_URL = "wss://ws-fapi.binance.com/ws-fapi/v1"
TESTNET_URL = "wss://testnet.binancefuture.com/ws-fapi/v1"
PRODUCTION_STREAM_URL = "wss://fstream.binance.com"
#: The spot REST host: the key's permissions live there (PROTOCOL.md §10), whatever the key is for.
PRODUCTION_REST_URL = "https://api.binance.com"
#: [open] testnet stream host: the SDK's choice, with the documented /private paths (PROTOCOL.md §1).
TESTNET_STREAM_URL = "wss://fstream.binancefuture.com"
#: The largest recvWindow the exchange accepts (PROTOCOL.md §3).
MAX_RECV_WINDOW = 60_000


@dataclass(frozen=True)
class Credentials:
    """An API key and the signer for its secret or private key. The repr shows neither."""

    api_key: str = field(repr=False)
    signer: Signer = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(api_key={mask_key(self.api_key)}, kind={self.signer.kind})"


def mask_key(api_key: str) -> str:
    """An API key cut to its first and last four characters: enough to tell keys apart in a log."""
    return f"{api_key[:4]}…{api_key[-4:]}" if len(api_key) > 12 else "****"
