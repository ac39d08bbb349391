"""The principal reports: ``DAV:expand-property`` (RFC 3253 3.8),
``DAV:principal-property-search`` (RFC 3744 9.4) and ``DAV:principal-search-property-set``
(RFC 3744 9.5).

expand-property answers the request-URI's properties, and for each one asked with
nested ``DAV:property`` elements replaces every ``DAV:href`` of its value by a
``DAV:response`` with the properties of the resource there (Apple asks this way
for ``calendar-proxy-write-for`` with the owners' names and addresses). An href
outside this server's tree stays as it is; one that names nothing here (or
nothing the user may see) answers 404. Nesting and the number of expanded
resources are bounded.

principal-property-search looks only at the principals of the requesting user's
own domain (the directory's mail users, rooms and equipment, not hidden from
address lists). A ``DAV:match`` is compared caseless (Unicode case folding); its
``match-type`` (an Apple and draft extension) may be ``contains`` (the default),
``starts-with``, ``ends-with`` or ``equals``. ``test="anyof"`` needs one of the
property-searches to match, ``allof`` (the default) all of them. At most
:data:`MAX_MATCHES` principals are answered; when more match, the multistatus
ends with a 507 response for the request-URI (``number-of-matches-within-limits``).
A property that cannot be searched matches nothing. Property elements placed beside
``DAV:prop`` instead of in it (as the caldav library does) are answered too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from plugins.dav import body, m_report, paths, principals, props, resources
from plugins.dav.errors import DavError
from plugins.dav.principals import Person
from plugins.dav.resources import Context, Item, Principal, PrincipalCollection, Resource, Root
from plugins.dav.xmlns import CALDAV, CS, DAV, tag
from plugins.dav.xmlout import (
    NSMAP,
    Element,
    element,
    multistatus,
    response,
    status_line,
    status_response,
    sub,
    xml_response,
)

D = lambda name: tag(DAV, name)  # noqa: E731

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MAX_MATCHES = 100
"""Most principals one principal-property-search answers."""
MAX_SEARCHES = 20
"""Most ``DAV:property-search`` elements in one request."""
MAX_MATCH_TEXT = 256
MAX_DEPTH = 4
"""Deepest nesting of ``DAV:property`` in an expand-property."""
MAX_PROPERTIES = 200
"""Most ``DAV:property`` elements in one expand-property."""
MAX_EXPANDED = 500
"""Most resources one expand-property expands."""

SEARCHABLE: dict[str, tuple[str, Callable[[Context, Person], list[str]]]] = {
    D("displayname"): ("Display name", lambda ctx, p: [p.display_name]),
    tag(CALDAV, "calendar-user-address-set"): (
        "Calendar user address",
        lambda ctx, p: [f"mailto:{p.address}", paths.principal_href(ctx.base, p.address)]),
    tag(CS, "email-address-set"): ("E-mail address", lambda ctx, p: [p.address]),
    tag(CS, "first-name"): (
        "First name", lambda ctx, p: [p.props.get(principals.PR_GIVEN_NAME, "")]),
    tag(CS, "last-name"): (
        "Last name", lambda ctx, p: [p.props.get(principals.PR_SURNAME, "")]),
}
"""Searchable properties: a description and the values of a person compared."""

OWN_ELEMENTS = {D("property-search"), D("prop"), D("apply-to-principal-collection-set")}
"""What a principal-property-search body holds; any other element is a property asked for."""

MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda value, text: text in value,
    "starts-with": lambda value, text: value.startswith(text),
    "ends-with": lambda value, text: value.endswith(text),
    "equals": lambda value, text: value == text,
}


# -- expand-property ----------------------------------------------------------------------------
@dataclass
class Wanted:
    """One ``DAV:property`` of an expand-property request."""

    name: str
    nested: list[Wanted] = field(default_factory=list)


def wanted_properties(parent: Element, depth: int = 0, count: list[int] | None = None
                      ) -> list[Wanted]:
    count = count if count is not None else [0]
    if depth > MAX_DEPTH:
        raise DavError(403, message=f"expand-property nests deeper than {MAX_DEPTH}")
    out: list[Wanted] = []
    for child in parent:
        if child.tag != D("property"):
            continue
        count[0] += 1
        if count[0] > MAX_PROPERTIES:
            raise DavError(403, message=f"more than {MAX_PROPERTIES} properties asked")
        local = (child.get("name") or "").strip()
        if not local:
            raise DavError(400, message="DAV:property needs a name")
        namespace = child.get("namespace", DAV)
        out.append(Wanted(tag(namespace, local), wanted_properties(child, depth + 1, count)))
    return out


async def _target(ctx: Context, href: str) -> Resource | None:
    """The resource an href names here; None when it names nothing the user may see."""
    path = urlsplit(href).path
    try:
        res = await resources.resolve(ctx, path)
    except DavError:
        return None
    if isinstance(res, Item) and res.ref is None:
        return None
    return res


def _ours(ctx: Context, href: str) -> bool:
    parts = urlsplit(href)
    return parts.scheme in ("", "http", "https") and (
        parts.path == ctx.base or parts.path.startswith(ctx.base + "/"))


async def expand(ctx: Context, res: Resource, wanted: list[Wanted], budget: list[int]
                 ) -> tuple[list[Element], list[str]]:
    """The elements of ``wanted`` on ``res`` with their hrefs expanded, and the missing."""
    nested = {w.name: w.nested for w in wanted}
    [(_, found, missing)] = await props.collect(ctx, [res], list(nested))
    out: list[Element] = []
    for value in found:
        inner = nested.get(value.tag) or []
        hrefs = [h for h in value if h.tag == D("href")]
        if not inner or not hrefs:
            out.append(value)
            continue
        expanded = element(value.tag)
        for h in hrefs:
            href = (h.text or "").strip()
            if not _ours(ctx, href):
                sub(expanded, D("href"), href)
                continue
            budget[0] -= 1
            if budget[0] < 0:
                raise DavError(507, D("number-of-matches-within-limits"),
                               f"more than {MAX_EXPANDED} resources to expand")
            target = await _target(ctx, href)
            if target is None:
                status_response(expanded, href, 404)
                continue
            sub_found, sub_missing = await expand(ctx, target, inner, budget)
            response(expanded, target.href, sub_found, {404: sub_missing})
        out.append(expanded)
    return out, missing


async def expand_property(ctx: Context, request: Request, root: Element) -> Response:
    res = await resources.resolve(ctx, body.path_of(request))
    if isinstance(res, Item) and res.ref is None:
        raise DavError(404, message="no such item")
    wanted = wanted_properties(root)
    found, missing = await expand(ctx, res, wanted, [MAX_EXPANDED])
    ms = multistatus()
    response(ms, res.href, found, {404: missing})
    return xml_response(ms)


# -- principal-property-search ------------------------------------------------------------------
@dataclass
class Search:
    names: list[str]
    text: str
    match: Callable[[str, str], bool]

    def matches(self, ctx: Context, person: Person) -> bool:
        for name in self.names:
            values = SEARCHABLE[name][1](ctx, person) if name in SEARCHABLE else []
            if any(self.match(v.casefold(), self.text) for v in values if v):
                return True
        return False


def _child(parent: Element, name: str) -> Element | None:
    for child in parent:
        if child.tag == name:
            return child
    return None


def parse_searches(root: Element) -> list[Search]:
    searches: list[Search] = []
    for ps in root:
        if ps.tag != D("property-search"):
            continue
        prop, match = _child(ps, D("prop")), _child(ps, D("match"))
        if prop is None or match is None:
            raise DavError(400, message="DAV:property-search needs DAV:prop and DAV:match")
        text = (match.text or "").strip()
        if len(text) > MAX_MATCH_TEXT:
            raise DavError(400, message="DAV:match is too long")
        kind = (match.get("match-type") or "contains").strip().lower()
        if kind not in MATCHERS:
            raise DavError(400, message=f"match-type {kind!r} is not supported")
        names = [p.tag for p in prop if isinstance(p.tag, str)]
        searches.append(Search(names, text.casefold(), MATCHERS[kind]))
        if len(searches) > MAX_SEARCHES:
            raise DavError(400, message=f"more than {MAX_SEARCHES} property-search elements")
    # No DAV:property-search at all (RFC 3744 asks for one; the caldav library sends none
    # to list everyone): every principal of the domain, within MAX_MATCHES.
    return searches


async def principal_property_search(ctx: Context, request: Request, root: Element
                                    ) -> Response:
    res = await resources.resolve(ctx, body.path_of(request))
    searches = parse_searches(root)
    anyof = (root.get("test") or "allof").strip().lower() == "anyof"
    prop = _child(root, D("prop"))
    names = [p.tag for p in prop if isinstance(p.tag, str)] if prop is not None else []
    # The caldav library (3.x) puts the properties it wants beside an empty DAV:prop.
    names += [c.tag for c in root if isinstance(c.tag, str) and c.tag not in OWN_ELEMENTS
              and c.tag not in names]
    apply = _child(root, D("apply-to-principal-collection-set")) is not None
    ms = multistatus()
    if not apply and not isinstance(res, Root | PrincipalCollection):
        return xml_response(ms)
    domain = ctx.user.rpartition("@")[2]
    combine = any if anyof and searches else all
    hits: list[Person] = []
    cut = False
    for person in await principals.domain_people(ctx.host, domain):
        if not person.is_principal:
            continue
        if combine(s.matches(ctx, person) for s in searches):
            if len(hits) == MAX_MATCHES:
                cut = True
                break
            hits.append(person)
    found = [Principal(paths.principal_href(ctx.base, p.address), p.address, p.display_name)
             for p in hits]
    for target, elements, missing in await props.collect(ctx, found, names):
        response(ms, target.href, elements, {404: missing})
    if cut:
        over = sub(ms, D("response"))
        sub(over, D("href"), res.href)
        sub(over, D("status"), status_line(507))
        sub(sub(over, D("error")), D("number-of-matches-within-limits"))
        sub(over, D("responsedescription"), f"only the first {MAX_MATCHES} matches")
    return xml_response(ms)


# -- principal-search-property-set --------------------------------------------------------------
async def principal_search_property_set(ctx: Context, request: Request, root: Element
                                        ) -> Response:
    await resources.resolve(ctx, body.path_of(request))
    out = etree.Element(D("principal-search-property-set"), nsmap=NSMAP)
    for name, (description, _) in SEARCHABLE.items():
        entry = sub(out, D("principal-search-property"))
        sub(sub(entry, D("prop")), name)
        etree.SubElement(entry, D("description"), {XML_LANG: "en"}).text = description
    return xml_response(out, status=200)


def register() -> None:
    """Add the three reports to the REPORT dispatcher."""
    m_report.register(D("expand-property"), expand_property)
    m_report.register(D("principal-property-search"), principal_property_search)
    m_report.register(D("principal-search-property-set"), principal_search_property_set)
