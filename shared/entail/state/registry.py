"""Ruleset registry: versions per tenant and name, sources by hash, tags.

Versions are numbered from 1 per (tenant, name). Publishing is one Lua script,
so concurrent publishes get distinct versions and the same source twice gets
the existing version back.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import redis.asyncio as aioredis
from pydantic import BaseModel

from ..models import RulesetVersion, utcnow
from . import keys
from .durability import Durability

NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")
TAG_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")
HASH_RE = re.compile(r"[0-9a-f]{64}\Z")
VERSION_RE = re.compile(r"[0-9]{1,15}\Z")


# names the API's paths give to actions: a ruleset so named could not be read
# (GET /v1/rulesets/validate is the validate action's 405)
RESERVED_NAMES = frozenset({"validate", "evaluate"})


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a ruleset, or None: the one check every entry point
    (the API's request models, the registry, the CLI) applies."""
    if name in RESERVED_NAMES:
        return f"{name!r} is reserved: it names an action of the API (POST /v1/rulesets/{name})"
    if NAME_RE.match(name) and not HASH_RE.match(name):
        return None
    return (
        f"invalid ruleset name {name!r}: letters, digits, '_', '.', '-'; start with a letter "
        "(at most 64, and not a 64-digit hex hash, which would read as a version hash)"
    )


