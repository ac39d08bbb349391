"""The smtp plugin."""
