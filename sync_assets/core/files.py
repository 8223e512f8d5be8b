"""Files written so that a concurrent reader or writer never sees half of one.

Two processes of this project may write the same file at once (two `sync-assets` commands
starting on a fresh folder, two runs of one partition): each writes a temporary file of its
own name beside the target and moves it over the target in one atomic step (`os.replace`,
a rename within the folder), so the target is always a whole file, the last writer's.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def temporary_beside(path: Path | str) -> str:
    """A name of its own for a temporary file in `path`'s folder (same filesystem)."""
    return f"{path}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp"


def _write_aside(path: Path, text: str, mode: int) -> str:
    """`text` in a new temporary file beside `path`, on disk; its name (the caller removes
    it). Nothing is left behind when writing fails."""
    tmp = temporary_beside(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return tmp


def write_text_atomically(path: Path, text: str, *, mode: int = 0o644) -> None:
    """`path` holds `text` (whole); nobody ever reads a part of it."""
    tmp = None
    try:
        tmp = _write_aside(path, text, mode)
        os.replace(tmp, path)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def create_text_once(path: Path, text: str, *, mode: int = 0o600) -> bool:
    """Create `path` holding `text` unless it exists; False when another writer was first
    (its file stays, whole). Never a half-written file for a reader: written aside, then
    linked in place (`os.link` fails when the name exists)."""
    tmp = None
    try:
        tmp = _write_aside(path, text, mode)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
