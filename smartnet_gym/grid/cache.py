"""On-disk cache of built objects: pickles named by a content hash, written atomically.

The folder is ``$SMARTNET_GYM_CACHE`` or ``~/.cache/smartnet_gym``. A file is written to a
temporary name in the same folder and moved into place with ``os.replace``, so concurrent
builders (e.g. SubprocVecEnv workers) never read a half-written pickle. An unreadable file is
treated as a miss and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ENV_VAR = "SMARTNET_GYM_CACHE"
T = TypeVar("T")
log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The cache folder (created on demand)."""
    path = Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "smartnet_gym")
    path.mkdir(parents=True, exist_ok=True)
    return path


def digest(*parts: Any) -> str:
    """Stable sha256 hex digest of JSON-serialisable parts (tuples become lists)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def load(name: str) -> Any | None:
    """The object stored under ``name``, or None on a miss or an unreadable file."""
    path = cache_dir() / name
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            return pickle.load(f)
    except Exception as e:  # noqa: BLE001 - corrupt/stale pickle (e.g. a class changed): rebuild
        log.warning("ignoring unreadable cache file %s (%s: %s)", path, type(e).__name__, e)
        return None


def store(name: str, obj: Any) -> Path:
    """Pickle ``obj`` under ``name`` atomically (temporary file, then ``os.replace``)."""
    folder = cache_dir()
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; cached systems are not secret
        os.replace(tmp, folder / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return folder / name


def cached(name: str, builder: Callable[[], T], use_cache: bool = True) -> T:
    """Load ``name`` from the cache, or build it, store it and return it."""
    if use_cache:
        obj = load(name)
        if obj is not None:
            return obj
    obj = builder()
    if use_cache:
        try:
            store(name, obj)
        except OSError as e:  # read-only or full disk: still return the built object
            log.warning("could not write cache file %s (%s)", name, e)
    return obj
