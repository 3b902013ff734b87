"""``balance-tui sim``: the exchange simulator on its own, with its fault console."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from services.signing import KeyFileError, load_private_key_file
from tui.cli.common import EXIT_CONFIG, EXIT_OK, CommandError, Writer

# -- sim ----------------------------------------------------------------------------------------------------------


async def run_sim(args: argparse.Namespace, out: Writer) -> int:
    from services.simulator import ExchangeSimulator, SimulatedAccount

    simulator = ExchangeSimulator(
        host=args.host,
        port=args.port,
        account=SimulatedAccount(multi_assets=args.multi_assets, positions=not args.still),
        weight_limit=args.weight_limit,
        v1_weight=args.v1_weight,
    )
    for spec in args.hmac:
        api_key, _, secret = spec.partition("=")
        if not api_key or not secret:
            raise CommandError("--hmac takes API_KEY=SECRET", EXIT_CONFIG)
        simulator.add_hmac_key(api_key, secret)
    for spec in args.key:
        api_key, _, file = spec.partition("=")
        if not api_key or not file:
            raise CommandError("--key takes API_KEY=PEM_FILE", EXIT_CONFIG)
        simulator.add_public_key(_public_key(Path(file)), api_key)
    demo_key, demo_secret = simulator.add_hmac_key()
    await simulator.start()
    if not args.still:
        simulator.start_ticker(1.0, push_every=0 if args.no_pushes else 5)
    out.write(
        f"exchange simulator listening on {simulator.ws_url}\n"
        f"  user-data stream base: {simulator.stream_url}   server time: {simulator.time_url}\n"
        f"  demo HMAC key (simulator only, not a real credential):\n"
        f"    BINANCE_API_KEY={demo_key}\n    BINANCE_API_SECRET={demo_secret}\n"
    )
    if sys.stdin is not None and sys.stdin.isatty():
        out.write("  type help for the fault console (drop, silent on, ban 120, revoke, expire-keys, push, …)\n")
    out.flush()
    if args.port_file is not None:
        args.port_file.write_text(f"{simulator.port}\n")
    try:
        await _console(simulator, out)
        await asyncio.Event().wait()  # stdin closed: keep serving until interrupted
    finally:
        await simulator.stop()
    return EXIT_OK


async def _console(simulator: Any, out: Writer) -> None:
    """Read fault commands from stdin, one a line, until it closes (without stdin: return at once)."""
    if sys.stdin is None:
        return
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        reply = await simulator.command(line)
        if reply:
            out.write(reply + "\n")
            out.flush()


def _public_key(path: Path) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}", EXIT_CONFIG) from None
    if b"PRIVATE KEY" in pem:
        try:
            return load_private_key_file(path).public_key()
        except KeyFileError as exc:
            raise CommandError(str(exc), EXIT_CONFIG) from None
    try:
        return load_pem_public_key(pem)
    except ValueError:
        raise CommandError(f"{path}: not a PEM public key", EXIT_CONFIG) from None