class RegistryFull(Exception):
    """A per-ruleset cap (``ENTAIL_RULESET_MAX_VERSIONS`` / ``_MAX_TAGS``) is reached."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"the ruleset has the most {what} allowed ({limit})")
        self.what, self.limit = what, limit


class RulesetSummary(BaseModel):
    name: str
    latest: int
    tags: dict[str, int]
    updated_at: str


class TagMove(BaseModel):
    tag: str
    version: int
    previous: int | None
    moved_by: str
    moved_at: str


# KEYS: versions, bysource, names, hashes, src, byhash, publish token
# ARGV: name, hash, version JSON with "version":0 (filled in here), source,
#       identity (hash + masking options: the same source with another mask is a new version),
#       a random token of this call, the most versions allowed ({-1, ''} past it)
# A latest version created under this call's token is this call retried after a
# lost reply: reported as created.
_PUBLISH = """
-- fill in the version without a decode/encode round trip (cjson turns [] into {})
local function fill(template, version)
  local marker = ',"version":0,'
  local at = string.find(template, marker, 1, true)
  return string.sub(template, 1, at - 1) .. ',"version":' .. version .. ','
    .. string.sub(template, at + #marker)
end
local existing = redis.call('HGET', KEYS[2], ARGV[5])
if existing then
  local latest = redis.call('HGET', KEYS[3], ARGV[1])
  if latest == existing then
    local stored = redis.call('HGET', KEYS[1], existing)
    if redis.call('GET', KEYS[7]) == ARGV[6] then return {1, stored} end
    return {0, stored}
  end
end
local version = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0') + 1
if version > tonumber(ARGV[7]) then return {-1, ''} end
local text = fill(ARGV[3], version)
redis.call('HSET', KEYS[1], tostring(version), text)
redis.call('HSET', KEYS[2], ARGV[5], tostring(version))
redis.call('HSET', KEYS[3], ARGV[1], tostring(version))
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('SET', KEYS[5], ARGV[4])
redis.call('HSET', KEYS[6], ARGV[2], ARGV[1] .. '@' .. version)
redis.call('SET', KEYS[7], ARGV[6])
return {1, text}
"""

# KEYS: tags, taglog, versions; ARGV: tag, version, move JSON template, most tags.
# Returns the move as JSON, false when there is no such version, '!full' for a
# new tag past the most tags. A newest
# move with this call's tag, version, author and time is this call retried after
# a lost reply: returned as it is, not logged twice.
# A name's latest version in one round trip (was two HGETs, one after the other):
# both keys are known beforehand, the tenant's index of names and the name's versions
_LATEST = """
local latest = redis.call('HGET', KEYS[1], ARGV[1])
if not latest then return false end
return redis.call('HGET', KEYS[2], latest)
"""

# A version named by reference to its name (``name``, ``name@latest``, ``name@3``,
# ``name@tag``), resolved where the keys are: a Lua function that this module's
# resolve script and the decision routes' rate limit + resolve
# (entail.state.ratelimit.RateLimiter.take_resolving) both call, so a decision
# pays one round trip for its token and its version. KEYS of the caller: the
# tenant's names, the name's versions and its tags (all known beforehand);
# ``kind``: 'latest', 'number' or 'tag'.
RESOLVE_NAME_LUA = """
local function resolve_name(names, versions, tags, name, kind, selector)
  local version = selector
  if kind == 'latest' then version = redis.call('HGET', names, name)
  elseif kind == 'tag' then version = redis.call('HGET', tags, selector) end
  if not version then return false end
  return redis.call('HGET', versions, version)
end
"""

_RESOLVE_NAME = (
    RESOLVE_NAME_LUA + "return resolve_name(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])\n"
)


@dataclass(frozen=True)
class NameRef:
    """A reference by name, as the keys and arguments of :data:`RESOLVE_NAME_LUA`."""

    keys: tuple[str, str, str]  # the tenant's names, the name's versions, its tags
    args: tuple[str, str, str]  # the name, the kind ('latest', 'number', 'tag'), the selector


def name_ref(tenant: str, ref: str) -> NameRef | None:
    """``ref`` of ``tenant`` as a :class:`NameRef`, or None when it is not a well-formed
    reference by name (a version hash, or nothing :meth:`RulesetRegistry.resolve` finds)."""
    if HASH_RE.match(ref):
        return None
    name, at, selector = ref.partition("@")
    if not NAME_RE.match(name):
        return None
    if not at or selector == "latest":
        kind, selector = "latest", ""
    elif VERSION_RE.match(selector):
        kind, selector = "number", str(int(selector))  # "007" is version 7
    elif TAG_RE.match(selector):
        kind = "tag"
    else:
        return None
    names = (
        keys.ruleset_names(tenant),
        keys.ruleset(tenant, name, "versions"),
        keys.ruleset(tenant, name, "tags"),
    )
    return NameRef(names, (name, kind, selector))


_SET_TAG = """
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 0 then return false end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0
  and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return '!full' end
local head = redis.call('LINDEX', KEYS[2], 0)
if head then
  local ok, last = pcall(cjson.decode, head)
  local this = cjson.decode(ARGV[3])
  if ok and last['tag'] == this['tag'] and last['version'] == this['version']
    and last['moved_by'] == this['moved_by'] and last['moved_at'] == this['moved_at'] then
    return head
  end
end
local previous = redis.call('HGET', KEYS[1], ARGV[1])
local move = cjson.decode(ARGV[3])
if previous then move['previous'] = tonumber(previous) end
local text = cjson.encode(move)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('LPUSH', KEYS[2], text)
return text
"""


def source_hash(source: str) -> str:
    """The version hash: sha256 of the source text (as ``Ruleset.hash``)."""
    return hashlib.sha256(source.encode()).hexdigest()


class RulesetRegistry:
    """Publishing and tag moves are durable writes (:mod:`entail.state.durability`)
    and idempotent; sources by hash are read from ``replica`` first (content-
    addressed, so never stale — at worst not there yet: then from the primary)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        replica: aioredis.Redis | None = None,
        durability: Durability | None = None,
    ) -> None:
        self.redis = redis
        self.replica = replica or redis
        self.durability = durability or Durability(redis)
        self._latest = redis.register_script(_LATEST)
        self._resolve_name = redis.register_script(_RESOLVE_NAME)

    async def publish(
        self,
        tenant: str,
        name: str,
        source: str,
        description: str,
        tests: builtins.list[dict[str, Any]],
        published_by: str,
        masked_predicates: builtins.list[str] | None = None,
        max_versions: int = 1_000_000_000,
        datasets: dict[str, str] | None = None,
    ) -> tuple[RulesetVersion, bool]:
        """The new version and True, or the latest version and False when that has
        the same source, masked predicates and dataset bindings (publishing is
        idempotent). ``datasets``: binding -> selector, as :mod:`entail.dataset_binding`
        checked them; each bound dataset's index of versions binding it
        (:meth:`bound_to`) gets this version.

        ValueError for an invalid name, RegistryFull past ``max_versions``."""
        problem = name_problem(name)
        if problem is not None:
            raise ValueError(problem)
        digest = source_hash(source)
        template = RulesetVersion(
            tenant=tenant,
            name=name,
            version=0,
            hash=digest,
            description=description,
            tests=tests,
            published_at=utcnow(),
            published_by=published_by,
            masked_predicates=sorted(set(masked_predicates or [])),
            datasets=dict(sorted((datasets or {}).items())),
        )
        # the same source under other bindings is another version; without bindings
        # the identity is what it was, so versions published before keep matching
        identity = f"{digest}|{','.join(template.masked_predicates)}"
        if template.datasets:
            identity += "|" + ",".join(f"{b}={s}" for b, s in template.datasets.items())
        script_keys = [
            keys.ruleset(tenant, name, "versions"),
            keys.ruleset(tenant, name, "bysource"),
            keys.ruleset_names(tenant),
            keys.tenant_hashes(tenant),
            keys.source(digest),
            keys.tenant_byhash(tenant),
            keys.ruleset(tenant, name, "publish"),
        ]
        script_args = [
            name,
            digest,
            template.model_dump_json(),
            source,
            identity,
            secrets.token_hex(8),
            str(max_versions),
        ]
        ((created, text),) = await self.durability.write(
            lambda pipe: pipe.eval(_PUBLISH, len(script_keys), *script_keys, *script_args)
        )
        if created == -1:
            raise RegistryFull("versions", max_versions)
        version = parse_version(text)
        if version.datasets:
            await self._index_bindings(version)
        return version, bool(created)

    async def _index_bindings(self, version: RulesetVersion) -> None:
        """Each bound dataset's sorted set of ``ruleset@version`` (score: publish time),
        so ``GET /v1/datasets/{name}/rulesets`` is one read. Idempotent: a publish
        retried, or one that returned the existing version, adds nothing new."""
        member = f"{version.name}@{version.version}"
        score = _epoch_ms(version.published_at)
        names = sorted({s.partition("@")[0] for s in version.datasets.values()})
        await self.durability.write(
            lambda pipe: [pipe.zadd(bound_key(version.tenant, n), {member: score}) for n in names]
        )

    async def bound_to(self, tenant: str, dataset: str) -> builtins.list[RulesetVersion]:
        """The ruleset versions whose bindings read ``dataset``, newest first."""
        members = await self.redis.zrevrange(bound_key(tenant, dataset), 0, -1)
        found: builtins.list[RulesetVersion] = []
        for m in members:
            name, _, number = _text(cast("bytes | str", m)).rpartition("@")
            v = await self.get(tenant, name, int(number))
            if v is not None:
                found.append(v)
        return found

    async def list(self, tenant: str) -> builtins.list[RulesetSummary]:
        names = await self.redis.hkeys(keys.ruleset_names(tenant))
        found = [await self.summary(tenant, _text(n)) for n in sorted(names)]
        return [s for s in found if s is not None]

    async def summary(self, tenant: str, name: str) -> RulesetSummary | None:
        latest = await self.get(tenant, name, "latest")
        if latest is None:
            return None
        tags = await self.redis.hgetall(keys.ruleset(tenant, name, "tags"))
        return RulesetSummary(
            name=name,
            latest=latest.version,
            tags={_text(k): int(v) for k, v in sorted(tags.items())},
            updated_at=latest.published_at,
        )

    async def versions(self, tenant: str, name: str) -> builtins.list[RulesetVersion]:
        raw = await self.redis.hgetall(keys.ruleset(tenant, name, "versions"))
        return sorted((parse_version(v) for v in raw.values()), key=lambda v: v.version)

    async def versions_page(
        self, tenant: str, name: str, before: int | None, size: int
    ) -> tuple[builtins.list[RulesetVersion], int | None]:
        """Up to ``size`` versions numbered below ``before`` (the newest when None),
        oldest first, and the ``before`` of the next older page (None at the end).
        Versions are numbered 1..latest without gaps, so a page is one HMGET."""
        latest = await self.redis.hget(keys.ruleset_names(tenant), name)
        if latest is None:
            return [], None
        top = int(latest) if before is None else min(int(latest), before - 1)
        low = max(1, top - size + 1)
        if top < 1:
            return [], None
        numbers = [str(n) for n in range(low, top + 1)]
        raw = await self.redis.hmget(keys.ruleset(tenant, name, "versions"), numbers)
        page = [parse_version(r) for r in raw if r is not None]
        return page, (low if low > 1 else None)

    async def tag_history_page(
        self, tenant: str, name: str, offset: int, size: int
    ) -> tuple[builtins.list[TagMove], int | None]:
        """Up to ``size`` tag moves from ``offset`` (newest first), and the offset of
        the next page (None at the end)."""
        raw = await self.redis.lrange(keys.ruleset(tenant, name, "taglog"), offset, offset + size)
        more = len(raw) > size
        return [TagMove.model_validate_json(r) for r in raw[:size]], (offset + size if more else None)

    async def get(self, tenant: str, name: str, version: int | str) -> RulesetVersion | None:
        if version == "latest":
            raw = await self._latest(
                keys=[keys.ruleset_names(tenant), keys.ruleset(tenant, name, "versions")], args=[name]
            )
            return parse_version(raw) if raw else None
        raw = await self.redis.hget(keys.ruleset(tenant, name, "versions"), str(version))
        return parse_version(raw) if raw is not None else None

    async def resolve(self, tenant: str, ref: str) -> RulesetVersion | None:
        """``name``, ``name@3``, ``name@latest``, ``name@tag``, or a version hash of this
        tenant (another tenant's hash resolves to None, like a hash nobody published)."""
        if HASH_RE.match(ref):
            return await self._by_hash(tenant, ref)
        found = name_ref(tenant, ref)
        if found is None:
            return None
        # one round trip whatever the form (a tag was two: the tag, then its version)
        raw = await self._resolve_name(keys=list(found.keys), args=list(found.args))
        return parse_version(raw) if raw else None

    async def _by_hash(self, tenant: str, digest: str) -> RulesetVersion | None:
        """The latest version of this tenant with this source hash."""
        located = await self.redis.hget(keys.tenant_byhash(tenant), digest)
        if located is not None:
            name, _, version = _text(located).rpartition("@")
            return await self.get(tenant, name, int(version))
        if not await self.redis.sismember(keys.tenant_hashes(tenant), digest):
            return None
        # published before the byhash index existed: search the tenant's versions
        found: RulesetVersion | None = None
        for raw in await self.redis.hkeys(keys.ruleset_names(tenant)):
            for v in await self.versions(tenant, _text(raw)):
                if v.hash == digest and (found is None or v.published_at > found.published_at):
                    found = v
        return found

    async def source(self, digest: str) -> str | None:
        raw = await self.replica.get(keys.source(digest))
        if raw is None and self.replica is not self.redis:
            raw = await self.redis.get(keys.source(digest))  # published a moment ago
        return _text(raw) if raw is not None else None

    async def set_tag(
        self, tenant: str, name: str, tag: str, version: int, moved_by: str, max_tags: int = 1_000_000_000
    ) -> TagMove:
        """Point ``tag`` at ``version`` and append the move to the tag history.

        ValueError for an invalid tag or a version that does not exist;
        RegistryFull for a new tag when the ruleset has ``max_tags``."""
        if not TAG_RE.match(tag) or tag == "latest":
            raise ValueError(
                f"invalid tag {tag!r}: lower-case letters, digits, '_' and '-', starting with a letter "
                "(at most 32; not 'latest')"
            )
        move = TagMove(tag=tag, version=version, previous=None, moved_by=moved_by, moved_at=utcnow())
        script_keys = [
            keys.ruleset(tenant, name, "tags"),
            keys.ruleset(tenant, name, "taglog"),
            keys.ruleset(tenant, name, "versions"),
        ]
        (text,) = await self.durability.write(
            lambda pipe: pipe.eval(
                _SET_TAG,
                len(script_keys),
                *script_keys,
                tag,
                str(version),
                move.model_dump_json(),
                str(max_tags),
            )
        )
        if text is None:
            raise ValueError(f"no version {version} of ruleset {name!r}")
        if _text(text) == "!full":
            raise RegistryFull("tags", max_tags)
        return TagMove.model_validate(json.loads(text))

    async def tag_history(self, tenant: str, name: str) -> builtins.list[TagMove]:
        raw = await self.redis.lrange(keys.ruleset(tenant, name, "taglog"), 0, -1)
        return [TagMove.model_validate_json(r) for r in raw]


def bound_key(tenant: str, dataset: str) -> str:
    """The index of the ruleset versions binding ``dataset`` (a sorted set)."""
    return f"entail:dsbind:{tenant}:{dataset}"


def _epoch_ms(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# stored version JSON -> its parsed version: a version entry never changes once
# written, and every decision resolves one (validating it was ~2% of a decision's
# backend CPU). Bounded; each caller gets its own shallow copy
_PARSED: dict[bytes | str, RulesetVersion] = {}
_PARSED_MAX = 256


def parse_version(raw: bytes | str) -> RulesetVersion:
    """A stored version entry as a :class:`RulesetVersion` (the caller's own copy)."""
    found = _PARSED.get(raw)
    if found is None:
        found = RulesetVersion.model_validate_json(raw)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[raw] = found
    return found.model_copy()
