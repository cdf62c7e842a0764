"""The installation's secret: `TENURE_SECRET_KEY`, or a random key kept in `TENURE_HOME/secret.key`.

The key file is created on first use with mode 0600, atomically (two processes starting at once end up
with the same key). Signed links and sealed secrets are derived from it: changing it invalidates every
link handed out and makes stored secrets unreadable, so keep it with the database's backups.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from pathlib import Path

from tenure.errors import TenureError
from tenure.settings import get_settings

KEY_FILE = "secret.key"

_lock = threading.Lock()
_keys: dict[str, str] = {}


def secret_key() -> str:
    configured = os.environ.get("TENURE_SECRET_KEY")
    if configured:
        return configured
    path = Path(os.environ.get("TENURE_HOME") or get_settings().home) / KEY_FILE
    with _lock:
        if str(path) not in _keys:
            _keys[str(path)] = _read_or_create(path)
        return _keys[str(path)]


def _read_or_create(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # the data directory: its owner's only
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
            with contextlib.suppress(FileExistsError):  # another process made it first: theirs wins
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    key = path.read_text().strip()
    if len(key) < 32:
        raise TenureError(f"{path}: the secret key is too short (delete the file to make a new one)")
    return key
