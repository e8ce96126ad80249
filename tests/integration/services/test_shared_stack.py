"""The stack that the modules of default settings share (``shared_stack`` in
tests/integration/conftest.py): each module's view has tenants and keys of its
own, so what one module publishes, decides or caches is invisible to another, as
it was when each started a stack of its own."""

from __future__ import annotations

from entail_dev.examples import example_case

from .stack import KEYS, LocalStack, decide


def test_views_have_tenants_of_their_own(shared_stack: LocalStack) -> None:
    one = shared_stack.with_own_tenants("one")
    two = shared_stack.with_own_tenants("two")
    for who in KEYS:
        assert len({one.tenant(who), two.tenant(who), shared_stack.tenant(who)}) == 3
        assert len({one.key_id(who), two.key_id(who), shared_stack.key_id(who)}) == 3
    with one.client("acme") as first, two.client("acme") as second, shared_stack.client("acme") as base:
        published = first.post("/v1/rulesets", json={"name": "only_one", "source": "p(1)."})
        assert published.status_code == 201, published.text
        assert second.get("/v1/rulesets/only_one").status_code == 404
        assert base.get("/v1/rulesets/only_one").status_code == 404
        # every view gets the example rulesets, as a stack of its own would
        names = {r["name"] for r in second.get("/v1/rulesets").json()["rulesets"]}
        assert {"loan", "reachability"} <= names
        # the same request in another view is a decision of its own, not a cache hit
        body = {"ruleset": "loan", "facts": example_case(), "query": ["decision(A, D)"], "wait_ms": 10000}
        decided = decide(first, **body).json()
        elsewhere = decide(second, **body).json()
        assert decided["status"] == elsewhere["status"] == "succeeded", (decided, elsewhere)
        assert elsewhere["cached"] is False and decided["cached"] is False
        assert decide(first, **body).json()["cached"] is True  # the cache itself still works
        assert second.get(f"/v1/decisions/{decided['decision_id']}").status_code == 404
    # the view's other keys: an auditor of its tenant, and a tenant of its own for globex
    with one.client("acme_audit") as auditor, one.client("globex") as globex:
        assert auditor.get("/v1/rulesets/only_one").status_code == 200
        assert globex.get("/v1/rulesets/only_one").status_code == 404
