"""Reusable widgets of the lf-tui app."""
