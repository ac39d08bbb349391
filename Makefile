# The two commands: `make run` and `make test`. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Debian packages the gateway and its test suite need: Python's venv and
# headers (gssapi builds against MIT Kerberos, bonsai against OpenLDAP and
# Cyrus SASL), the real servers the tests run against (Kerberos KDC, OpenLDAP,
# MariaDB, Redis), the peers the protocol tests compare against or talk to
# (Dovecot IMAP and LMTP, mbsync, Postfix with MySQL maps, swaks) and the load
# generator of the benchmarks. The tests start their own instances of the
# daemons; the system copies are kept from starting (policy-rc.d) while apt
# installs them.
DEB_PACKAGES := python3-venv python3-dev gcc pkg-config libkrb5-dev \
	libldap2-dev libsasl2-dev \
	krb5-kdc krb5-admin-server krb5-user slapd ldap-utils \
	mariadb-server redis-server wrk \
	dovecot-imapd dovecot-lmtpd isync postfix postfix-mysql swaks

.PHONY: install run test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages: $$missing"; \
			blocker=/usr/sbin/policy-rc.d; own_blocker=; \
			if [ ! -e $$blocker ]; then printf '#!/bin/sh\nexit 101\n' > $$blocker; chmod +x $$blocker; own_blocker=1; fi; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
			status=$$?; [ -n "$$own_blocker" ] && rm -f $$blocker; [ $$status = 0 ] || exit $$status; \
		else \
			echo "missing Debian packages (run as root to install them): $$missing" >&2; \
		fi; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# caldav brings urllib3-future, whose wheel installs itself over urllib3 (a .pth
	# file); built from source with URLLIB3_NO_OVERRIDE it keeps to its own name.
	URLLIB3_NO_OVERRIDE=1 $(BIN)/pip install -q --no-binary urllib3-future -e '.[test,dev]'
	touch $@

run: install
	@echo "Gateway on http://127.0.0.1:8080/ and https://127.0.0.1:8443/ (self-signed; data in ./var)."
	@echo "  Check it:    curl http://127.0.0.1:8080/healthz"
	@echo "               curl --cacert var/tls/selfsigned.crt https://127.0.0.1:8443/healthz"
	@echo "  Plugins:     $(BIN)/gateway plugins"
	@echo "  Settings:    $(BIN)/gateway config show   (override with --config-dir DIR)"
	@echo "  Users:       $(BIN)/gateway domain add example.test"
	@echo "               printf 'secret\\n' | $(BIN)/gateway user add alice@example.test --password-stdin"
	@echo "  Mailboxes:   $(BIN)/gateway mbox import alice@example.test Inbox ~/mail.mbox   (.eml, mbox, Maildir)"
	@echo "               $(BIN)/gateway mbox stats alice@example.test"
	@echo "  IMAP:        127.0.0.1:1143 (STARTTLS) and 127.0.0.1:1993 (TLS), e.g."
	@echo "               curl --cacert var/tls/selfsigned.crt --ssl-reqd imaps://127.0.0.1:1993/INBOX -u alice@example.test:secret"
	@echo "  SMTP:        submission 127.0.0.1:1587 (STARTTLS) and :1465 (TLS); delivery (LMTP/SMTP) 127.0.0.1:2424"
	@echo "               swaks --server 127.0.0.1:1587 --tls --tls-ca-path var/tls/selfsigned.crt -au alice@example.test -ap secret \\"
	@echo "                     --from alice@example.test --to alice@example.test"
	@echo "  CalDAV/CardDAV: http://127.0.0.1:8080/dav/ (or /.well-known/caldav), e.g."
	@echo "               curl -u alice@example.test:secret -X PROPFIND -H 'Depth: 1' http://127.0.0.1:8080/dav/calendars/alice@example.test/"
	@echo "  Queue:       $(BIN)/gateway queue list"
	@echo "  Discovery:   printf 'secret\\n' | $(BIN)/gateway autodiscover check alice@example.test --password-stdin \\"
	@echo "                 --url https://127.0.0.1:8443/autodiscover/autodiscover.xml --cafile var/tls/selfsigned.crt"
	$(BIN)/gateway serve

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	$(BIN)/python -m tests.bench.http_overhead
	$(BIN)/python -m tests.bench.idle_connections
	$(BIN)/python -m tests.bench.basic_auth
	$(BIN)/python -m tests.bench.crypt_rate
	$(BIN)/python -m tests.bench.store_ops
	$(BIN)/python -m tests.bench.convert_mail
	$(BIN)/python -m tests.bench.convert_ical
	$(BIN)/python -m tests.bench.imap_dovecot
	$(BIN)/python -m tests.bench.lmtp_dovecot
	$(BIN)/python -m tests.bench.dav_peers

clean:
	rm -rf $(VENV) var
