"""Widgets that render balance-tui's data (``services.models``) and post messages; no I/O, no timers."""
