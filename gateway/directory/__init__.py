"""The user directory: grommunio's user database, read and written by the gateway.

``Directory`` (lookups, cached), ``User`` and ``LoginLookup`` are the API;
``gateway.directory.privileges`` the protocol rules, ``gateway.directory.passwords``
the crypt hashes, ``gateway.directory.schema`` init/upgrade and
``gateway.directory.admin`` the changes the CLI makes.
"""

from gateway.directory.directory import Directory
from gateway.directory.engine import DirectoryError
from gateway.directory.types import LoginLookup, User

__all__ = ["Directory", "DirectoryError", "LoginLookup", "User"]
