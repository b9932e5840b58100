"""Find new source files and copy them into the immutable landing zone.

Which files are new is decided by the manifest (``audit.source_files``), not
by the calendar: one run catches up any backlog, and a file that arrives days
late is picked up the first night it is there.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rto.ingest.sources import FileSpec, match

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# Files above this size are refused (and recorded), not copied: a runaway or hostile
# delivery must not fill the landing disk. Override with RTO_MAX_FILE_BYTES.
DEFAULT_MAX_FILE_BYTES = 8 << 30


def max_file_bytes() -> int:
    import os

    return int(os.environ.get("RTO_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES))


class LandingConflict(RuntimeError):
    """A file in the landing zone differs from the source file of the same path."""


@dataclass(frozen=True)
class SourceFile:
    source_path: str  # relative to the source root, posix separators
    spec: FileSpec
    delivery_date: date
    size: int


@dataclass(frozen=True)
class LandedFile:
    file_id: str
    source_path: str
    spec: FileSpec
    delivery_date: date
    landing_path: Path
    sha256: str
    bytes: int


def file_id_for(source_path: str, sha256: str) -> str:
    """Stable id of one delivered file: its path and content (empty files share content)."""
    return hashlib.sha256(f"{source_path}\n{sha256}".encode()).hexdigest()[:20]


def _filesystem(source_root: str):
    import fsspec

    fs, root = fsspec.core.url_to_fs(source_root)
    return fs, root.rstrip("/")


def discover(source_root: str, source: str) -> list[SourceFile]:
    """List every file of one source (hr, badge, layoffs) under the source root.

    Only paths of the shapes in DOMAIN.md section 3 are accepted (so no ``..`` and no
    absolute path can get through), and on a local source root a symbolic link is refused:
    nothing outside the source root is ever read.
    """
    import os

    fs, root = _filesystem(source_root)
    base = posixpath.join(root, source)
    if not fs.exists(base):
        log.warning("source root %s has no %s/ folder yet", source_root, source)
        return []
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    real_root = os.path.realpath(root) if local else None
    found = []
    for full, info in sorted(fs.find(base, detail=True).items()):
        relative = posixpath.relpath(full, root)
        matched = match(relative)
        if matched is None:
            log.warning("ignoring %s: not a file of DOMAIN.md section 3", relative)
            continue
        if local and (
            os.path.islink(full) or not os.path.realpath(full).startswith(real_root + os.sep)
        ):
            log.error("refusing %s: a symbolic link; sources must be plain files", relative)
            continue
        spec, delivery = matched
        if spec.source != source:
            continue
        found.append(SourceFile(relative, spec, delivery, int(info.get("size") or 0)))
    return found


def new_files(con: duckdb.DuckDBPyConnection, files: list[SourceFile]) -> list[SourceFile]:
    """The files the manifest has not seen; warns when a known path changed size."""
    known = dict(con.execute("select source_path, bytes from audit.source_files").fetchall())
    fresh = []
    for f in files:
        if f.source_path not in known:
            fresh.append(f)
        elif f.size and known[f.source_path] != f.size:
            log.warning(
                "%s was already pulled with %s bytes and now has %s: deliveries are immutable, "
                "send a correction as a new file; the changed file is ignored",
                f.source_path,
                known[f.source_path],
                f.size,
            )
    return fresh


class FileTooLarge(ValueError):
    """A source file exceeds RTO_MAX_FILE_BYTES."""


def land(source_root: str, landing_root: Path, f: SourceFile) -> LandedFile:
    """Copy one file into the landing zone, hashing it on the way.

    The landing zone is write-once: an existing landed copy is kept when its
    content is identical and is a hard error when it differs.
    """
    limit = max_file_bytes()
    if f.size > limit:
        raise FileTooLarge(
            f"{f.source_path} has {f.size} bytes, over the limit of {limit} "
            "(RTO_MAX_FILE_BYTES): refused, not copied"
        )
    fs, root = _filesystem(source_root)
    target = (landing_root / f.source_path).resolve()
    if not target.is_relative_to(landing_root.resolve()):
        raise ValueError(f"{f.source_path} would land outside {landing_root}; refused")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    size = 0
    with fs.open(posixpath.join(root, f.source_path), "rb") as src, open(partial, "wb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
            if size > limit:  # the listing may have understated it
                break
    if size > limit:
        partial.unlink()
        raise FileTooLarge(f"{f.source_path} grew past {limit} bytes while copying: refused")
    sha = digest.hexdigest()
    if target.exists():
        existing = hashlib.sha256(target.read_bytes()).hexdigest()
        partial.unlink()
        if existing != sha:
            raise LandingConflict(
                f"{target} already holds a different version of {f.source_path}; the landing "
                "zone is immutable. Deliver the correction under a new path."
            )
    else:
        partial.rename(target)
    return LandedFile(
        file_id_for(f.source_path, sha), f.source_path, f.spec, f.delivery_date, target, sha, size
    )


def record_refused(
    con: duckdb.DuckDBPyConnection, f: SourceFile, reason: str, run_id: str, pulled_at: datetime
) -> None:
    """Record a file that was not copied, so it is visible in the audit and not retried."""
    con.execute("delete from audit.source_files where source_path = ?", [f.source_path])
    con.execute(
        """
        insert into audit.source_files (file_id, source, entity, source_path, delivery_date,
            landing_path, sha256, bytes, status, message, pulled_at, run_id)
        values (?, ?, ?, ?, ?, '', '', ?, 'refused', ?, ?, ?)
        """,
        [
            file_id_for(f.source_path, f"refused:{f.size}"),
            f.spec.source,
            f.spec.entity,
            f.source_path,
            f.delivery_date,
            f.size,
            reason,
            pulled_at,
            run_id,
        ],
    )


def record_landed(
    con: duckdb.DuckDBPyConnection, landed: LandedFile, run_id: str, pulled_at: datetime
) -> None:
    """Upsert the manifest row of a landed file (a rerun of the same run rewrites it)."""
    con.execute("delete from audit.source_files where source_path = ?", [landed.source_path])
    con.execute(
        """
        insert into audit.source_files (file_id, source, entity, source_path, delivery_date,
            landing_path, sha256, bytes, status, pulled_at, run_id)
        values (?, ?, ?, ?, ?, ?, ?, ?, 'landed', ?, ?)
        """,
        [
            landed.file_id,
            landed.spec.source,
            landed.spec.entity,
            landed.source_path,
            landed.delivery_date,
            f"landing/{landed.source_path}",
            landed.sha256,
            landed.bytes,
            pulled_at,
            run_id,
        ],
    )
