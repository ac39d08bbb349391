"""The imap plugin."""
