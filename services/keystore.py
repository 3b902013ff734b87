"""Secrets in the operating system's keyring (``keyring``: Secret Service, macOS Keychain, Windows Credential
Locker), one per profile: the API secret of an HMAC key, or the passphrase of a PEM private key.

A profile whose secret is not in the config file or the environment finds it here. Keyrings cannot list what they
hold, so the names of the profiles stored are kept beside them (an entry of their own, names only). No backend (a
headless server without Secret Service) is one :class:`KeyringUnavailable` line naming the alternatives.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Literal

SERVICE = "balance-tui"
INDEX = "__profiles__"  # the entry that lists the profiles stored (names only, never a secret)
DEFAULT_PROFILE = "default"  # the name a secret is stored under when no profile is given

SecretKind = Literal["api_secret", "private_key_passphrase"]
KINDS: tuple[SecretKind, ...] = ("api_secret", "private_key_passphrase")

ALTERNATIVES = (
    "keep the secret in the environment (BINANCE_API_SECRET / BINANCE_PRIVATE_KEY_PASSPHRASE) or in the config file, "
    "readable by you alone (chmod 600)"
)


class KeyringUnavailable(Exception):
    """There is no usable keyring on this machine, or it refused: said in one line, with the alternatives."""


def _username(profile: str | None, kind: SecretKind) -> str:
    return f"{profile or DEFAULT_PROFILE}:{kind}"


def _call(what: str, action: object) -> object:
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    try:
        return action(keyring)  # type: ignore[operator]
    except NoKeyringError:
        raise KeyringUnavailable(f"no keyring on this machine to {what}: {ALTERNATIVES}") from None
    except KeyringError as exc:
        raise KeyringUnavailable(f"the keyring refused to {what} ({type(exc).__name__}): {ALTERNATIVES}") from None
    except RuntimeError as exc:  # a backend that cannot start (no D-Bus session)
        raise KeyringUnavailable(f"the keyring cannot be used to {what} ({exc}): {ALTERNATIVES}") from None


def get_secret(profile: str | None, kind: SecretKind) -> str | None:
    """The stored secret of ``profile`` (None when none is stored, or there is no keyring at all)."""
    try:
        value = _call("read a secret", lambda k: k.get_password(SERVICE, _username(profile, kind)))
    except KeyringUnavailable:
        return None
    return value if isinstance(value, str) and value else None


def set_secret(profile: str | None, kind: SecretKind, secret: str) -> None:
    _call("store the secret", lambda k: k.set_password(SERVICE, _username(profile, kind), secret))
    names = set(list_profiles())
    names.add(profile or DEFAULT_PROFILE)
    _call("store the secret", lambda k: k.set_password(SERVICE, INDEX, json.dumps(sorted(names))))


def delete_secrets(profile: str | None) -> int:
    """Delete every secret stored for ``profile``; returns how many there were."""
    from keyring.errors import PasswordDeleteError

    deleted = 0
    for kind in KINDS:

        def delete(k: object, kind: SecretKind = kind) -> bool:
            try:
                k.delete_password(SERVICE, _username(profile, kind))  # type: ignore[attr-defined]
            except PasswordDeleteError:
                return False
            return True

        deleted += bool(_call("delete the secret", delete))
    names = set(list_profiles()) - {profile or DEFAULT_PROFILE}
    _call("delete the secret", lambda k: k.set_password(SERVICE, INDEX, json.dumps(sorted(names))))
    return deleted


def list_profiles() -> list[str]:
    """The profiles with a secret stored, by name."""
    raw = _call("list the profiles", lambda k: k.get_password(SERVICE, INDEX))
    try:
        names = json.loads(raw, parse_float=Decimal) if isinstance(raw, str) else []
    except ValueError:
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
