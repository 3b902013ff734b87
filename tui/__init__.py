"""balance-tui's terminal side: the Textual app, its screens, the CLI that wires services to them."""
