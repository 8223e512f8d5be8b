"""Tokens at rest: Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`, with key rotation.

`SYNC_ASSETS_ENCRYPTION_KEYS` holds one or more Fernet keys, comma-separated, newest first.
New values are encrypted with the first; every key can decrypt. To rotate: prepend a new key
(`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`),
deploy, run `sync-assets rotate-keys` (re-encrypts every token with the newest key), then drop
the old key. The embedded default creates a key file next to its database when none is set.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from sync_assets.core.errors import ErrorType, SyncError
from sync_assets.core.files import create_text_once

KEYS_ENV = "SYNC_ASSETS_ENCRYPTION_KEYS"


class TokenCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SyncError(
                ErrorType.CONFIGURATION, f"no encryption key: set {KEYS_ENV}", retryable=False
            )
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except ValueError:
            raise SyncError(
                ErrorType.CONFIGURATION,
                f"{KEYS_ENV} holds a value that is not a Fernet key",
                retryable=False,
            ) from None

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SyncError(
                ErrorType.CONFIGURATION,
                f"a stored token cannot be decrypted with the configured keys ({KEYS_ENV})",
                retryable=False,
            ) from None

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()


class EnvTokenCipher(TokenCipher):
    """The keys of `SYNC_ASSETS_ENCRYPTION_KEYS`, read when a token is first encrypted or
    decrypted: a command that reads no token (`status`, the metrics) needs no key."""

    def __init__(self) -> None:  # the keys are read on first use
        self._cipher: TokenCipher | None = None

    def _keys(self) -> TokenCipher:
        if self._cipher is None:
            self._cipher = TokenCipher(keys_from_env())
        return self._cipher

    def encrypt(self, plain: str) -> str:
        return self._keys().encrypt(plain)

    def decrypt(self, token: str) -> str:
        return self._keys().decrypt(token)

    def rotate(self, token: str) -> str:
        return self._keys().rotate(token)


def keys_from_env() -> list[str]:
    return [k for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]


def local_cipher(key_file: Path) -> TokenCipher:
    """The embedded default: the env keys if set, else a key file created on first use."""
    keys = keys_from_env()
    if keys:
        return TokenCipher(keys)
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        # Two first commands at once: one key wins, both read it whole.
        create_text_once(key_file, Fernet.generate_key().decode(), mode=0o600)
    return TokenCipher([key_file.read_text().strip()])
