"""``balance-tui keys``: a profile's secret in the operating system's keyring — set (from a prompt without echo, or
stdin when it is not a terminal; never from the command line), delete, list (names only)."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from services import keystore
from tui import exits
from tui.cli.common import EXIT_CONFIG, EXIT_OK, CommandError, Writer


def run_keys(args: argparse.Namespace, out: Writer, stdin: TextIO | None = None) -> int:
    stdin = stdin if stdin is not None else sys.stdin
    profile: str | None = args.profile
    name = profile or keystore.DEFAULT_PROFILE
    kind: keystore.SecretKind = "private_key_passphrase" if args.passphrase else "api_secret"
    what = "the PEM passphrase" if args.passphrase else "the API secret"
    try:
        if args.action == "list":
            for stored in keystore.list_profiles():
                out.write(stored + "\n")
            return EXIT_OK
        if args.action == "delete":
            count = keystore.delete_secrets(profile)
            out.write(f"deleted {count} secret(s) of profile {name!r} from the keyring\n")
            return EXIT_OK
        secret = _read_secret(what, name, stdin)
        keystore.set_secret(profile, kind, secret)
    except keystore.KeyringUnavailable as exc:
        raise CommandError(str(exc), exits.KEYRING) from None
    out.write(f"stored {what} of profile {name!r} in the keyring\n")
    return EXIT_OK


def _read_secret(what: str, profile: str, stdin: TextIO) -> str:
    prompt = f"{what} for profile {profile!r} (not echoed): "
    secret = (getpass.getpass(prompt) if stdin.isatty() else stdin.readline()).strip()
    if not secret:
        raise CommandError(f"no secret given: type {what} at the prompt, or pipe it on stdin", EXIT_CONFIG)
    return secret
