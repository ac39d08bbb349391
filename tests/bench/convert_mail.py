"""Internet mail conversion speed (``python -m tests.bench.convert_mail``).

The samples of ``tests/corpus/mail/`` (Outlook, Gmail, Apple Mail, Thunderbird,
phones, S/MIME, reports, TNEF; 3 KB median, one 210 KB) are replicated to a
few thousand messages and timed, one core:

- MIME → MAPI: :func:`gateway.convert.mime_in.parse` (bodies decoded,
  attachments and embedded messages built, envelope properties);
- MAPI → MIME: :func:`gateway.convert.mime_out.render` of the parsed messages
  with ``mime`` dropped (so the MIME is built from the properties);
- the standard library alone on the same bytes:
  ``email.message_from_bytes(raw, policy=email.policy.default)`` and a walk
  over its parts decoding each leaf payload (and the same under ``compat32``,
  the stdlib's fastest policy, for reference).

Printed: messages per second for each, and ours over the stdlib's (``default``).
"""

from __future__ import annotations

import argparse
import email
import time
from email import policy
from pathlib import Path

from gateway.convert.mime_in import parse
from gateway.convert.mime_out import render
from gateway.store import NewMessage

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "mail"


def corpus(copies: int) -> list[bytes]:
    samples = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
    return samples * copies


def _strip(message: NewMessage) -> NewMessage:
    message.mime = None
    for attachment in message.attachments:
        if attachment.embedded is not None:
            _strip(attachment.embedded)
    return message


def _stdlib(raw: bytes, use: policy.Policy = policy.default) -> int:
    msg = email.message_from_bytes(raw, policy=use)
    parts = 0
    for part in msg.walk():
        part.get_content_type()
        if not part.is_multipart():
            part.get_payload(decode=True)
        parts += 1
    return parts


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def run(copies: int | None = None, messages: int = 3000) -> dict[str, float]:
    """Time the three conversions over ``copies`` replicas of the corpus (default: enough
    for about ``messages`` messages); returns messages per second and the ratios."""
    samples = corpus(1)
    raws = corpus(copies or max(1, messages // len(samples)))
    total = sum(len(raw) for raw in raws)

    started = time.perf_counter()
    parsed = [parse(raw) for raw in raws]
    mime_to_mapi = time.perf_counter() - started

    built = [_strip(message) for message in parsed]
    started = time.perf_counter()
    for message in built:
        render(message)
    mapi_to_mime = time.perf_counter() - started

    started = time.perf_counter()
    for raw in raws:
        _stdlib(raw)
    stdlib = time.perf_counter() - started

    started = time.perf_counter()
    for raw in raws:
        _stdlib(raw, policy.compat32)
    compat32 = time.perf_counter() - started

    figures = {
        "messages": float(len(raws)),
        "megabytes": total / 1e6,
        "mime_to_mapi_per_s": _rate(len(raws), mime_to_mapi),
        "mapi_to_mime_per_s": _rate(len(raws), mapi_to_mime),
        "stdlib_per_s": _rate(len(raws), stdlib),
        "stdlib_compat32_per_s": _rate(len(raws), compat32),
    }
    figures["parse_vs_stdlib"] = figures["mime_to_mapi_per_s"] / figures["stdlib_per_s"]
    figures["render_vs_stdlib"] = figures["mapi_to_mime_per_s"] / figures["stdlib_per_s"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    args = parser.parse_args()
    figures = run(messages=args.messages)
    print(f"{int(figures['messages'])} messages, {figures['megabytes']:.1f} MB")
    print(f"MIME -> MAPI (parse)             {figures['mime_to_mapi_per_s']:9.0f} msg/s")
    print(f"MAPI -> MIME (render, no mime)   {figures['mapi_to_mime_per_s']:9.0f} msg/s")
    print(f"stdlib parse + walk (default)    {figures['stdlib_per_s']:9.0f} msg/s")
    print(f"stdlib parse + walk (compat32)   {figures['stdlib_compat32_per_s']:9.0f} msg/s")
    print(f"ratio parse/stdlib  {figures['parse_vs_stdlib']:.2f}x   "
          f"render/stdlib  {figures['render_vs_stdlib']:.2f}x")


if __name__ == "__main__":
    main()
