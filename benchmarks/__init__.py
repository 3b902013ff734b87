"""Benchmarks of balance-tui, measured and reported (never asserted): see benchmarks/run.py."""
