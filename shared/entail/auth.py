"""API keys: each maps to a tenant and scopes; only the SHA-256 of a key is stored.

Keys come from settings: ``ENTAIL_API_KEYS_FILE`` (a JSON file) or
``ENTAIL_API_KEYS_JSON`` (the same JSON in a variable), a list of
``{"id": "ci", "sha256": "<hex>", "tenant": "acme", "scopes": ["decide"]}``.
``entail keys new --tenant acme --scope decide`` prints a fresh key and its entry.

The keys file is read again when it changes (its modification time, size or
inode, looked at no more often than every ``ENTAIL_API_KEYS_RELOAD_S`` seconds;
0 turns this off): a key added or removed there works, or stops working, within
that time, without a restart. A file that no longer parses (or has gone) is
logged and the keys read last stay in force, so a half-written edit locks no
one out; write the new file beside the old one and rename it over.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .settings import Settings

SCOPES = ("decide", "author", "audit", "admin")

log = logging.getLogger("entail.auth")


class KeyConfigError(ValueError):
    """The configured key list is malformed."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    sha256: str
    tenant: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "tenant": self.tenant, "scopes": sorted(self.scopes)}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "ent_" + secrets.token_urlsafe(32)


def key_entry(key: str, key_id: str, tenant: str, scopes: list[str]) -> dict[str, Any]:
    return {"id": key_id, "sha256": hash_key(key), "tenant": tenant, "scopes": sorted(scopes)}


class KeyRing:
    """Looks a presented key up by its hash, in constant time per entry; made by
    :meth:`from_settings`, it follows changes of the keys file."""

    def __init__(self, keys: list[ApiKey], *, settings: Settings | None = None) -> None:
        self._by_hash = {k.sha256: k for k in keys}
        self._settings = settings
        self._file = Path(settings.api_keys_file) if settings and settings.api_keys_file else None
        self._reload_s = settings.api_keys_reload_s if settings else 0.0
        self._seen = _signature(self._file) if self._file else None
        self._checked = time.monotonic()

    def __len__(self) -> int:
        self._follow_file()
        return len(self._by_hash)

    def lookup(self, presented: str) -> ApiKey | None:
        self._follow_file()
        digest = hash_key(presented)
        for stored, key in self._by_hash.items():
            if hmac.compare_digest(stored, digest):
                return key
        return None

    def _follow_file(self) -> None:
        """Re-read the keys file when it changed since it was last read."""
        if self._file is None or self._settings is None or self._reload_s <= 0:
            return
        now = time.monotonic()
        if now - self._checked < self._reload_s:
            return
        self._checked = now
        seen = _signature(self._file)
        if seen == self._seen:
            return
        try:
            keys = _load(self._settings)
        except KeyConfigError as exc:
            log.error("keys file changed but cannot be used; the previous keys stay in force: %s", exc)
            return
        self._seen = seen
        self._by_hash = {k.sha256: k for k in keys}
        log.info("keys file %s reloaded: %d key(s)", self._file, len(keys))

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        return cls(_load(settings), settings=settings)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _load(settings: Settings) -> list[ApiKey]:
    """The keys of ENTAIL_API_KEYS_FILE and ENTAIL_API_KEYS_JSON; KeyConfigError if malformed."""
    entries: list[Any] = []
    if settings.api_keys_file is not None:
        try:
            entries += _entries(json.loads(Path(settings.api_keys_file).read_text()), "api_keys_file")
        except (OSError, json.JSONDecodeError) as exc:
            raise KeyConfigError(f"ENTAIL_API_KEYS_FILE {settings.api_keys_file}: {exc}") from None
    if settings.api_keys_json:
        try:
            entries += _entries(json.loads(settings.api_keys_json), "api_keys_json")
        except json.JSONDecodeError as exc:
            raise KeyConfigError(f"ENTAIL_API_KEYS_JSON: {exc}") from None
    return [_parse(e, i) for i, e in enumerate(entries)]


def _entries(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise KeyConfigError(f"{where}: expected a JSON list of key entries")
    return data


def _parse(entry: Any, index: int) -> ApiKey:
    if not isinstance(entry, dict):
        raise KeyConfigError(f"key entry {index}: expected an object")
    try:
        key_id, digest, tenant, scopes = entry["id"], entry["sha256"], entry["tenant"], entry["scopes"]
    except KeyError as exc:
        raise KeyConfigError(f"key entry {index}: missing {exc.args[0]!r}") from None
    if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise KeyConfigError(f"key entry {index} ({key_id}): 'sha256' must be 64 lower-case hex digits")
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise KeyConfigError(f"key entry {index} ({key_id}): unknown scope(s) {sorted(unknown)}")
    return ApiKey(str(key_id), digest, str(tenant), frozenset(scopes))
