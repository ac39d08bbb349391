"""The imap plugin (under construction this session: declares no hooks yet)."""
