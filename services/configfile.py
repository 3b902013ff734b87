"""The config file: a TOML file of named profiles, read as one profile's settings (its top-level keys, then the
profile's), refused when it holds a secret and others can read it, and every key it holds that is not a setting
said, with the nearest one. What the settings are and how they are validated is :mod:`services.settings`'s."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from services.files import NotPrivate, require_private

SECRET_FIELDS = ("api_secret", "private_key_passphrase", "notify_urls")  # notification URLs hold tokens


class ConfigError(Exception):
    """A configuration problem, said in one line a person can act on. Never quotes a secret."""


def read_profile(
    path: Path, profile: str | None, known: Iterable[str], *, required: bool, warnings: list[str] | None = None
) -> dict[str, Any]:
    """The settings of ``profile`` in the TOML file at ``path``: its top-level keys, then the profile's."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file not found: {path}") from None
        if profile is not None:
            raise ConfigError(f"profile {profile!r} asked for, but there is no config file at {path}") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"{path} is not a config file balance-tui can read: it nests too deeply") from None
    profiles = document.pop("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(f"{path}: 'profiles' must be a table of [profiles.NAME] sections")
    # A secret anywhere in the file makes the file a secret, whichever profile is used today.
    if any(section.get(field) for section in (document, *profiles.values()) for field in SECRET_FIELDS):
        try:
            require_private(path)
        except NotPrivate as exc:
            raise ConfigError(str(exc)) from None
    name = profile or document.pop("profile", None)
    document.pop("profile", None)
    data = dict(document)
    if name is not None:
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"unknown profile {name!r} in {path} (profiles: {known})")
        data.update(profiles[name])
    if warnings is not None:
        sections = [("", document), *((f"profiles.{n}.", p) for n, p in profiles.items())]
        warnings.extend(_unknown_keys(path, sections, known))
    return data


#: Keys the config file may hold besides the settings themselves.
FILE_ONLY_KEYS = frozenset({"profile", "profiles"})


def _unknown_keys(path: Path, sections: list[tuple[str, dict[str, Any]]], settings: Iterable[str]) -> list[str]:
    """One warning per key the file holds that balance-tui does not know, naming the nearest known key."""
    known = sorted(set(settings) | FILE_ONLY_KEYS)
    warnings = []
    for prefix, section in sections:
        for key in section:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
            warnings.append(f"{path}: unknown setting {prefix + key!r} ignored{hint}")
    return warnings
