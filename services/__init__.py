"""balance-tui's exchange side: a Binance USDⓈ-M Futures WebSocket API client, exact money models, and a simulator.

Nothing in this package imports Textual or Rich: it is a library a script can use with no terminal.
"""
