"""The one authentication entry point every plugin calls.

Mechanisms (password against the directory, LDAP bind, Kerberos/SPNEGO ...)
are contributed through ``gateway_auth_mechanisms``; protocol plugins call
:meth:`AuthRegistry.authenticate` with the credentials, the protocol and the
client address, and get a principal or a reason.
"""

from gateway.auth.registry import (
    AuthMechanism,
    AuthRegistry,
    AuthResult,
    Credentials,
    Principal,
)

__all__ = ["AuthMechanism", "AuthRegistry", "AuthResult", "Credentials", "Principal"]
