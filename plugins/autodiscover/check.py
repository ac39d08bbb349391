"""``gateway autodiscover check ADDRESS [--url URL]``: the client side of AutoDiscover.

Runs what Outlook does to find a mailbox (MS-OXDISCO): POST a POX request to
``https://DOMAIN/autodiscover/autodiscover.xml``, then
``https://autodiscover.DOMAIN/...``, then an unauthenticated GET on
``http://autodiscover.DOMAIN/...`` for a redirect, then the
``_autodiscover._tcp.DOMAIN`` SRV record; or only ``--url``. It follows
``redirectUrl`` and ``redirectAddr`` answers (at most 10), prints each step,
the response and the endpoints it resolved, then asks the JSON v2 service of
the same server for EWS and ActiveSync. Basic authentication only (the
password from standard input or a prompt). Exit status 0 when settings were
found.
"""

from __future__ import annotations

import base64
import json
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import click
from lxml import etree

from gateway.xmlsafe import BadXml, parse

NS_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
NS_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
PATH = "/autodiscover/autodiscover.xml"
MAX_REDIRECTS = 10
MAX_ANSWER = 1 << 20


def request_body(address: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="{NS_REQUEST}">'
            f"<Request><EMailAddress>{_escape(address)}</EMailAddress>"
            f"<AcceptableResponseSchema>{NS_OUTLOOK}</AcceptableResponseSchema>"
            "</Request></Autodiscover>").encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class Outcome:
    url: str
    status: int
    body: bytes = b""
    location: str = ""
    error: str = ""


@dataclass
class Found:
    """What one POX answer says."""

    action: str = ""
    redirect: str = ""
    error: str = ""
    user: dict[str, str] = field(default_factory=dict)
    protocols: list[dict[str, str]] = field(default_factory=list)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _fetch(url: str, context: ssl.SSLContext, method: str, data: bytes | None = None,
           headers: dict[str, str] | None = None, timeout: float = 15.0) -> Outcome:
    opener = urllib.request.build_opener(NoRedirect(), urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=timeout) as answer:
            return Outcome(url, answer.status, answer.read(MAX_ANSWER))
    except urllib.error.HTTPError as exc:
        return Outcome(url, exc.code, exc.read(MAX_ANSWER) if exc.fp else b"",
                       exc.headers.get("location", "") if exc.headers else "")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Outcome(url, 0, error=str(reason))


def read_answer(body: bytes) -> Found:
    """The action, redirect, user and protocols of a POX answer (or its error)."""
    try:
        root = parse(body)
    except BadXml as exc:
        return Found(error=f"not XML: {exc}")
    found = Found()
    for error in root.iter("{*}Error"):
        code = error.findtext("{*}ErrorCode") or error.findtext("{*}Status") or "?"
        found.error = f"{code} {error.findtext('{*}Message') or ''}".strip()
        return found
    user = root.find(f"{{{NS_OUTLOOK}}}Response/{{{NS_OUTLOOK}}}User")
    if user is not None:
        found.user = {etree.QName(c).localname: (c.text or "") for c in user}
    account = root.find(f"{{{NS_OUTLOOK}}}Response/{{{NS_OUTLOOK}}}Account")
    if account is None:
        found.error = "no Account in the answer"
        return found
    found.action = account.findtext(f"{{{NS_OUTLOOK}}}Action") or ""
    found.redirect = (account.findtext(f"{{{NS_OUTLOOK}}}RedirectUrl")
                      or account.findtext(f"{{{NS_OUTLOOK}}}RedirectAddr") or "")
    for protocol in account.findall(f"{{{NS_OUTLOOK}}}Protocol"):
        entry = {"Type": protocol.get("Type") or protocol.findtext(f"{{{NS_OUTLOOK}}}Type") or ""}
        for child in protocol.iter():
            name = etree.QName(child).localname
            if child is protocol or name == "Type" or len(child):
                continue
            parent = etree.QName(child.getparent()).localname  # type: ignore[arg-type]
            key = name if parent == "Protocol" else f"{parent}/{name}"
            entry[key] = (child.text or "").strip()
        found.protocols.append(entry)
    return found


def candidates(domain: str) -> list[tuple[str, str]]:
    """``(method, url)`` of MS-OXDISCO's steps before the SRV record."""
    return [("POST", f"https://{domain}{PATH}"), ("POST", f"https://autodiscover.{domain}{PATH}"),
            ("GET", f"http://autodiscover.{domain}{PATH}")]


def srv_urls(domain: str) -> list[str]:
    try:
        import dns.resolver

        answers = dns.resolver.resolve(f"_autodiscover._tcp.{domain}", "SRV", lifetime=5)
    except Exception as exc:
        click.echo(f"   SRV _autodiscover._tcp.{domain}: {exc.__class__.__name__}")
        return []
    records = sorted(answers, key=lambda r: (r.priority, -r.weight))
    return [f"https://{str(r.target).rstrip('.')}:{r.port}{PATH}" for r in records]


