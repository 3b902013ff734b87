"""Request signing for the WebSocket API: HMAC-SHA256, Ed25519 and RSA over the sorted request params.

The text signed is every param but ``signature``, sorted by name, joined as ``name=value`` with ``&``
(PROTOCOL.md §3). Keys are held privately and never appear in a repr or an error message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from services.files import NotPrivate, require_private

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

KeyKind = Literal["hmac", "ed25519", "rsa"]
ParamValue = str | int | bool


class KeyFileError(ValueError):
    """A private key file could not be read or is not a usable key. The message never quotes the file's contents."""


def param_text(value: ParamValue) -> str:
    """A param's literal text as the exchange reads it: booleans as ``true``/``false``, ints in decimal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def signing_text(params: Mapping[str, ParamValue]) -> str:
    """The text to sign: every param except ``signature``, sorted by name, as ``name=value`` joined by ``&``."""
    return "&".join(f"{name}={param_text(params[name])}" for name in sorted(params) if name != "signature")


class Signer(Protocol):
    """Something that signs request text for one API key."""

    @property
    def kind(self) -> KeyKind: ...

    def sign(self, text: str) -> str: ...


class HmacSigner:
    """HMAC-SHA256 with the API secret; lowercase hex."""

    kind: KeyKind = "hmac"

    def __init__(self, secret: str) -> None:
        self.__secret = secret.encode()

    def sign(self, text: str) -> str:
        return hmac.new(self.__secret, text.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "HmacSigner(secret=**********)"


class Ed25519Signer:
    """Ed25519 (RFC 8032) with a private key; base64. Ed25519 keys may also log a session on."""

    kind: KeyKind = "ed25519"

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self.__key = key

    def sign(self, text: str) -> str:
        return base64.b64encode(self.__key.sign(text.encode())).decode()

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self.__key.public_key()

    def __repr__(self) -> str:
        return "Ed25519Signer(private_key=**********)"


class RsaSigner:
    """RSASSA-PKCS1-v1_5 with SHA-256; base64."""

    kind: KeyKind = "rsa"

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.__key = key

    def sign(self, text: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        return base64.b64encode(self.__key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()

    def public_key(self) -> rsa.RSAPublicKey:
        return self.__key.public_key()

    def __repr__(self) -> str:
        return "RsaSigner(private_key=**********)"


def load_private_key(pem: bytes, passphrase: str | None = None) -> Ed25519Signer | RsaSigner:
    """A signer for a PEM private key (PKCS#8 or traditional), encrypted or not."""
    # cryptography (≈ 10 MB resident) is loaded only when a key file is used: an HMAC key does not need it.
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    password = passphrase.encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except TypeError as exc:
        # cryptography says TypeError both for "encrypted, no password given" and "password given, not encrypted".
        if password is None:
            raise KeyFileError("the private key is encrypted: give its passphrase") from None
        raise KeyFileError("a passphrase was given but the private key is not encrypted") from exc
    except (ValueError, UnsupportedAlgorithm):
        # Also raised for a wrong passphrase; the library's message may quote key material, so it is not kept.
        raise KeyFileError("not a PEM private key, or the passphrase is wrong") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return Ed25519Signer(key)
    if isinstance(key, rsa.RSAPrivateKey):
        return RsaSigner(key)
    raise KeyFileError(f"unsupported key type {type(key).__name__}: use an Ed25519 or RSA key")


def load_private_key_file(path: Path, passphrase: str | None = None) -> Ed25519Signer | RsaSigner:
    """A signer for the PEM private key in ``path``; refused, as ssh does, if group or others can read it."""
    try:
        pem = path.read_bytes()
        require_private(path, "is a private key")
    except OSError as exc:
        raise KeyFileError(f"cannot read private key file {path}: {exc.strerror or exc}") from None
    except NotPrivate as exc:
        raise KeyFileError(str(exc)) from None
    try:
        return load_private_key(pem, passphrase)
    except KeyFileError as exc:
        raise KeyFileError(f"{path}: {exc}") from None


def verify(public_key: ed25519.Ed25519PublicKey | rsa.RSAPublicKey, text: str, signature: str) -> bool:
    """Whether ``signature`` (base64) is ``public_key``'s signature of ``text``. Used by the simulator."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ed25519, padding

    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return False
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(raw, text.encode())
        else:
            public_key.verify(raw, text.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def verify_hmac(secret: str, text: str, signature: str) -> bool:
    """Whether ``signature`` is the HMAC-SHA256 hex of ``text`` under ``secret``, compared in constant time."""
    expected = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.lower())
