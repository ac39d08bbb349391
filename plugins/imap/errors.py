"""Exceptions a command raises to end with a tagged NO or BAD."""

from __future__ import annotations


class CommandFailed(Exception):
    """End the command with ``kind`` (``"NO"`` or ``"BAD"``), an optional code and text."""

    kind = "NO"

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


class No(CommandFailed):
    """The command was understood but cannot be done (tagged NO)."""

    kind = "NO"


class Bad(CommandFailed):
    """The command is malformed or not allowed here (tagged BAD)."""

    kind = "BAD"


class Answered(Exception):
    """The command wrote its own tagged response already (STARTTLS, IDLE's BAD ...)."""
