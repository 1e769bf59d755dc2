"""The training engine: a subprocess that fine-tunes and streams JSON-lines events.

Importing this package is cheap: torch and friends load only inside the training process.
"""
