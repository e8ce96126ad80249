"""Masked values are stored nowhere: the real local stack decides over a case
with a masked predicate, then every byte it wrote (Redis's directory with its
append-only file, the DuckDB audit file, every log) is searched for the clear
values."""

from __future__ import annotations

import json
from pathlib import Path

from support.waiting import wait_for

from entail.audit import DuckDBAuditStore
from entail.masking import mask_value

from .stack import decide, local_stack

SOURCE = "adult(P) :- age(P, A), A >= 18, ssn(P, _). #defined age/2. #defined ssn/2."
SSN = "987-65-4329"
NAME = "zelda-quux"  # in a masked row, so masked wherever the case mentions it
SSN_NUMBER = 918273645  # an integer value of a masked row


def _files_containing(root: Path, needles: list[bytes]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [n.decode() for n in needles if n in data]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def test_masked_values_are_stored_nowhere(tmp_path: Path) -> None:
    facts = {
        "age": [[NAME, 30], ["bob", 40]],
        "ssn": [[NAME, SSN], ["bob", SSN_NUMBER]],
    }
    queries = ["adult(P)", "ssn(P, S)", f'ssn("{NAME}", S)', f"ssn(P, {SSN_NUMBER})"]
    with local_stack(tmp_path) as stack:
        secret = stack.stack.env.get("ENTAIL_MASK_SECRET") or stack.stack.settings.mask_secret
        with stack.client("acme") as acme:
            published = acme.post(
                "/v1/rulesets", json={"name": "masked", "source": SOURCE, "masked_predicates": ["ssn/2"]}
            )
            assert published.status_code == 201, published.text
            response = decide(acme, ruleset="masked", facts=facts, query=queries, explain=True, wait_ms=15000)
            body = response.json()
            assert body["status"] == "succeeded", body
            # a second, identical request is served from the cache: its record repeats the masked one
            cached = decide(
                acme, ruleset="masked", facts=facts, query=queries, explain=True, wait_ms=15000
            ).json()
            assert cached["cached"] is True, cached
            kept = acme.get(f"/v1/decisions/{body['decision_id']}").json()
        with stack.client("acme_audit") as audit:
            audited = wait_for(
                lambda: (
                    (r := audit.get(f"/v1/audit/decisions/{body['decision_id']}")).status_code == 200
                    and r.json()
                ),
                what="the audit row",
            )
        store = DuckDBAuditStore(stack.stack.settings.data_dir / "audit.duckdb", shared=True)
        try:
            wait_for(lambda: store.get_decision("acme", cached["decision_id"]), what="the cached audit row")
        finally:
            store.close()

    name_mac, ssn_mac, bob_mac = mask_value(NAME, secret), mask_value(SSN, secret), mask_value("bob", secret)
    adult, ssn, by_name, by_number = body["answers"]
    # answers, bindings and proofs carry the HMACs; the join on the masked name still holds
    assert [a["bindings"]["P"] for a in adult["answers"]] == sorted([name_mac, bob_mac])
    assert {a["bindings"]["S"] for a in ssn["answers"]} == {ssn_mac, mask_value(SSN_NUMBER, secret)}
    assert [a["atom"] for a in by_name["answers"]] == [f'ssn("{name_mac}","{ssn_mac}")']
    assert by_number["answers"][0]["bindings"] == {"P": bob_mac}
    assert all("proof" in a for a in adult["answers"])
    assert body["query"][2] == f'ssn("{name_mac}", S)'  # the stored query holds the mask too
    for what, document in (("answer", body), ("read", kept), ("cached", cached), ("audit", audited)):
        text = json.dumps(document)
        for clear in (SSN, NAME, str(SSN_NUMBER)):
            assert clear not in text, f"{clear} in the {what}"

    # every byte the stack wrote: Redis's directory (append-only file), audit.duckdb, logs
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any("appendonly" in p.name or p.suffix == ".aof" for p in written), written
    assert any(p.name == "audit.duckdb" for p in written), written
    needles = [SSN.encode(), NAME.encode(), str(SSN_NUMBER).encode()]
    assert _files_containing(tmp_path, needles) == {}
