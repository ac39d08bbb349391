"""The autodiscover plugin (under construction this session: declares no hooks yet)."""
