"""The bundled example rulesets (``entail.examples``) as ``entail up`` publishes
them for the ``dev`` tenant, and the case its banner's curl decides."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import yaml

EXAMPLES = (
    ("loan", "consumer loan eligibility: decision, reasons, referral"),
    ("reachability", "graph reachability: reach, isolated places, counts"),
)


def example_rulesets() -> list[dict[str, Any]]:
    """``POST /v1/rulesets`` bodies of the examples, their test cases inlined."""
    root = resources.files("entail.examples")
    out: list[dict[str, Any]] = []
    for name, description in EXAMPLES:
        folder = root / name
        cases = yaml.safe_load((folder / "tests.yaml").read_text())["cases"]
        tests = []
        for case in cases:
            facts = case.get("facts") or {}
            if "facts_file" in case:
                if not case["facts_file"].endswith(".json"):
                    continue  # .lp fact files are for `entail test`; the API takes JSON
                facts = json.loads((folder / case["facts_file"]).read_text())
            expect = case.get("expect") or {}
            tests.append(
                {
                    "name": case.get("name", ""),
                    "facts": facts,
                    "query": list(case.get("query") or expect.keys()),
                    "expect": expect,
                    "absent": case.get("absent") or [],
                }
            )
        out.append(
            {
                "name": name,
                "source": (folder / "program.lp").read_text(),
                "description": description,
                "tests": tests,
            }
        )
    return out


def example_case() -> dict[str, Any]:
    """The facts of the loan example's applicant ``ann``."""
    facts: dict[str, Any] = json.loads((resources.files("entail.examples") / "loan" / "ann.json").read_text())
    return facts
