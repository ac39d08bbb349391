"""Content-addressed, zstd-compressed blobs of one store, de-duplicated by SHA-256.

Large property values (bodies, attachment data) and the original bytes of
Internet messages live here rather than in property rows. A blob whose
compressed form is small stays in the store database (``blobs.data``); a
larger one is a file ``blobs/ab/abcdef….zst`` beside it, written to a
temporary name, fsynced and renamed before the transaction that references it
commits. References are counted; a file is unlinked only after the
transaction that dropped its last reference committed, so a crash can leave an
orphan file (``check`` lists them) but never a dangling reference.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

from gateway.store.errors import CorruptStore

CHUNK = 64 * 1024
INLINE_LIMIT = 32 * 1024
"""Compressed blobs up to this size stay in the database."""
_LEVEL = 3


class BlobStore:
    """The blobs of one store. Used from the store's own threads only."""

    def __init__(self, root: Path, inline_limit: int = INLINE_LIMIT):
        self.root = root / "blobs"
        self.inline_limit = inline_limit
        self._compressor = zstandard.ZstdCompressor(level=_LEVEL)
        self._decompressor = zstandard.ZstdDecompressor()
        self.written: list[Path] = []
        """Files written by the current write transaction (unlinked again if it fails)."""

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / f"{digest}.zst"

    def put(self, conn: sqlite3.Connection, data: bytes) -> str:
        """Store ``data`` (or add a reference to the same bytes); returns its hash."""
        digest = hashlib.sha256(data).hexdigest()
        if self._add_reference(conn, digest):
            return digest
        packed = self._compressor.compress(data)
        if len(packed) <= self.inline_limit:
            conn.execute("INSERT INTO blobs (hash, size, refcount, data) VALUES (?, ?, 1, ?)",
                         (digest, len(data), packed))
        else:
            self._write_file(digest, [packed])
            conn.execute("INSERT INTO blobs (hash, size, refcount, data) VALUES (?, ?, 1, NULL)",
                         (digest, len(data)))
        return digest

    def put_stream(self, conn: sqlite3.Connection, chunks: Iterator[bytes],
                   max_size: int | None = None) -> tuple[str, int]:
        """Store a value arriving in chunks, never holding it whole; ``(hash, size)``."""
        self.root.mkdir(parents=True, exist_ok=True)
        hasher, size = hashlib.sha256(), 0
        fd, temp = tempfile.mkstemp(dir=self.root, prefix=".in-")
        try:
            with os.fdopen(fd, "wb") as raw:
                writer = self._compressor.stream_writer(raw, closefd=False)
                for chunk in chunks:
                    size += len(chunk)
                    if max_size is not None and size > max_size:
                        from gateway.store.errors import TooBig
                        raise TooBig(f"value larger than {max_size} bytes")
                    hasher.update(chunk)
                    writer.write(chunk)
                writer.flush(zstandard.FLUSH_FRAME)
                raw.flush()
                os.fsync(raw.fileno())
            digest = hasher.hexdigest()
            if self._add_reference(conn, digest):
                return digest, size
            target = self.path(digest)
            target.parent.mkdir(exist_ok=True)
            os.replace(temp, target)
            temp = ""
            self.written.append(target)
            _fsync_dir(target.parent)
            conn.execute("INSERT INTO blobs (hash, size, refcount, data) VALUES (?, ?, 1, NULL)",
                         (digest, size))
            return digest, size
        finally:
            if temp:
                os.unlink(temp)

    def _add_reference(self, conn: sqlite3.Connection, digest: str) -> bool:
        cursor = conn.execute("UPDATE blobs SET refcount = refcount + 1 WHERE hash = ?", (digest,))
        return cursor.rowcount > 0

    def _write_file(self, digest: str, parts: list[bytes]) -> None:
        def write(out: BinaryIO) -> None:
            for part in parts:
                out.write(part)
        self._install(digest, write)

    def adopt_file(self, conn: sqlite3.Connection, digest: str, size: int, source: Path) -> None:
        """Take in another store's blob file as it is (compressed), for a new reference."""
        self._install(digest, lambda out: _copy(source, out))
        conn.execute("INSERT INTO blobs (hash, size, refcount, data) VALUES (?, ?, 1, NULL)",
                     (digest, size))

    def _install(self, digest: str, write: Callable[[BinaryIO], None]) -> None:
        """Write a blob file: a temporary name, fsync, rename, fsync of the directory."""
        target = self.path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".in-")
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            os.unlink(temp)
            raise
        self.written.append(target)
        _fsync_dir(target.parent)

    def release(self, conn: sqlite3.Connection, digest: str, doomed: list[Path]) -> None:
        """Drop one reference; a file losing its last one goes on ``doomed`` (unlinked later)."""
        row = conn.execute("SELECT refcount, data IS NULL FROM blobs WHERE hash = ?",
                           (digest,)).fetchone()
        if row is None:
            return
        if row[0] > 1:
            conn.execute("UPDATE blobs SET refcount = refcount - 1 WHERE hash = ?", (digest,))
            return
        conn.execute("DELETE FROM blobs WHERE hash = ?", (digest,))
        if row[1]:
            doomed.append(self.path(digest))

    def size(self, conn: sqlite3.Connection, digest: str) -> int:
        row = conn.execute("SELECT size FROM blobs WHERE hash = ?", (digest,)).fetchone()
        if row is None:
            raise CorruptStore(f"blob {digest} is referenced but missing")
        return int(row[0])

    def get(self, conn: sqlite3.Connection, digest: str) -> bytes:
        return b"".join(self.iter_chunks(conn, digest))

    def iter_chunks(self, conn: sqlite3.Connection, digest: str,
                    chunk_size: int = CHUNK) -> Iterator[bytes]:
        """The blob's bytes in chunks of at most ``chunk_size``; files are streamed."""
        row = conn.execute("SELECT data FROM blobs WHERE hash = ?", (digest,)).fetchone()
        if row is None:
            raise CorruptStore(f"blob {digest} is referenced but missing")
        if row[0] is not None:
            data = self._decompressor.decompress(row[0])
            for start in range(0, len(data), chunk_size):
                yield data[start:start + chunk_size]
            if not data:
                yield b""
            return
        yield from self.iter_file(digest, chunk_size)

    def iter_file(self, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        try:
            handle: BinaryIO = open(self.path(digest), "rb")
        except FileNotFoundError:
            raise CorruptStore(f"blob file {self.path(digest)} is missing") from None
        with handle, self._decompressor.stream_reader(handle) as reader:
            while chunk := reader.read(chunk_size):
                yield chunk

    def files(self) -> Iterator[str]:
        """Hashes of the blob files on disk (for consistency checks)."""
        if not self.root.exists():
            return
        for sub in self.root.iterdir():
            if sub.is_dir():
                for path in sub.glob("*.zst"):
                    yield path.name.removesuffix(".zst")


def _copy(source: Path, out: BinaryIO) -> None:
    with open(source, "rb") as handle:
        shutil.copyfileobj(handle, out, CHUNK * 16)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
