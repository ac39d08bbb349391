"""The real servers tests run against, as session-scoped pytest fixtures.

``tests/conftest.py`` loads this module as a plugin; the fixtures live in
their own modules and are re-exported here:

* ``mariadb`` (:mod:`tests.harness.mariadb`): the local MariaDB (root, empty
  password, 127.0.0.1:3306) or a private ``mariadbd``; ``url(db)`` and
  ``create_database(prefix)``.
* ``redis_server`` (:mod:`tests.harness.redis_server`): the local Redis
  (127.0.0.1:6379) or a private ``redis-server``; ``url``.
* ``krb5_realm`` (:mod:`tests.harness.kerberos`): a throwaway MIT Kerberos
  realm with ``alice`` and ``HTTP/localhost``.
* ``ldap_server`` (:mod:`tests.harness.ldap_server`): a throwaway slapd with
  ``uid=alice,ou=people,dc=example,dc=org``; ``ldap_server_tls``: a second
  one with a CA-signed certificate for StartTLS (``ca_file``).

Set ``GATEWAY_TEST_PRIVATE_SERVICES=1`` to have MariaDB and Redis started
privately even when local servers run. Private servers listen on free
127.0.0.1 ports, keep their files in pytest's temporary directories and stop
at the end of the session.
"""

from __future__ import annotations

from tests.harness.kerberos import Krb5Realm, krb5_realm
from tests.harness.ldap_server import LdapServer, ldap_server, ldap_server_tls
from tests.harness.mariadb import MariaDB, mariadb
from tests.harness.redis_server import RedisServer, redis_server

__all__ = [
    "Krb5Realm",
    "LdapServer",
    "MariaDB",
    "RedisServer",
    "krb5_realm",
    "ldap_server",
    "ldap_server_tls",
    "mariadb",
    "redis_server",
]
