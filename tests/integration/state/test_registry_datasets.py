"""Ruleset versions binding datasets: the bindings kept, the identity, the index by dataset."""

from __future__ import annotations

import redis.asyncio as aioredis

from entail.state import RulesetRegistry


async def test_bindings_are_kept_and_part_of_the_versions_identity(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    plain, _ = await reg.publish("acme", "exp", "a(1).", "", [], "k")
    assert plain.datasets == {}
    bound, created = await reg.publish("acme", "exp", "a(1).", "", [], "k", datasets={"org": "org@prod"})
    assert created and bound.version == 2 and bound.datasets == {"org": "org@prod"}
    again, created = await reg.publish("acme", "exp", "a(1).", "", [], "k", datasets={"org": "org@prod"})
    assert not created and again == bound  # same source, same bindings: idempotent
    pinned, created = await reg.publish("acme", "exp", "a(1).", "", [], "k", datasets={"org": "org@3"})
    assert created and pinned.version == 3  # other bindings: a new version
    assert (await reg.get("acme", "exp", 3)) == pinned


async def test_versions_binding_a_dataset_are_indexed_newest_first(redis: aioredis.Redis) -> None:
    reg = RulesetRegistry(redis)
    await reg.publish("acme", "exp", "a(1).", "", [], "k", datasets={"org": "org@latest"})
    await reg.publish("acme", "exp", "a(2).", "", [], "k", datasets={"org": "org@2", "r": "rates@prod"})
    await reg.publish("acme", "other", "b.", "", [], "k", datasets={"chart": "org@prod"})
    await reg.publish("acme", "plain", "c.", "", [], "k")
    await reg.publish("globex", "exp", "a(1).", "", [], "k", datasets={"org": "org"})
    found = [f"{v.name}@{v.version}" for v in await reg.bound_to("acme", "org")]
    assert sorted(found) == ["exp@1", "exp@2", "other@1"]
    assert found.index("other@1") < found.index("exp@1")  # newest first
    assert [f"{v.name}@{v.version}" for v in await reg.bound_to("acme", "rates")] == ["exp@2"]
    assert [v.tenant for v in await reg.bound_to("globex", "org")] == ["globex"]  # tenants apart
    assert await reg.bound_to("acme", "nothing") == []
