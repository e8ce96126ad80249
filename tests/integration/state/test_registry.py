"""entail.state.RulesetRegistry against a real valkey-server."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from entail import reasoning
from entail.state import RulesetRegistry, source_hash


async def test_publish_numbers_versions_and_is_idempotent(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    v1, created = await reg.publish("acme", "loan", "a(1).", "first", [], "k1")
    assert created and v1.version == 1 and (v1.tenant, v1.name, v1.published_by) == ("acme", "loan", "k1")
    same, created = await reg.publish("acme", "loan", "a(1).", "again", [], "k2")
    assert not created and same == v1  # identical source: the existing latest version
    tests = [{"name": "t", "query": [], "expect": {}}]
    v2, created = await reg.publish("acme", "loan", "a(2).", "", tests, "k1")
    assert created and v2.version == 2 and v2.tests == tests  # empty lists and objects survive
    back, created = await reg.publish("acme", "loan", "a(1).", "rollback", [], "k1")
    assert created and back.version == 3  # an older source again is a new version
    masked, created = await reg.publish("acme", "loan", "a(1).", "", [], "k1", ["a/1"])
    assert created and masked.version == 4 and masked.masked_predicates == ["a/1"]
    _, created = await reg.publish("acme", "loan", "a(1).", "", [], "k1", ["a/1", "a/1"])
    assert not created
    other, _ = await reg.publish("globex", "loan", "a(9).", "", [], "k9")
    assert other.version == 1  # numbered per tenant and name


async def test_hash_is_the_engines_ruleset_hash(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    source = "path(X, Y) :- edge(X, Y).\n% ünïcode\n"
    v, _ = await reg.publish("acme", "paths", source, "", [], "k")
    assert v.hash == source_hash(source) == reasoning.compile(source).hash
    assert await reg.source(v.hash) == source
    assert await redis.get(f"entail:src:{v.hash}") == source.encode()
    assert await reg.source("f" * 64) is None


async def test_concurrent_publishes_get_distinct_versions(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    results = await asyncio.gather(*(reg.publish("acme", "c", f"p({i}).", "", [], "k") for i in range(10)))
    assert all(created for _, created in results)
    assert sorted(v.version for v, _ in results) == list(range(1, 11))
    assert [v.version for v in await reg.versions("acme", "c")] == list(range(1, 11))


async def test_concurrent_identical_publishes_create_one_version(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    results = await asyncio.gather(*(reg.publish("acme", "c", "p.", "", [], "k") for _ in range(10)))
    assert sum(created for _, created in results) == 1
    assert {v.version for v, _ in results} == {1}


async def test_names_are_validated(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    for good in ("a", "Loan.v2", "x_y-z", "A" + "b" * 63):
        assert (await reg.publish("acme", good, "a.", "", [], "k"))[1]
    for bad in ("9bad", "", "_x", "a b", "a:b", "a@b", "a/b", "A" + "b" * 64, "ab" * 32):
        with pytest.raises(ValueError, match="invalid ruleset name"):
            await reg.publish("acme", bad, "a.", "", [], "k")
    for action in ("validate", "evaluate"):  # POST /v1/rulesets/{action}: never readable as a ruleset
        with pytest.raises(ValueError, match="reserved"):
            await reg.publish("acme", action, "a.", "", [], "k")


async def test_get_versions_list_summary(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    assert await reg.list("acme") == []
    assert await reg.summary("acme", "loan") is None
    assert await reg.versions("acme", "loan") == []
    assert await reg.get("acme", "loan", "latest") is None
    v1, _ = await reg.publish("acme", "loan", "a(1).", "", [], "k")
    v2, _ = await reg.publish("acme", "loan", "a(2).", "", [], "k")
    await reg.publish("acme", "auto", "b.", "", [], "k")
    await reg.set_tag("acme", "loan", "prod", 1, "k")
    assert await reg.get("acme", "loan", 1) == v1
    assert await reg.get("acme", "loan", "latest") == v2
    assert await reg.get("acme", "loan", 3) is None
    assert await reg.versions("acme", "loan") == [v1, v2]
    summary = await reg.summary("acme", "loan")
    assert summary is not None
    assert (summary.name, summary.latest, summary.tags) == ("loan", 2, {"prod": 1})
    assert summary.updated_at == v2.published_at
    assert [s.name for s in await reg.list("acme")] == ["auto", "loan"]
    assert await reg.list("globex") == []
    assert await reg.summary("globex", "loan") is None


async def test_resolve_forms(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    v1, _ = await reg.publish("acme", "loan", "a(1).", "", [], "k")
    v2, _ = await reg.publish("acme", "loan", "a(2).", "", [], "k")
    await reg.set_tag("acme", "loan", "prod", 1, "k")
    assert await reg.resolve("acme", "loan") == v2
    assert await reg.resolve("acme", "loan@latest") == v2
    assert await reg.resolve("acme", "loan@1") == v1
    assert await reg.resolve("acme", "loan@2") == v2
    assert await reg.resolve("acme", "loan@prod") == v1
    assert await reg.resolve("acme", v1.hash) == v1
    assert await reg.resolve("acme", v2.hash) == v2
    for missing in ("loan@9", "loan@0", "loan@nosuchtag", "nope", "nope@1", "f" * 64):
        assert await reg.resolve("acme", missing) is None, missing
    for malformed in ("", "loan@", "@1", "loan@1@2", "loan@Prod", "loan@²", "loan@-1", "9x", "A" * 64):
        assert await reg.resolve("acme", malformed) is None, malformed


async def test_resolve_by_hash_is_per_tenant(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    v1, _ = await reg.publish("acme", "loan", "a(1).", "", [], "k")
    assert await reg.resolve("globex", v1.hash) is None  # a hash is not a way into another tenant
    assert await reg.resolve("globex", "loan") is None
    assert await reg.resolve("globex", "loan@1") is None
    theirs, _ = await reg.publish("globex", "mine", "a(1).", "", [], "g")  # same source, their own
    assert await reg.resolve("globex", v1.hash) == theirs
    assert await reg.resolve("acme", v1.hash) == v1


async def test_resolve_by_hash_finds_the_latest_version_with_it(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    await reg.publish("acme", "loan", "a(1).", "", [], "k")
    await reg.publish("acme", "loan", "a(2).", "", [], "k")
    v3, _ = await reg.publish("acme", "loan", "a(1).", "rollback", [], "k")
    assert await reg.resolve("acme", v3.hash) == v3


async def test_resolve_by_hash_without_the_index(redis: aioredis.Redis) -> None:
    """Versions published before ``entail:rs:{tenant}:byhash`` existed still resolve."""
    reg = RulesetRegistry(redis)
    v1, _ = await reg.publish("acme", "loan", "a(1).", "", [], "k")
    v2, _ = await reg.publish("acme", "other", "a(1).", "", [], "k")
    await redis.delete("entail:rs:acme:byhash")
    assert await reg.resolve("acme", v1.hash) in (v1, v2)
    assert await reg.resolve("globex", v1.hash) is None


async def test_tag_moves_and_history(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    await reg.publish("acme", "loan", "a(1).", "", [], "k")
    await reg.publish("acme", "loan", "a(2).", "", [], "k")
    assert await reg.tag_history("acme", "loan") == []
    first = await reg.set_tag("acme", "loan", "prod", 1, "alice")
    assert (first.tag, first.version, first.previous, first.moved_by) == ("prod", 1, None, "alice")
    assert first.moved_at.endswith("Z")
    second = await reg.set_tag("acme", "loan", "prod", 2, "bob")
    assert (second.version, second.previous) == (2, 1)
    await reg.set_tag("acme", "loan", "staging", 2, "bob")
    history = await reg.tag_history("acme", "loan")
    assert history[1:] == [second, first]  # newest first
    assert [(m.tag, m.version, m.previous) for m in history] == [
        ("staging", 2, None),
        ("prod", 2, 1),
        ("prod", 1, None),
    ]
    summary = await reg.summary("acme", "loan")
    assert summary is not None and summary.tags == {"prod": 2, "staging": 2}
    assert await reg.tag_history("globex", "loan") == []


async def test_tags_are_validated(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    await reg.publish("acme", "loan", "a(1).", "", [], "k")
    for good in ("p", "prod-2", "a_b", "x" * 32):
        await reg.set_tag("acme", "loan", good, 1, "k")
    for bad in ("Prod", "1", "123", "latest", "a b", "x" * 33, "-a", "", "a@b"):
        with pytest.raises(ValueError, match="invalid tag"):
            await reg.set_tag("acme", "loan", bad, 1, "k")
    for version in (0, 2):
        with pytest.raises(ValueError, match="no version"):
            await reg.set_tag("acme", "loan", "prod", version, "k")
    with pytest.raises(ValueError, match="no version"):
        await reg.set_tag("globex", "loan", "prod", 1, "k")  # not theirs
    assert len(await reg.tag_history("acme", "loan")) == 4
