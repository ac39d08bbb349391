"""The smtp plugin (under construction this session: declares no hooks yet)."""
