"""Settings: command line over environment over a TOML file of named profiles, validated once.

Credentials come from ``BINANCE_API_KEY`` with ``BINANCE_API_SECRET`` (HMAC) or ``BINANCE_PRIVATE_KEY_FILE``
(+ ``BINANCE_PRIVATE_KEY_PASSPHRASE``) for Ed25519/RSA, or from the config file. Other settings read
``BALANCE_TUI_*`` variables. Secrets are :class:`SecretStr`; a config file that holds one must be private (0600).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import platformdirs
from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from services import keystore
from services.configfile import ConfigError, read_profile
from services.endpoints import (
    MAX_RECV_WINDOW,
    PRODUCTION_REST_URL,
    PRODUCTION_STREAM_URL,
    PRODUCTION_URL,
    TESTNET_STREAM_URL,
    TESTNET_URL,
    Credentials,
)
from services.signing import HmacSigner, KeyFileError, load_private_key_file

__all__ = ["ConfigError", "Settings", "default_config_path", "default_data_dir", "load_settings"]


def default_config_path() -> Path:
    return platformdirs.user_config_path("balance-tui") / "config.toml"


def default_data_dir() -> Path:
    """Where the history (and a crash report) lives unless ``data_dir`` says otherwise."""
    return platformdirs.user_data_path("balance-tui")


class Settings(BaseSettings):
    """Everything balance-tui can be told. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="BALANCE_TUI_", extra="ignore", populate_by_name=True, hide_input_in_errors=True
    )

    api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("api_key", "BINANCE_API_KEY"))
    api_secret: SecretStr | None = Field(None, validation_alias=AliasChoices("api_secret", "BINANCE_API_SECRET"))
    private_key_file: Path | None = Field(
        None, validation_alias=AliasChoices("private_key_file", "BINANCE_PRIVATE_KEY_FILE")
    )
    private_key_passphrase: SecretStr | None = Field(
        None, validation_alias=AliasChoices("private_key_passphrase", "BINANCE_PRIVATE_KEY_PASSPHRASE")
    )
    ws_url: str | None = None
    stream_url: str | None = None
    rest_url: str | None = None  # the spot REST host, for the key's permissions (default https://api.binance.com)
    testnet: bool = False
    demo: bool = False
    demo_motion: bool = True  # the demo account's marks move and small fees are pushed (off: a still account)
    interval: float = Field(2.0, gt=0, le=300)
    stream: bool = True  # listen to the user-data stream for pushes
    marks: bool = True  # follow the mark prices of the positions held (free: no weight) for live uPnL
    # The lists and tables below are read from the environment as plain text too (NoDecode: pydantic-settings would
    # take only JSON, and say so with a traceback): see _plain_list and _plain_table.
    alerts: Annotated[list[str], NoDecode] = Field(default_factory=list)  # rules, e.g. "available:USDT<500"
    alert_builtins: Annotated[dict[str, bool], NoDecode] = Field(default_factory=dict)  # { stale = false }: one off
    notify: bool = False  # desktop notifications for alerts, where there is a desktop
    # Where alerts and the daily summary go, as apprise URLs (tgram://, discord://, ntfy://, json://, …): secrets.
    notify_urls: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    daily_summary: str | None = None  # "08:00": the daily summary at this local time, to the notify_urls
    metrics: str | None = None  # "HOST:PORT" or "PORT": Prometheus metrics served there (127.0.0.1 by default)
    history: bool = True  # keep a local record of balance changes (services/history.py)
    data_dir: Path | None = None  # where the history lives (default: the platform's data dir)
    history_days: int = Field(90, ge=1, le=3650)  # retention: older rows are pruned at start
    reconcile_interval: float = Field(60.0, ge=5, le=3600)  # polls while the stream is live
    weight_share: float = Field(0.05, gt=0, le=1)  # of the IP's weight per minute, stream live
    weight_share_polling: float = Field(0.10, gt=0, le=1)  # without the stream
    slow_above: float = Field(0.70, gt=0, le=1)  # IP usage (everyone's) past which polling slows
    recv_window: int | None = Field(None, gt=0, le=MAX_RECV_WINDOW)
    request_timeout: float = Field(10.0, gt=0, le=120)  # seconds to wait for a reply before giving up on it
    profile: str | None = None
    keymap: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    theme: str | None = None
    private: bool = False  # the dashboard starts in privacy mode (every amount masked; h toggles it)
    log_file: Path | None = None
    # What the loading noticed and a person should hear of (an unknown key in the config file): not a setting.
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return self._warnings

    @field_validator("ws_url", "stream_url")
    @classmethod
    def _websocket_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        url = urlsplit(value)
        if url.scheme not in ("ws", "wss") or not url.hostname:
            raise ValueError("must be a ws:// or wss:// URL")
        try:
            url.port  # noqa: B018 (urlsplit checks the port only when asked)
        except ValueError:
            raise ValueError(f"the port of {url.netloc} is not a number from 1 to 65535") from None
        if info.field_name == "ws_url" and url.path.strip("/") == "":
            raise ValueError(
                f"has no path: the WebSocket API lives at a path, e.g. {url.scheme}://{url.netloc}/ws-fapi/v1"
            )
        return value.rstrip("/")

    @field_validator("rest_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError("must be an http:// or https:// URL, e.g. https://api.binance.com")
        return value.rstrip("/")

    @field_validator("alerts", mode="before")
    @classmethod
    def _plain_list(cls, value: object) -> object:
        """``available:USDT<500, margin_ratio>0.8`` (commas or lines between rules) or a JSON list, from the
        environment; a list as it is from the file or the command line."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            return _json(value, "a JSON list of rules, or rules separated by commas")
        return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]

    @field_validator("notify_urls", mode="before")
    @classmethod
    def _url_list(cls, value: object) -> object:
        """URLs separated by spaces or lines, from the environment (a comma may be part of a URL)."""
        return value.split() if isinstance(value, str) else value

    @field_validator("daily_summary")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        if value is not None:
            from services.summary import parse_time_of_day

            parse_time_of_day(value)
        return value

    @field_validator("metrics")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            from services.metrics import parse_address

            parse_address(value)
        return value

    @field_validator("alert_builtins", "keymap", mode="before")
    @classmethod
    def _plain_table(cls, value: object, info: ValidationInfo) -> object:
        """``stale=off margin_call=on`` / ``refresh=f5 quit=ctrl+q`` (entries separated by spaces or semicolons) or a
        JSON object, from the environment; a table as it is from the file."""
        if not isinstance(value, str):
            return value
        example = "stale=off" if info.field_name == "alert_builtins" else "refresh=f5"
        if value.lstrip().startswith("{"):
            return _json(value, f"a JSON object, or entries like {example}")
        table: dict[str, str] = {}
        for entry in value.replace(";", " ").split():
            name, sep, setting = entry.partition("=")
            if not sep or not name or not setting:
                raise ValueError(f"{entry!r} is not NAME=VALUE: write entries like {example}")
            table[name] = setting
        return table

    @field_validator("private_key_file", "log_file", "data_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Command line (passed as init kwargs) over environment over the profile in the TOML file.
        return (init_settings, env_settings, _ProfileSource(settings_cls, _PROFILE.get()))

    # -- derived ----------------------------------------------------------------------------------------------

    @property
    def has_credentials(self) -> bool:
        return self.api_key is not None or self.api_secret is not None or self.private_key_file is not None

    @property
    def use_simulator(self) -> bool:
        """Demo mode: asked for, or nothing to connect to (no credentials, no URL)."""
        return self.demo or (not self.has_credentials and self.ws_url is None)

    def history_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else default_data_dir()

    def endpoint(self) -> str:
        if self.ws_url is not None:
            return self.ws_url
        return TESTNET_URL if self.testnet else PRODUCTION_URL

    def stream_endpoint(self) -> str:
        """The user-data stream's base URL.

        A ``--ws-url`` of one's own (a simulator, a proxy) means an exchange of one's own: its stream is taken to
        be served at the same origin, as the simulator does, unless ``--stream-url`` says otherwise.
        """
        if self.stream_url is not None:
            return self.stream_url
        if self.ws_url is not None:
            url = urlsplit(self.ws_url)
            return f"{url.scheme}://{url.netloc}"
        return TESTNET_STREAM_URL if self.testnet else PRODUCTION_STREAM_URL

    def rest_endpoint(self) -> str | None:
        """The REST host asked for the key's permissions; None where there is none (the testnet has no sapi).

        A ``--ws-url`` of one's own means an exchange of one's own, asked at the same origin unless ``--rest-url``
        says otherwise, as for the stream.
        """
        if self.rest_url is not None:
            return self.rest_url
        if self.ws_url is not None:
            url = urlsplit(self.ws_url)
            return f"{'https' if url.scheme == 'wss' else 'http'}://{url.netloc}"
        return None if self.testnet else PRODUCTION_REST_URL

    def credentials(self) -> Credentials | None:
        """The configured key and its signer, or None when no credentials are given at all."""
        if not self.has_credentials:
            return None
        if self.api_key is None:
            raise ConfigError("an API secret or private key is set but no API key: set BINANCE_API_KEY too")
        api_key = _checked("API key", self.api_key.get_secret_value())
        if self.api_secret is not None and self.private_key_file is not None:
            raise ConfigError("both an API secret and a private key file are set: keep one")
        if self.api_secret is not None:
            return Credentials(api_key, HmacSigner(_checked("API secret", self.api_secret.get_secret_value())))
        if self.private_key_file is not None:
            passphrase = self.private_key_passphrase.get_secret_value() if self.private_key_passphrase else None
            try:
                return Credentials(api_key, load_private_key_file(self.private_key_file, passphrase))
            except KeyFileError as exc:
                stored = keystore.get_secret(self.profile, "private_key_passphrase") if passphrase is None else None
                if stored is None:
                    raise ConfigError(str(exc)) from None
            try:  # the file's key is encrypted and its passphrase is in the keyring (balance-tui keys set --passphrase)
                return Credentials(api_key, load_private_key_file(self.private_key_file, stored))
            except KeyFileError as exc:
                raise ConfigError(f"{exc} (the passphrase from the keyring)") from None
        stored = keystore.get_secret(self.profile, "api_secret")  # balance-tui keys set
        if stored is not None:
            return Credentials(api_key, HmacSigner(_checked("API secret from the keyring", stored)))
        who = f" --profile {self.profile}" if self.profile else ""
        raise ConfigError(
            "an API key is set but no secret: set BINANCE_API_SECRET (HMAC) or BINANCE_PRIVATE_KEY_FILE (Ed25519/RSA), "
            f"or store it in the keyring with  balance-tui keys set{who}"
        )


def _json(text: str, what: str) -> object:
    import json

    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos}): give {what}") from None


def _checked(what: str, value: str) -> str:
    """A key or secret as Binance issues them: printable ASCII, no spaces. Checked before anything is sent;
    the value itself is never quoted."""
    if not value:
        raise ConfigError(f"the {what} is empty")
    if any(ch.isspace() for ch in value):
        raise ConfigError(f"the {what} contains whitespace (a stray space or line break from copying it?)")
    if not value.isascii() or not value.isprintable():
        raise ConfigError(f"the {what} contains characters Binance keys never have (non-ASCII or control characters)")
    return value


class _ProfileSource(PydanticBaseSettingsSource):
    """The chosen profile of the TOML config file, as the lowest-priority source."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


# pydantic-settings builds its sources itself: the profile read for this load reaches them through here.
_PROFILE: ContextVar[dict[str, Any]] = ContextVar("balance_tui_profile", default={})  # noqa: B039 (never mutated)


def load_settings(cli: dict[str, Any], *, config_path: Path | None = None) -> Settings:
    """Settings from the command line (``cli``, unset options left out), the environment and the config file."""
    env_path = os.environ.get("BALANCE_TUI_CONFIG")
    explicit = config_path or (Path(env_path) if env_path else None)
    path = (explicit or default_config_path()).expanduser()
    profile = cli.get("profile") or os.environ.get("BALANCE_TUI_PROFILE")
    warnings: list[str] = []
    known = set(Settings.model_fields)
    token = _PROFILE.set(read_profile(path, profile, known, required=explicit is not None, warnings=warnings))
    try:
        settings = Settings(**cli)
        settings.warnings.extend(warnings)
        return settings
    except ValidationError as exc:
        raise ConfigError(_describe_validation(exc)) from None
    except SettingsError as exc:  # a value of the environment pydantic-settings could not read (it says which)
        raise ConfigError(f"invalid setting: {str(exc).splitlines()[0]}") from None
    finally:
        _PROFILE.reset(token)


def _describe_validation(exc: ValidationError) -> str:
    # Only the field and the rule: pydantic's own text would quote the value, which may be a secret.
    parts = []
    for error in exc.errors(include_input=False):
        where = ".".join(str(part) for part in error["loc"]) or "settings"
        message = error["msg"].removeprefix("Value error, ")  # pydantic's prefix says nothing to a person
        parts.append(f"{where.replace('_', '-')}: {message}")
    return "invalid setting: " + "; ".join(parts)
