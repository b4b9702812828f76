"""Atomic result writing: files appear complete or not at all; nothing is silently overwritten."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Self

from smartnet_gym.errors import ConfigError


class OutputDir:
    """Stage every file in a temporary sibling folder, then move it into place on :meth:`commit`.

    An existing non-empty folder is refused unless ``force``; on error nothing is left behind.
    """

    def __init__(self, path: str | Path, force: bool = False):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {str(self.path)!r} exists and is not a folder")
        if self.path.is_dir() and any(self.path.iterdir()) and not force:
            raise ConfigError(f"--out {str(self.path)!r} exists and is not empty; use --force to overwrite")
        parent = self.path.resolve().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=parent))
        except OSError as e:
            raise ConfigError(f"--out {str(self.path)!r} is not writable: {e.strerror}") from None

    def write(self, name: str, writer: Callable[[Path], None]) -> Path:
        """Call ``writer(tmp_path)`` to produce file ``name``."""
        target = self.tmp / name
        writer(target)
        return target

    def write_json(self, name: str, data: dict) -> Path:
        return self.write(name, lambda p: p.write_text(json.dumps(data, indent=2, default=float)))

    def commit(self) -> Path:
        """Move the staged files into the output folder (each move is atomic)."""
        self.path.mkdir(parents=True, exist_ok=True)
        for f in self.tmp.iterdir():
            os.replace(f, self.path / f.name)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return self.path

    def discard(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.resolve().parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)   # mkstemp makes 0600; give the file the usual permissions
    os.replace(tmp, path)
