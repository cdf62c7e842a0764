"""Secrets at rest: vendor API keys and hand-over credentials, encrypted with Fernet (cryptography).

The key is derived from the installation's secret (`TENURE_SECRET_KEY`, or the key file in TENURE_HOME
created with mode 0600 on first run), so changing that secret makes stored secrets unreadable: keep it
with the database's backups. Plain text never reaches the database, a log line or a JSON document.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from tenure.errors import TenureError
from tenure.keys import secret_key

if TYPE_CHECKING:  # cryptography loads with the first secret sealed or unsealed, not with every page's import
    from cryptography.fernet import Fernet


def _fernet() -> Fernet:
    from cryptography.fernet import Fernet

    digest = hashlib.sha256(b"tenure.vault\0" + secret_key().encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(plain: str) -> bytes:
    return _fernet().encrypt(plain.encode())


def unseal(sealed: bytes) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return _fernet().decrypt(sealed).decode()
    except InvalidToken:
        raise TenureError("a stored secret cannot be decrypted: TENURE_SECRET_KEY (or the key file) changed "
                          "since it was stored; set the secret again with `tenure account set-secret`") from None
