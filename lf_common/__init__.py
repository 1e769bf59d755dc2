"""Small stdlib-only helpers shared by every package of ours (it imports none of them)."""
