"""Deterministic file writers (JSON lines, CSV, gzip with mtime 0) and the
run summary they feed."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Summary:
    """What a run wrote. `quirks` counts every injected messy-delivery quirk."""

    files: int = 0
    rows: int = 0
    bytes: int = 0
    rows_by_kind: Counter = field(default_factory=Counter)
    quirks: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, kind: str, rows: int, nbytes: int) -> None:
        self.files += 1
        self.rows += rows
        self.bytes += nbytes
        self.rows_by_kind[kind] += rows

    def merge(self, other: Summary) -> None:
        self.files += other.files
        self.rows += other.rows
        self.bytes += other.bytes
        self.rows_by_kind.update(other.rows_by_kind)
        self.quirks.update(other.quirks)

    def format(self) -> str:
        lines = [
            f"files {self.files:,}  rows {self.rows:,}  bytes {self.bytes:,}"
            f"  ({self.seconds:.1f} s)"
        ]
        for kind, rows in sorted(self.rows_by_kind.items()):
            lines.append(f"  {kind:<22} {rows:>14,} rows")
        if self.quirks:
            lines.append("quirks injected:")
            for name, count in sorted(self.quirks.items()):
                lines.append(f"  {name:<22} {count:>14,}")
        return "\n".join(lines)


def write_bytes(path: Path, data: bytes) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)  # a reader never sees half a file
    return len(data)


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def _chunks(lines, size: int = 50_000):
    buf: list[str] = []
    for line in lines:
        buf.append(line)
        if len(buf) >= size:
            yield "".join(buf).encode("utf-8"), len(buf)
            buf = []
    if buf:
        yield "".join(buf).encode("utf-8"), len(buf)


def write_jsonl(path: Path, columns: list[str], rows) -> tuple[int, int]:
    """Stream rows (tuples in `columns` order) as JSON lines with exactly these
    keys. Returns (rows, bytes)."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines = (dumps(dict(zip(columns, row, strict=True))) + "\n" for row in rows)
    return _write_stream(path, _chunks(lines), None)


def write_csv(path: Path, columns: list[str], rows, gzip_level: int | None) -> tuple[int, int]:
    """Stream rows as CSV with a header row, gzipped (mtime 0) unless level is None.
    Returns (rows, bytes)."""
    lines = (",".join(csv_field(v) for v in row) + "\n" for row in rows)
    header = [(",".join(columns) + "\n").encode(), 0]
    return _write_stream(path, _prepend(tuple(header), _chunks(lines)), gzip_level)


def _prepend(first, rest):
    yield first
    yield from rest


def _write_stream(path: Path, chunks, gzip_level: int | None) -> tuple[int, int]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    rows = 0
    with open(tmp, "wb") as raw:
        if gzip_level is None:
            for data, n in chunks:
                raw.write(data)
                rows += n
        else:
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=gzip_level, mtime=0
            ) as gz:
                for data, n in chunks:
                    gz.write(data)
                    rows += n
    tmp.replace(path)
    return rows, path.stat().st_size


def csv_field(value) -> str:
    if value is None:
        return ""
    text = str(value)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text
