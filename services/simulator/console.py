"""The fault console: commands typed into ``balance-tui sim`` switch faults on and off while clients are connected."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from services.simulator.account import SimulatedAccount
from services.simulator.auth import KeyRing
from services.simulator.core import Venue
from services.simulator.faults import Faults
from services.simulator.market import MarketHub
from services.simulator.userdata import UserDataHub
from services.simulator.weights import IpWeight


class Exchange(Protocol):
    """What the console acts on: the exchange's parts (the simulator's server has them)."""

    venue: Venue
    ip: IpWeight
    keyring: KeyRing
    user_data: UserDataHub
    market: MarketHub

    @property
    def faults(self) -> Faults: ...

    @property
    def account(self) -> SimulatedAccount: ...

    async def drop_connections(self, code: int | None = None) -> None: ...


async def command(sim: Exchange, line: str) -> str:
    """Apply one console command (``help`` lists them); returns what to tell the person who typed it."""
    words = line.split()
    if not words:
        return ""
    name, args = words[0].lower(), words[1:]
    faults = sim.faults
    ip, market, user_data = sim.ip, sim.market, sim.user_data

    def count() -> int:
        return int(args[0]) if args else 1

    def switch() -> bool:
        return switch_of(args)

    try:
        if name == "help":
            return CONSOLE_HELP
        if name in ("drop", "close", "malformed", "wrong-shape", "bad-amount", "oversized", "shutdown"):
            attribute = {
                "drop": "drop_next", "close": "close_next", "malformed": "malformed_next",
                "wrong-shape": "wrong_shape_next", "bad-amount": "bad_amount_next",
                "oversized": "oversized_next", "shutdown": "shutdown_notice_next",
            }[name]  # fmt: skip
            setattr(faults, attribute, count())
            return f"{name}: the next {count()} request(s)"
        if name in ("drop-after", "silent-after", "malformed-every"):
            attribute = name.replace("-", "_")
            setattr(faults, attribute, int(args[0]) if args else 0)
            return f"{name} {getattr(faults, attribute)} (0: off)"
        if name == "silent":
            faults.silent = switch()
            return f"silent {'on' if faults.silent else 'off'}"
        if name == "marks":
            faults.marks_stop = bool(args) and args[0].lower() in ("stop", "off")
            return f"mark prices {'stopped' if faults.marks_stop else 'flowing'}"
        if name == "mark":
            symbol = args[0].upper()
            await market.move_marks({symbol: Decimal(args[1])})
            return f"mark {symbol} {args[1]}"
        if name == "drop-market":
            return f"{market.drop()} /market connection(s) dropped"
        if name == "position":
            symbol, side = args[0].upper(), args[1].upper()
            await user_data.change_position(symbol, side, args[2], args[3] if len(args) > 3 else "0")
            return f"position {symbol} {side} {args[2]}"
        if name == "fill":  # fill SYMBOL SIDE AMOUNT PRICE [REALIZED [COMMISSION [ASSET]]]
            symbol, side = args[0].upper(), args[1].upper()
            realized = args[4] if len(args) > 4 else "0"
            fee = args[5] if len(args) > 5 else "0"
            fee_asset = args[6].upper() if len(args) > 6 else None
            await user_data.fill(symbol, side, args[2], args[3], realized=realized, commission=fee,
                                 commission_asset=fee_asset)  # fmt: skip
            return f"filled {symbol} {side} to {args[2]} at {args[3]}: realized {realized}, commission {fee}"
        if name == "funding":  # funding SYMBOL AMOUNT
            symbol = args[0].upper()
            held = [p for p in sim.account.positions.values() if p.symbol == symbol]
            asset = held[0].margin_asset if held else "USDC" if symbol.endswith("USDC") else "USDT"
            await user_data.push_balance_change(asset, Decimal(args[1]), reason="FUNDING_FEE", symbol=symbol)
            return f"funding {args[1]} {asset} for {symbol}"
        if name in ("liq", "adl"):  # liq SYMBOL SIDE PRICE | adl SYMBOL SIDE N
            symbol, side = args[0].upper(), args[1].upper()
            if name == "liq":
                user_data.set_risk(symbol, side, liquidation=Decimal(args[2]))
            else:
                user_data.set_risk(symbol, side, adl=int(args[2]))
            return f"{name} of {symbol} {side} now {args[2]} (the next poll says so)"
        if name == "mute":
            faults.stream_mute = switch()
            return f"user-data streams {'mute' if faults.stream_mute else 'delivering'}"
        if name == "skew":
            faults.clock_skew_ms = int(args[0])
            return f"server clock {faults.clock_skew_ms:+d} ms"
        if name == "ban":
            ip.ban(int(args[0]) if args else 120)
            return f"IP banned until {ip.banned_until_ms}"
        if name == "unban":
            ip.unban()
            return "ban lifted"
        if name == "v1-weight":
            ip.set_v1_weight(int(args[0]))
            return f"account.status, account.balance, account.position now cost {args[0]}"
        if name == "limit":
            ip.limit = int(args[0])
            return f"weight limit {ip.limit}/min"
        if name == "others":
            ip.others_per_window = int(args[0])
            return f"other programs spend {ip.others_per_window} weight at each minute's start"
        if name == "spend":
            ip.spend(int(args[0]))
            return f"IP weight now {ip.count()}"
        if name in ("revoke", "restore"):
            sim.keyring.revoke_all(name == "revoke")
            return f"all keys {'revoked' if name == 'revoke' else 'restored'}"
        if name == "key":  # key PERMISSION on|off | key ip-listed on|off | key portfolio-margin on|off
            return sim.keyring.set_permission(args[0], switch_of(args[1:]))
        if name == "expire-keys":
            await user_data.expire_listen_keys()
            return "listen keys expired"
        if name == "drop-streams":
            return f"{user_data.drop_streams()} user-data stream(s) dropped"
        if name == "drop-all":
            await sim.drop_connections()
            return "all connections dropped"
        if name == "push":
            asset = (args[0] if args else "USDT").upper()
            amount_text = args[1] if len(args) > 1 else "1"
            if asset not in sim.account.assets:
                return f"push: unknown asset {asset} (the account holds {', '.join(sim.account.assets)})"
            await user_data.push_balance_change(asset, Decimal(amount_text))
            return f"pushed {amount_text} {asset}"
        if name == "margin-call":
            await user_data.push_margin_call()
            return "MARGIN_CALL pushed"
        if name == "multi-assets":
            await user_data.push_multi_assets(switch())
            return f"Multi-Assets mode {'on' if sim.account.multi_assets else 'off'}"
        if name == "lifetime":
            sim.venue.max_connection_age = int(args[0])
            return f"new connections close after {sim.venue.max_connection_age:g} s"
        if name == "status":
            active = {k: v for k, v in vars(faults).items() if v and k not in ("close_code", "oversized_bytes")}
            return f"weight {ip.count()}/{ip.limit}, banned until {ip.banned_until_ms}, {active}"
    except (ValueError, IndexError, KeyError, ArithmeticError) as exc:
        return f"{name}: {exc or 'bad arguments'} (help lists the commands)"
    return f"unknown command {name!r} (help lists the commands)"


def switch_of(args: list[str]) -> bool:
    return not args or args[0].lower() in ("on", "true", "1", "yes")


CONSOLE_HELP = """\
drop [N] | close [N]          abort / close (1001) the connection on the next N requests
silent on|off                 read requests, answer nothing
drop-after N | silent-after N  each connection takes N requests, then drops / answers nothing more (0: off)
malformed-every N             every Nth reply is not JSON (0: off)
mute on|off                   user-data streams stay open but deliver nothing (balances still change)
marks stop|go | drop-market   stop / restart mark prices; drop the /market connections
mark SYMBOL PRICE             set a mark price now (pushed at once)
position SYMBOL SIDE AMT [ENTRY]   open, change or (AMT 0) close a position, pushed as ACCOUNT_UPDATE
fill SYMBOL SIDE AMT PRICE [REALIZED [FEE [ASSET]]]   a fill: ACCOUNT_UPDATE and ORDER_TRADE_UPDATE (rp, n, N)
funding SYMBOL AMOUNT         a funding fee (ACCOUNT_UPDATE FUNDING_FEE with a.S)
liq SYMBOL SIDE PRICE | adl SYMBOL SIDE N   the liquidation price / ADL quantile the exchange reports
malformed | wrong-shape | bad-amount | oversized [N]   spoil the next N replies
shutdown [N]                  send a serverShutdown notice before the next N replies
skew MS                       run the server clock MS milliseconds ahead (negative: behind)
ban [SECONDS] | unban         418 on everything (default 120 s)
limit N | others N | spend N  weight limit; weight other programs spend each minute; spend some now
v1-weight 5|10                what the v1 account methods cost (the change log says 10, their pages 5)
revoke | restore              revoke every key (-2015 with id null) / undo
key withdraw|transfer|universal|trade|futures|ip-restrict on|off   what every key may do (apiRestrictions)
key ip-listed off | key portfolio-margin on   this IP not on the keys' lists / keys of a Portfolio Margin account
expire-keys | drop-all        expire listen keys / drop every connection
drop-streams                  drop the user-data streams only
push [ASSET AMOUNT] | margin-call | multi-assets on|off   user-data events
lifetime SECONDS              connections opened from now on close after this long
status | help"""
