"""Every Redis key Entail uses, in one place. All live under ``entail:``.

Tenants own everything under ``entail:rs:{tenant}:``; decisions are keyed by
their unguessable id alone and carry their tenant inside (checked on read).
Ruleset names cannot contain ``:`` and the per-ruleset parts differ from the
per-tenant suffixes, so no two (tenant, name, part) share a key.

| key | type | holds |
|---|---|---|
| ``entail:decision:{id}`` | string (JSON) | a DecisionRecord, TTL ``decision_ttl_s`` |
| ``entail:claim:{id}`` | string | the worker holding the decision, TTL = lease |
| ``entail:done:{id}`` | pub/sub channel | "done" when the record is final |
| ``entail:decisions:open`` | sorted set | ids of decisions not final, by creation ms (the sweeper) |
| ``entail:cache:{tenant}:{ruleset_hash}:{request_hash}`` | string | the decision id of a cached result |
| ``entail:rs:{tenant}:names`` | hash | ruleset name -> latest version |
| ``entail:rs:{tenant}:{name}:versions`` | hash | version -> RulesetVersion JSON |
| ``entail:rs:{tenant}:{name}:bysource`` | hash | ``hash|masked,predicates`` -> version (idempotent publish) |
| ``entail:rs:{tenant}:{name}:tags`` | hash | tag -> version |
| ``entail:rs:{tenant}:{name}:taglog`` | list | TagMove JSON, newest first |
| ``entail:rs:{tenant}:{name}:publish`` | string | token of the call that made the latest version |
| ``entail:rs:{tenant}:hashes`` | set | hashes of this tenant's versions |
| ``entail:rs:{tenant}:byhash`` | hash | source hash -> ``name@version`` last published with it |
| ``entail:src:{hash}`` | string | a ruleset source, content-addressed |
| ``entail:impact:{tenant}:{job_id}`` | string (JSON) | an impact job's progress and result (TTL) |
| ``entail:idem:{tenant}:{key sha256}`` | hash | an Idempotency-Key and its first response (TTL) |
| ``entail:rl:{bucket}`` | hash | token bucket: ``key:[tenant,key_id]`` or ``addr:{ip}`` (401s) |
| ``entail:tq:{tenant}:open`` | sorted set | the tenant's open decisions, by admission time |
| ``entail:tq:{tenant}:running`` | sorted set | the tenant's decisions evaluating, by lease expiry |
| ``entail:tq:{tenant}:parked`` | list | job messages waiting for a running slot (quotas.py) |
| ``entail:tq:parked-tenants`` | set | tenants with parked jobs |
| ``entail:ds:{tenant}:names`` | hash | dataset name -> latest version |
| ``entail:ds:{tenant}:{name}:versions`` | hash | version -> DatasetVersion JSON (without tags) |
| ``entail:ds:{tenant}:{name}:next`` | string | the last version number handed out (INCR) |
| ``entail:ds:{tenant}:{name}:tags`` | hash | tag -> version |
| ``entail:ds:{tenant}:{name}:taglog`` | list | tag moves (JSON), newest first |
| ``entail:ds:{tenant}:byhash`` | hash | content hash -> ``name@version`` |
| ``entail:ds:{tenant}:bytes`` | string | bytes of all the tenant's dataset versions (the cap) |
| ``entail:dsup:{tenant}:{id}`` | hash | an upload's progress (bytes, facts, done), TTL |
"""

from __future__ import annotations

PREFIX = "entail:"


def decision(decision_id: str) -> str:
    return f"entail:decision:{decision_id}"


def claim(decision_id: str) -> str:
    return f"entail:claim:{decision_id}"


def done_channel(decision_id: str) -> str:
    return f"entail:done:{decision_id}"


def open_decisions() -> str:
    return "entail:decisions:open"


def impact_job(tenant: str, job_id: str) -> str:
    return f"entail:impact:{tenant}:{job_id}"


def idempotency(tenant: str, key_digest: str) -> str:
    return f"entail:idem:{tenant}:{key_digest}"


def cache(tenant: str, ruleset_hash: str, request_hash: str) -> str:
    return f"entail:cache:{tenant}:{ruleset_hash}:{request_hash}"


def ruleset(tenant: str, name: str, part: str) -> str:
    return f"entail:rs:{tenant}:{name}:{part}"


def ruleset_names(tenant: str) -> str:
    return f"entail:rs:{tenant}:names"


def tenant_hashes(tenant: str) -> str:
    return f"entail:rs:{tenant}:hashes"


def tenant_byhash(tenant: str) -> str:
    return f"entail:rs:{tenant}:byhash"


def source(digest: str) -> str:
    return f"entail:src:{digest}"


def rate_bucket(bucket: str) -> str:
    return f"entail:rl:{bucket}"


def dataset(tenant: str, name: str, part: str) -> str:
    return f"entail:ds:{tenant}:{name}:{part}"


def dataset_tenant(tenant: str, part: str) -> str:
    """A per-tenant dataset key: ``names``, ``byhash``, ``bytes`` (dataset names
    cannot contain ':', so these never meet a per-dataset key)."""
    return f"entail:ds:{tenant}:{part}"


def dataset_upload(tenant: str, upload_id: str) -> str:
    return f"entail:dsup:{tenant}:{upload_id}"
