"""What the CLI and the TUI both show (labels, values, units, status words), computed once; no Rich, no Textual."""
