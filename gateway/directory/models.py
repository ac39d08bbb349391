"""grommunio's user database (schema n133) as SQLAlchemy 2 declarative models.

Table names, column names, types, keys and cascades follow gromox's
``lib/dbop_mysql.cpp`` (the ``tbl_*_top`` statements plus the upgrade steps
up to 133), so that :func:`gateway.directory.schema.init` makes on MariaDB the
database ``gromox-dbop -C`` would make, and the gateway can run unchanged on a
database grommunio made. Types are in :mod:`gateway.directory.columns`: name
and address columns are ``ascii`` (case-insensitive) on MariaDB and
``COLLATE NOCASE`` on SQLite.

Notes taken from the gromox sources:

- ``users.domain_id`` has no foreign key; ``users.group_id`` is legacy (write 0);
  ``users.primary_email`` and ``users.altname`` are unused (steps 110, 129).
- ``aliases.mainname``, ``mlists.listname`` and ``classes.listname`` refer to
  ``users.username`` and follow renames and deletions (ON UPDATE/DELETE CASCADE).
- The task queue is ``tasq``; ``members`` and ``hierarchy`` are gone (115, 117).

One table is the gateway's own, not grommunio's: :class:`GatewayDeniedProtocols`
(see :mod:`gateway.directory.privileges`). It never collides with a gromox
table and gromox ignores it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    TIMESTAMP,
    Date,
    Enum,
    ForeignKey,
    MetaData,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.directory.columns import (
    ascii_str,
    ascii_text,
    nocase_str,
    now_default,
    sint,
    text_str,
    tinyint,
    uint,
    utinyint,
    utinyint_pk,
    varbinary,
)

MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_engine": "InnoDB"}


class Base(DeclarativeBase):
    metadata = MetaData()


def _fk(target: str) -> ForeignKey:
    """A foreign key that follows the parent (ON DELETE CASCADE ON UPDATE CASCADE)."""
    return ForeignKey(target, ondelete="CASCADE", onupdate="CASCADE")


def _pk() -> Mapped[int]:
    return mapped_column(uint(), primary_key=True, autoincrement=True)


def _blank(length: int) -> Mapped[str]:
    """``varchar(N) NOT NULL DEFAULT ''``."""
    return mapped_column(text_str(length), nullable=False, server_default="")


def _stamp(on_update: bool = False, index: bool = False) -> Mapped[dt.datetime]:
    """``timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP`` (``ON UPDATE`` too when asked)."""
    return mapped_column(TIMESTAMP(), nullable=False, index=index,
                         server_default=now_default(on_update))


# -- users and their names ----------------------------------------------------------------------


class Users(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("domain_id", "username", name="domain_id_2"),
        UniqueConstraint("group_id", "username", name="group_id_2"),
        MYSQL_TABLE,
    )

    id: Mapped[int] = _pk()
    username: Mapped[str] = mapped_column(ascii_str(320), nullable=False, unique=True)
    primary_email: Mapped[str | None] = mapped_column(ascii_str(320))  # unused since n110
    altname: Mapped[str | None] = mapped_column(text_str(64), unique=True)  # unused since n129
    password: Mapped[str] = mapped_column(ascii_str(136), nullable=False, server_default="")
    domain_id: Mapped[int] = mapped_column(uint(), nullable=False, index=True)
    group_id: Mapped[int] = mapped_column(uint(), nullable=False, index=True)
    homeserver: Mapped[int] = mapped_column(utinyint(5), nullable=False, server_default="0")
    maildir: Mapped[str] = mapped_column(text_str(128), nullable=False, server_default="",
                                         index=True)
    lang: Mapped[str] = _blank(32)
    timezone: Mapped[str] = _blank(64)
    privilege_bits: Mapped[int] = mapped_column(uint(), nullable=False)
    address_status: Mapped[int] = mapped_column(tinyint(), nullable=False, server_default="0")
    externid: Mapped[bytes | None] = mapped_column(varbinary(64))
    sync_policy: Mapped[str | None] = mapped_column(ascii_text())
    chat_id: Mapped[str | None] = mapped_column(text_str(26))


class Aliases(Base):
    __tablename__ = "aliases"
    __table_args__ = (MYSQL_TABLE,)

    aliasname: Mapped[str] = mapped_column(ascii_str(320), primary_key=True)
    mainname: Mapped[str] = mapped_column(
        ascii_str(320), _fk("users.username"), nullable=False, index=True)


class Altnames(Base):
    __tablename__ = "altnames"
    __table_args__ = (MYSQL_TABLE,)

    user_id: Mapped[int] = mapped_column(uint(), _fk("users.id"),
                                         primary_key=True)
    # utf8mb4 in gromox (not ascii); its default collation is case-insensitive too.
    altname: Mapped[str] = mapped_column(nocase_str(320), primary_key=True, unique=True)
    magic: Mapped[int] = mapped_column(uint(), nullable=False, server_default="0")


class UserProperties(Base):
    __tablename__ = "user_properties"
    __table_args__ = (MYSQL_TABLE,)

    user_id: Mapped[int] = mapped_column(uint(), _fk("users.id"),
                                         primary_key=True)
    proptag: Mapped[int] = mapped_column(uint(), primary_key=True)
    order_id: Mapped[int] = mapped_column(uint(), primary_key=True, server_default="1",
                                          autoincrement=False)
    propval_bin: Mapped[bytes | None] = mapped_column(varbinary(4096))
    propval_str: Mapped[str | None] = mapped_column(text_str(4096))


class Forwards(Base):
    __tablename__ = "forwards"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    username: Mapped[str] = mapped_column(ascii_str(320), nullable=False, unique=True)
    forward_type: Mapped[int] = mapped_column(tinyint(), nullable=False, server_default="0")
    destination: Mapped[str] = mapped_column(ascii_str(320), nullable=False)


class Fetchmail(Base):
    __tablename__ = "fetchmail"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    user_id: Mapped[int] = mapped_column(uint(), _fk("users.id"),
                                         nullable=False, index=True)
    mailbox: Mapped[str] = mapped_column(text_str(320), nullable=False)
    active: Mapped[int] = mapped_column(utinyint(1), nullable=False, server_default="1")
    src_server: Mapped[str] = mapped_column(text_str(255), nullable=False)
    src_auth: Mapped[str] = mapped_column(
        Enum("password", "kerberos_v5", "kerberos", "kerberos_v4", "gssapi", "cram-md5", "otp",
             "ntlm", "msn", "ssh", "any", name="src_auth", create_constraint=False),
        nullable=False, server_default="password")
    src_user: Mapped[str] = mapped_column(text_str(255), nullable=False)
    src_password: Mapped[str] = mapped_column(text_str(255), nullable=False)
    src_folder: Mapped[str] = mapped_column(text_str(255), nullable=False)
    fetchall: Mapped[int] = mapped_column(utinyint(1), nullable=False, server_default="0")
    keep: Mapped[int] = mapped_column(utinyint(1), nullable=False, server_default="1")
    protocol: Mapped[str] = mapped_column(
        Enum("POP3", "IMAP", "POP2", "ETRN", "AUTO", name="protocol", create_constraint=False),
        nullable=False, server_default="IMAP")
    usessl: Mapped[int] = mapped_column(utinyint(1), nullable=False, server_default="1")
    sslcertck: Mapped[int] = mapped_column(utinyint(1), nullable=False, server_default="0")
    sslcertpath: Mapped[str | None] = mapped_column(text_str(255))
    sslfingerprint: Mapped[str | None] = mapped_column(text_str(255))
    extra_options: Mapped[str | None] = mapped_column(Text())
    date: Mapped[dt.datetime] = _stamp(on_update=True)


class SecondaryStoreHints(Base):
    """Which stores a user may have rights on (read by AutoDiscover)."""

    __tablename__ = "secondary_store_hints"
    __table_args__ = (MYSQL_TABLE,)

    primary: Mapped[int] = mapped_column(uint(), _fk("users.id"),
                                         primary_key=True)
    secondary: Mapped[int] = mapped_column(uint(), _fk("users.id"),
                                           primary_key=True)


class UserDevices(Base):
    __tablename__ = "user_devices"
    __table_args__ = (UniqueConstraint("user_id", "device_id", name="user_device"), MYSQL_TABLE)

    id: Mapped[int] = _pk()
    user_id: Mapped[int] = mapped_column(uint(), _fk("users.id"),
                                         nullable=False)
    device_id: Mapped[str] = mapped_column(text_str(64), nullable=False)
    status: Mapped[int] = mapped_column(uint(), nullable=False, server_default="0")


class UserDeviceHistory(Base):
    __tablename__ = "user_device_history"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    user_device_id: Mapped[int] = mapped_column(
        uint(), _fk("user_devices.id"), nullable=False, index=True)
    time: Mapped[dt.datetime] = _stamp()
    remote_ip: Mapped[str] = mapped_column(text_str(64), nullable=False)
    status: Mapped[int] = mapped_column(uint(), nullable=False)


# -- domains, organisations, servers ------------------------------------------------------------


class Orgs(Base):
    __tablename__ = "orgs"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    name: Mapped[str] = mapped_column(text_str(32), nullable=False)
    description: Mapped[str | None] = mapped_column(text_str(128))


class OrgParam(Base):
    """Per-organisation settings (LDAP: ldap_uri, ldap_binddn, ldap_bindpw, ...)."""

    __tablename__ = "orgparam"
    __table_args__ = (MYSQL_TABLE,)

    org_id: Mapped[int] = mapped_column(uint(), _fk("orgs.id"),
                                        primary_key=True)
    key: Mapped[str] = mapped_column(ascii_str(32), primary_key=True)
    value: Mapped[str | None] = mapped_column(text_str(255))


class Domains(Base):
    __tablename__ = "domains"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    org_id: Mapped[int] = mapped_column(uint(), nullable=False, server_default="0", index=True)
    domainname: Mapped[str] = mapped_column(ascii_str(255), nullable=False, unique=True)
    homeserver: Mapped[int] = mapped_column(tinyint(), nullable=False, server_default="0")
    homedir: Mapped[str] = mapped_column(text_str(128), nullable=False, server_default="",
                                         index=True)
    max_user: Mapped[int] = mapped_column(uint(), nullable=False)
    title: Mapped[str] = _blank(128)
    address: Mapped[str] = _blank(128)
    admin_name: Mapped[str] = _blank(32)
    tel: Mapped[str] = _blank(64)
    end_day: Mapped[dt.date] = mapped_column(Date(), nullable=False)
    domain_status: Mapped[int] = mapped_column(tinyint(), nullable=False, server_default="0")
    sync_policy: Mapped[str | None] = mapped_column(ascii_text())
    chat_id: Mapped[str | None] = mapped_column(text_str(26))


class DisabledPlugins(Base):
    __tablename__ = "disabled_plugins"
    __table_args__ = (MYSQL_TABLE,)

    domain_id: Mapped[int] = mapped_column(uint(), _fk("domains.id"),
                                           primary_key=True)
    plugin: Mapped[str] = mapped_column(text_str(128), primary_key=True)


class Servers(Base):
    """Nodes: ``hostname`` is the node's host id (empty: local), ``extname`` its public name."""

    __tablename__ = "servers"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = mapped_column(utinyint_pk(), primary_key=True, autoincrement=True)
    hostname: Mapped[str] = mapped_column(ascii_str(255), nullable=False, unique=True)
    extname: Mapped[str] = mapped_column(ascii_str(255), nullable=False)


