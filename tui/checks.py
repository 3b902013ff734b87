"""Checks of what the user set for the screen (theme, keymap): one clear line each, never a traceback."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

from textual.binding import Binding
from textual.keys import Keys, _character_to_key
from textual.theme import BUILTIN_THEMES

MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
#: Key names Textual understands: its named keys, and the names of printable characters ("question_mark").
KEY_NAMES = frozenset(
    {key.value for key in Keys}
    | {_character_to_key(ch) for ch in string.printable if ch.isprintable()}
    | set(string.printable.strip())
    | {f"f{n}" for n in range(1, 25)}
)


def unknown_theme(theme: str | None) -> str | None:
    """The error for a theme Textual does not have, naming those it has; None when the theme is fine."""
    if theme is None or theme in BUILTIN_THEMES:
        return None
    return f"unknown theme {theme!r}: the themes are {', '.join(sorted(BUILTIN_THEMES))}"


def key_parses(spec: str) -> bool:
    """Whether one key of a binding (``ctrl+r``, ``f5``, ``question_mark``) is a key Textual knows."""
    *modifiers, key = spec.split("+")
    return bool(key) and key in KEY_NAMES and all(m in MODIFIERS for m in modifiers)


def checked_keymap(
    keymap: Mapping[str, str], screens: Iterable[Iterable[Binding | tuple[str, ...]]]
) -> tuple[dict[str, str], list[str]]:
    """The keymap entries that can be applied, and a warning for each one left out (its default kept).

    Left out: an entry that names no binding, one whose keys do not parse, and one whose key another binding of
    the same screen already answers to (after the keymap): two actions on one key would make the footer lie.
    """
    groups = [[b for b in bindings if isinstance(b, Binding) and b.id] for bindings in screens]
    keys_of = {b.id: [k.strip() for k in b.key.split(",")] for group in groups for b in group if b.id}
    screen_of = {b.id: i for i, group in enumerate(groups) for b in group}
    good: dict[str, str] = {}
    warnings = []
    for binding_id, spec in keymap.items():
        keys = [k.strip() for k in str(spec).split(",") if k.strip()]
        if binding_id not in keys_of:
            warnings.append(f"keymap: no binding called {binding_id!r} (bindings: {', '.join(sorted(keys_of))})")
        elif not keys or not all(key_parses(k) for k in keys):
            warnings.append(f"keymap: {binding_id} = {spec!r} is not a key Textual knows; keeping the default")
        else:
            good[binding_id] = ",".join(keys)
    effective = {bid: (good[bid].split(",") if bid in good else keys) for bid, keys in keys_of.items()}
    for binding_id in list(good):
        clashes = sorted(
            other
            for other, keys in effective.items()
            if other != binding_id
            and screen_of[other] == screen_of[binding_id]
            and set(keys) & set(effective[binding_id])
        )
        if clashes:
            warnings.append(
                f"keymap: {binding_id} = {good[binding_id]!r} is already the key of {', '.join(clashes)}; "
                "keeping the default"
            )
            del good[binding_id]
            effective[binding_id] = keys_of[binding_id]
    return good, warnings
