"""lf-tui: a terminal dashboard for fine-tuning LLMs (the TUI and the CLI; never imports torch)."""

__version__ = "0.1.0"