# -- groups and lists ---------------------------------------------------------------------------


class Groups(Base):
    __tablename__ = "groups"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    groupname: Mapped[str] = mapped_column(ascii_str(320), nullable=False, unique=True)
    password: Mapped[str] = mapped_column(ascii_str(136), nullable=False, server_default="")
    domain_id: Mapped[int] = mapped_column(uint(), nullable=False, index=True)
    title: Mapped[str] = mapped_column(text_str(128), nullable=False)


class MLists(Base):
    """Mailing lists: list_type 0 normal, 2 domain; list_privilege 0 all .. 4 outgoing."""

    __tablename__ = "mlists"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    listname: Mapped[str] = mapped_column(
        ascii_str(320), _fk("users.username"), nullable=False, unique=True)
    domain_id: Mapped[int] = mapped_column(uint(), nullable=False, index=True)
    list_type: Mapped[int] = mapped_column(tinyint(), nullable=False)
    list_privilege: Mapped[int] = mapped_column(tinyint(), nullable=False, server_default="0")


class Associations(Base):
    """List members."""

    __tablename__ = "associations"
    __table_args__ = (MYSQL_TABLE,)

    list_id: Mapped[int] = mapped_column(sint(), primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(ascii_str(320), primary_key=True, index=True)


class Specifieds(Base):
    """Senders allowed to post to a list of privilege 3 (specified)."""

    __tablename__ = "specifieds"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    username: Mapped[str] = mapped_column(ascii_str(320), nullable=False)
    list_id: Mapped[int] = mapped_column(sint(), nullable=False, index=True)


class Classes(Base):
    __tablename__ = "classes"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    classname: Mapped[str] = mapped_column(text_str(128), nullable=False)
    listname: Mapped[str] = mapped_column(
        ascii_str(320), _fk("users.username"), nullable=False, index=True)
    filters: Mapped[str | None] = mapped_column(Text())
    domain_id: Mapped[int] = mapped_column(uint(), ForeignKey("domains.id"), nullable=False)


# -- configuration, administration, tasks -------------------------------------------------------


class Configs(Base):
    __tablename__ = "configs"
    __table_args__ = (UniqueConstraint("service", "file", "key", name="path"), MYSQL_TABLE)

    id: Mapped[int] = _pk()
    service: Mapped[str] = mapped_column(text_str(200), nullable=False, index=True)
    file: Mapped[str] = mapped_column(text_str(200), nullable=False, index=True)
    key: Mapped[str] = mapped_column(text_str(200), nullable=False)
    value: Mapped[str] = _blank(255)


class Options(Base):
    """Key/value; ``schemaversion`` holds the gromox schema number (133)."""

    __tablename__ = "options"
    __table_args__ = (MYSQL_TABLE,)

    key: Mapped[str] = mapped_column(ascii_str(32), primary_key=True)
    value: Mapped[str | None] = mapped_column(text_str(255))


class AdminRoles(Base):
    __tablename__ = "admin_roles"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    name: Mapped[str] = mapped_column(text_str(32), nullable=False, unique=True)
    description: Mapped[str | None] = mapped_column(text_str(256))


class AdminRolePermissionRelation(Base):
    __tablename__ = "admin_role_permission_relation"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    role_id: Mapped[int] = mapped_column(uint(), ForeignKey("admin_roles.id"), nullable=False,
                                         index=True)
    permission: Mapped[str] = mapped_column(text_str(64), nullable=False)
    parameters: Mapped[str | None] = mapped_column(Text())


class AdminUserRoleRelation(Base):
    __tablename__ = "admin_user_role_relation"
    __table_args__ = (MYSQL_TABLE,)

    user_id: Mapped[int] = mapped_column(uint(), ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    role_id: Mapped[int] = mapped_column(uint(), ForeignKey("admin_roles.id"), primary_key=True)


class Tasq(Base):
    """The task queue: state 0 queued .. 5 cancelled; params is JSON."""

    __tablename__ = "tasq"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[int] = _pk()
    command: Mapped[str] = mapped_column(text_str(16), nullable=False)
    state: Mapped[int] = mapped_column(utinyint(3), nullable=False, server_default="0",
                                       index=True)
    created: Mapped[dt.datetime] = _stamp()
    updated: Mapped[dt.datetime] = _stamp(index=True)
    message: Mapped[str] = _blank(160)
    access: Mapped[str | None] = mapped_column(Text())
    params: Mapped[str | None] = mapped_column(Text())


# -- the gateway's own --------------------------------------------------------------------------


class GatewayDeniedProtocols(Base):
    """Protocols without a grommunio privilege bit (EWS, MAPI) denied to a user.

    A row denies; no row means grommunio's rule (no bit needed) applies.
    """

    __tablename__ = "gateway_denied_protocols"
    __table_args__ = (MYSQL_TABLE,)

    user_id: Mapped[int] = mapped_column(uint(), _fk("users.id"),
                                         primary_key=True)
    protocol: Mapped[str] = mapped_column(ascii_str(32), primary_key=True)


GROMMUNIO_TABLES = (
    "admin_roles", "associations", "configs", "domains", "forwards", "groups", "options", "orgs",
    "specifieds", "users", "aliases", "mlists", "user_properties",
    "admin_role_permission_relation", "admin_user_role_relation", "classes", "fetchmail",
    "secondary_store_hints", "user_devices", "user_device_history", "tasq", "servers",
    "orgparam", "altnames", "disabled_plugins",
)
"""The n133 tables, in gromox's creation order."""

GATEWAY_TABLES = ("gateway_denied_protocols",)
"""Tables the gateway adds beside grommunio's."""
