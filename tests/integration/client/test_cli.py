"""``entail decide`` and ``entail audit search`` against a real local stack, through
the SDK, with the URL and key from flags or the environment."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from support.waiting import wait_for

from entail.cli import main

from ..services.stack import LocalStack

PROGRAM = "flag(X) :- amount(X, A), A > 100.\nok(X) :- amount(X, _), not flag(X).\n#defined amount/2.\n"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def published(stack: LocalStack) -> str:
    from entail_client import Client

    with Client(stack.url, api_key=stack.key("acme")) as client:
        client.publish("cli", PROGRAM)
    return "cli"


def test_decide_with_flags_text_and_json(stack: LocalStack, published: str, tmp_path: Path) -> None:
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"amount": [["a", 500], ["b", 5]]}))
    common = ["--facts", str(facts), "--url", stack.url, "--key", stack.key("acme")]
    code, out, err = run("decide", published, *common, "--query", "flag(X)", "--query", "ok(X)")
    assert (code, err) == (0, "")
    assert " succeeded: cli version 1" in out.splitlines()[0]
    assert 'flag(X): 1 answer(s)\n  flag("a")\nok(X): 1 answer(s)\n  ok("b")' in out
    code, out, err = run("decide", published, *common, "--query", "flag(X)", "--explain", "--format", "json")
    assert code == 0, err
    record = json.loads(out)
    assert record["answers"][0]["answers"][0]["proof"]["kind"] == "rule"


def test_decide_with_the_environment(
    stack: LocalStack, published: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENTAIL_URL", stack.url)
    monkeypatch.setenv("ENTAIL_API_KEY", stack.key("acme"))
    code, out, err = run("decide", f"{published}@latest", "--query", "ok(X)")
    assert (code, err) == (0, "")
    assert "ok(X): 0 answer(s)" in out


def test_decide_errors_are_problems_with_exit_codes(stack: LocalStack, tmp_path: Path) -> None:
    service = ["--url", stack.url, "--key", stack.key("acme")]
    code, _, err = run("decide", "no-such", "--query", "p(X)", *service)
    assert code == 2 and "404 Not found: ruleset 'no-such' does not exist" in err
    code, _, err = run("decide", "cli", "--query", "p(X)", "--url", stack.url, "--key", "ent_wrong")
    assert code == 2 and err.startswith("entail: 401 ")
    bad = tmp_path / "bad.json"
    bad.write_text('{"amount": [["a", 1]')
    code, _, err = run("decide", "cli", "--facts", str(bad), *service)
    assert code == 2 and f"{bad}:1:" in err and "not JSON" in err
    code, _, err = run("decide", "cli", "--query", "ok(X", *service)
    assert code == 2 and "422 Invalid query" in err
    code, _, err = run("decide", "cli", "--query", "ok(X)", "--url", "http://127.0.0.1:9", "--key", "x")
    assert code == 4 and "cannot reach the service" in err


def test_audit_search_pages_through_the_trail(stack: LocalStack, published: str) -> None:
    from entail_client import Client

    with Client(stack.url, api_key=stack.key("acme")) as client:
        made = {client.decide("cli", {"amount": [[f"s{i}", i]]}, "ok(X)")["decision_id"] for i in range(3)}
    service = ["--url", stack.url, "--key", stack.key("acme_audit")]

    def found() -> set[str]:
        code, out, err = run("audit", "search", "--ruleset", "cli", "--page-size", "1", *service)
        assert code == 0, err
        return {json.loads(line)["decision_id"] for line in out.splitlines()}

    wait_for(lambda: made <= found(), what="the decisions in the audit trail")
    code, out, _ = run("audit", "search", "--ruleset", "cli", "--page-size", "1", "--limit", "2", *service)
    assert code == 0 and len(out.splitlines()) == 2
    code, _, err = run("audit", "search", "--start", "2026-01-01", *service)
    assert code == 2 and "has no time zone" in err
    code, _, err = run("audit", "search", *service[:2], "--key", stack.key("acme"))
    assert code == 2 and "403" in err  # an author key may not read the trail


def test_decide_prints_reasons_in_the_locale_asked_for(stack: LocalStack, tmp_path: Path) -> None:
    from entail_client import Client

    source = (
        '%@reason code=R1 weight=9 severity=adverse "amount {A} is over 100"\n'
        "flag(X) :- amount(X, A), A > 100.\n"
        '%@reason-text de R1 "Betrag {A} liegt über 100"\n'
        "#defined amount/2.\n"
    )
    with Client(stack.url, api_key=stack.key("acme")) as client:
        client.publish("cli-reasons", source)
    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps({"amount": [["a", 500]]}))
    common = ["--facts", str(facts), "--url", stack.url, "--key", stack.key("acme"), "--query", "flag(X)"]
    code, out, err = run("decide", "cli-reasons", *common)
    assert (code, err) == (0, "")
    assert '  flag("a")\n    reason R1 (adverse, weight 9): amount 500 is over 100\n' in out
    code, out, err = run("decide", "cli-reasons", *common, "--locale", "de")
    assert (code, err) == (0, "")
    assert "    reason R1 (adverse, weight 9): Betrag 500 liegt über 100\n" in out


def test_schema_prints_the_typed_request_schema(stack: LocalStack, published: str) -> None:
    from entail_client import Client

    with Client(stack.url, api_key=stack.key("acme")) as client:
        client.publish("cli-typed", "%@input amount(const, int).\n" + PROGRAM)
    common = ["--url", stack.url, "--key", stack.key("acme")]
    code, out, err = run("schema", "cli-typed", *common)
    assert (code, err) == (0, "")
    amount = json.loads(out)["properties"]["facts"]["properties"]["amount"]
    assert [item["type"] for item in amount["items"]["prefixItems"]] == ["string", "integer"]
    code, out, err = run("schema", "no-such-ruleset", *common)
    assert code == 2 and "404" in err