class Checker:
    def __init__(self, login: str, password: str, context: ssl.SSLContext):
        token = base64.b64encode(f"{login}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "text/xml",
                        "X-MapiHttpCapability": "1", "User-Agent": "gateway-autodiscover-check"}
        self.context = context
        self.redirects = 0
        self.visited: set[str] = set()

    def post(self, url: str, address: str) -> tuple[Found | None, Outcome]:
        outcome = _fetch(url, self.context, "POST", request_body(address), self.headers)
        status = outcome.status or outcome.error
        click.echo(f"-> POST {url}: {status}")
        if outcome.status != 200:
            return None, outcome
        return read_answer(outcome.body), outcome

    def discover(self, address: str, urls: list[tuple[str, str]], domain: str
                 ) -> tuple[Found, Outcome] | None:
        steps = list(urls)
        srv_done = not domain
        while steps or not srv_done:
            if not steps:
                srv_done = True
                steps = [("POST", url) for url in srv_urls(domain)]
                continue
            method, url = steps.pop(0)
            if url.lower() in self.visited:
                continue
            self.visited.add(url.lower())
            if method == "GET":
                outcome = _fetch(url, self.context, "GET")
                click.echo(f"-> GET {url}: {outcome.status or outcome.error}")
                if outcome.status in (301, 302) and outcome.location.startswith("https://"):
                    steps.insert(0, ("POST", outcome.location))
                continue
            found, outcome = self.post(url, address)
            if found is None:
                continue
            if found.error:
                click.echo(f"   error: {found.error}")
                return found, outcome
            if found.action in ("redirectUrl", "redirectAddr") and found.redirect:
                self.redirects += 1
                if self.redirects > MAX_REDIRECTS:
                    click.echo("   too many redirects")
                    return None
                click.echo(f"   {found.action}: {found.redirect}")
                if found.action == "redirectAddr":
                    address = found.redirect
                    return self.discover(address, urls, address.rpartition("@")[2])
                if not found.redirect.startswith("https://"):
                    click.echo("   refusing a redirect to a non-https URL")
                    continue
                steps.insert(0, ("POST", found.redirect))
                continue
            return found, outcome
        return None


def _context(insecure: bool, cafile: str | None) -> ssl.SSLContext:
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=cafile)


def _json_v2(base: str, address: str, context: ssl.SSLContext) -> None:
    for protocol in ("EWS", "ActiveSync"):
        url = f"{base}/autodiscover/autodiscover.json/v1.0/{quote(address)}?Protocol={protocol}"
        outcome = _fetch(url, context, "GET")
        try:
            text = json.dumps(json.loads(outcome.body)) if outcome.body else outcome.error
        except ValueError:
            text = outcome.body[:200].decode("utf-8", "replace")
        click.echo(f"   JSON v2 {protocol}: {outcome.status or ''} {text}")


@click.group()
def autodiscover() -> None:
    """AutoDiscover diagnostics."""


@autodiscover.command("check")
@click.argument("address")
@click.option("--url", help="Ask only this AutoDiscover URL (…/autodiscover/autodiscover.xml).")
@click.option("--user", "login", help="Login name (default: ADDRESS).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates.")
@click.option("--cafile", type=click.Path(exists=True, dir_okay=False),
              help="PEM file of the CA that signed the server's certificate.")
@click.option("--show-xml/--no-xml", default=True, help="Print the final XML answer.")
def check(address: str, url: str | None, login: str | None, password_stdin: bool,
          insecure: bool, cafile: str | None, show_xml: bool) -> None:
    """Run the client-side discovery sequence for ADDRESS and print what it finds."""
    if "@" not in address:
        raise click.BadParameter("must be an email address", param_hint="ADDRESS")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True)
    context = _context(insecure, cafile)
    domain = address.rpartition("@")[2]
    urls = [("POST", url)] if url else candidates(domain)
    checker = Checker(login or address, password, context)
    result = checker.discover(address, urls, "" if url else domain)
    if result is None:
        click.echo("no AutoDiscover answer found", err=True)
        sys.exit(1)
    found, outcome = result
    if show_xml:
        try:
            pretty = etree.tostring(parse(outcome.body), pretty_print=True).decode()
        except BadXml:
            pretty = outcome.body.decode("utf-8", "replace")
        click.echo(f"\nResponse from {outcome.url}:\n{pretty}")
    if found.error:
        click.echo(f"AutoDiscover error: {found.error}", err=True)
        sys.exit(1)
    click.echo("User:")
    for key, value in found.user.items():
        click.echo(f"   {key}: {value}")
    click.echo("Endpoints:")
    for protocol in found.protocols:
        kind = protocol.pop("Type", "?")
        details = ", ".join(f"{k}={v}" for k, v in protocol.items() if v)
        click.echo(f"   {kind}: {details}")
    parts = urlsplit(outcome.url)
    _json_v2(f"{parts.scheme}://{parts.netloc}", address, context)
