"""The autodiscover plugin."""
