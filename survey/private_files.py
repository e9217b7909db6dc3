"""Folders and files under the instance folder that only the server's own user may read.

Pending questionnaire uploads, cached PDF reports, export files and report photos hold what
residents and staff sent: they are made 0700 (folders) and 0600 (files) whatever the umask, and a
folder left readable by an earlier version is closed again when next used.
"""
from __future__ import annotations

import itertools
import os
import stat
import tempfile
from pathlib import Path


def private_folder(path: Path) -> Path:
    """Make ``path`` (and missing parents, each 0700 too) a folder only its owner may enter; return it."""
    missing = list(itertools.takewhile(lambda folder: not folder.exists(), (path, *path.parents)))
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (a temporary file renamed), readable by its owner only."""
    fd, temporary = tempfile.mkstemp(dir=private_folder(path.parent), suffix=".part")  # mkstemp makes it 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def private_file(path: Path) -> Path:
    """Create ``path`` empty and readable by its owner only, for a writer that opens it by name (it keeps the mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode under O_CREAT
    os.close(fd)
    return path
