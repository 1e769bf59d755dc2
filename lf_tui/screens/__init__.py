"""The app's screens: methods, editor, run view, runs and comparison."""
