"""The decision report as one self-contained HTML document (docs/reports.md).

Pure rendering of the report's content (:func:`entail.report.content`): no
clock, no randomness, dict keys iterated in sorted order, so the same content
gives byte-identical HTML and its SHA-256 is a stable fingerprint an auditor
can check. Every string that came from a record — facts, atoms, rule text,
messages — goes through :func:`html.escape`; the document has no scripts and
no external resources (inline CSS, a print stylesheet for "Save as PDF").
"""

from __future__ import annotations

import html
import json
from typing import Any

#: Inline CSS: screen and print. Print hides nothing but avoids page breaks inside
#: a table row, an answer's header or a proof step, and starts each major section
#: on a fresh page only when it would not fit (break-inside: avoid).
STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24;
  margin: 0; background: #fff; }
main { max-width: 60rem; margin: 0 auto; padding: 2rem 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #d0d7de; padding-bottom: .25rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin: 1.25rem 0 .5rem; }
code, .mono { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem; border: 1px solid #d0d7de;
  overflow-wrap: anywhere; }
th { background: #f6f8fa; font-weight: 600; width: 14rem; }
.state { display: inline-block; padding: .15rem .5rem; border-radius: .25rem; font-weight: 600; }
.state.audited { background: #dafbe1; color: #116329; }
.state.live { background: #fff8c5; color: #7d4e00; }
.masked { color: #6e7781; font-style: italic; }
.note { color: #57606a; }
.answer { margin: .75rem 0 1rem; }
.answer-head { font-weight: 600; margin: .25rem 0; }
.reason { margin: .15rem 0; }
.reason .code { font-weight: 600; }
ul.proof { list-style: none; padding-left: 1.1rem; border-left: 2px solid #d0d7de; margin: .25rem 0; }
ul.proof.top { border-left: 0; padding-left: 0; }
ul.proof li { margin: .2rem 0; }
.kind { font-size: .8rem; color: #57606a; }
.rule { color: #0550ae; }
.cut { color: #9a6700; }
footer { margin-top: 3rem; color: #57606a; font-size: .85rem; border-top: 1px solid #d0d7de;
  padding-top: .5rem; }
@media print {
  @page { margin: 16mm 14mm; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  tr, li, .answer-head, .reason { break-inside: avoid; page-break-inside: avoid; }
  section { break-inside: auto; }
  a { color: inherit; text-decoration: none; }
}
""".strip()

KIND_LABELS = {
    "input": "case fact",
    "ruleset_fact": "ruleset fact",
    "dataset_fact": "dataset fact",
    "shared": "shown above",
    "truncated": "proof cut at the engine's depth limit",
}


def e(value: Any) -> str:
    """Escaped text of anything (quotes too: values also land in attributes)."""
    return html.escape(value if isinstance(value, str) else str(value), quote=True)


def term(value: Any) -> str:
    """A JSON term as the language writes it: ``"ann"``, ``declined``, ``42``; escaped."""
    if isinstance(value, dict) and set(value) == {"const"}:
        return e(value["const"])
    if isinstance(value, str):
        text = e(json.dumps(value, ensure_ascii=False))
        return f'<span class="masked">{text}</span>' if value.startswith("hmac-sha256:") else text
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return e(json.dumps(value))
    return e(json.dumps(value, sort_keys=True, ensure_ascii=False))


def _row(label: str, value: str) -> str:
    return f"<tr><th>{e(label)}</th><td>{value}</td></tr>"


def _bindings(bindings: Any) -> str:
    if not isinstance(bindings, dict) or not bindings:
        return ""
    parts = ", ".join(f"{e(k)} = {term(bindings[k])}" for k in sorted(bindings))
    return f' <span class="kind">with {parts}</span>'


def _proof(node: Any) -> str:
    """One proof step and its body as nested lists (bounded beforehand: entail.report)."""
    if not isinstance(node, dict):
        return f"<li><code>{e(json.dumps(node, sort_keys=True))}</code></li>"
    kind = node.get("kind")
    if kind == "omitted":
        steps, why = e(node.get("steps", 0)), e(node.get("why", ""))
        return f'<li class="cut">… {steps} more proof step(s) not shown: {why}</li>'
    if kind in KIND_LABELS:
        label = KIND_LABELS[kind]
        return f'<li><code>{e(node.get("fact", ""))}</code> <span class="kind">[{label}]</span></li>'
    if kind == "rule":
        rule = node.get("rule") or {}
        head = (
            f'<code>{e(node.get("fact", ""))}</code> <span class="kind">by the rule at line '
            f'{e(rule.get("line", "?"))}</span>: <code class="rule">{e(rule.get("text", ""))}</code>'
            f"{_bindings(node.get('bindings'))}"
        )
        body = node.get("body") or []
        children = f'<ul class="proof">{"".join(_proof(c) for c in body)}</ul>' if body else ""
        return f"<li>{head}{children}</li>"
    if kind == "negation":
        literal = e(node.get("literal", ""))
        return f'<li><code>{literal}</code> <span class="kind">[absent from the model]</span></li>'
    if kind == "comparison":
        return (
            f"<li><code>{e(node.get('literal', ''))}</code> "
            f'<span class="kind">[{e(node.get("evaluated", ""))}]</span></li>'
        )
    if kind == "assignment":
        return (
            f"<li><code>{e(node.get('literal', ''))}</code> "
            f'<span class="kind">[{e(node.get("variable", ""))} = {term(node.get("value"))}]</span></li>'
        )
    if kind == "aggregate":
        elements = node.get("elements") or []
        items = "".join(
            "<li><code>"
            + e(", ".join(json.dumps(v, sort_keys=True, ensure_ascii=False) for v in el.get("tuple", [])))
            + "</code> from "
            + ", ".join(f"<code>{e(f)}</code>" for f in el.get("facts", []))
            + "</li>"
            for el in elements
            if isinstance(el, dict)
        )
        more = ""
        total = node.get("total_elements", len(elements))
        if isinstance(total, int) and total > len(elements):
            more = f'<li class="cut">… {total - len(elements)} more element(s)</li>'
        return (
            f'<li><code>{e(node.get("literal", ""))}</code> <span class="kind">[= {term(node.get("value"))}, '
            f"{e(total)} element(s)]</span>"
            + (f'<ul class="proof">{items}{more}</ul>' if items or more else "")
            + "</li>"
        )
    return f"<li><code>{e(json.dumps(node, sort_keys=True, ensure_ascii=False))}</code></li>"


def _reasons(reasons: Any) -> str:
    if not isinstance(reasons, list) or not reasons:
        return ""
    items = []
    for r in reasons:
        if not isinstance(r, dict):
            items.append(f'<li class="reason">{e(r)}</li>')
            continue
        extra = ", ".join(f"{e(k)} {e(r[k])}" for k in ("severity", "weight") if r.get(k) is not None)
        items.append(
            f'<li class="reason"><span class="code">{e(r.get("code", ""))}</span> '
            f"{e(r.get('message', ''))}"
            + (f' <span class="kind">({extra})</span>' if extra else "")
            + "</li>"
        )
    return f'<ul class="reasons">{"".join(items)}</ul>'


def _failure(f: dict[str, Any]) -> str:
    """One body literal that failed, by kind (reasoning/why_not.py ``Failure``)."""
    kind = f.get("kind")
    if kind == "missing":
        detail = f"no fact <code>{e(f.get('atom', ''))}</code>"
    elif kind == "negation_holds":
        detail = f"<code>{e(f.get('witness') or f.get('atom', ''))}</code> holds"
    elif f.get("evaluated"):
        detail = f"<code>{e(f['evaluated'])}</code> is false"
    else:
        detail = e(str(kind or "").replace("_", " "))
    return (
        f'<li><code>{e(f.get("literal", ""))}</code> fails: <span class="kind">{detail}</span>'
        + _reasons(f.get("reasons"))
        + (_why_not(f["why_not"]) if isinstance(f.get("why_not"), dict) else "")
        + "</li>"
    )


def _why_not(doc: Any) -> str:
    """A why-not explanation (reasoning/why_not.py): each rule that could derive the
    atom and the first body literal that failed, nested explanations below."""
    if not isinstance(doc, dict):
        return f"<p><code>{e(json.dumps(doc, sort_keys=True, ensure_ascii=False))}</code></p>"
    if doc.get("kind") == "omitted":
        return f'<p class="cut">… {e(doc.get("why", "not shown"))}</p>'
    verdict = "holds" if doc.get("holds") is True else "does not hold"
    parts = [f"<p><code>{e(doc.get('atom', ''))}</code> {verdict}."]
    if doc.get("message"):
        parts.append(f' <span class="kind">{e(doc["message"])}</span>')
    parts.append("</p>")
    items = []
    for attempt in doc.get("rules") or []:
        if not isinstance(attempt, dict):
            continue
        rule = attempt.get("rule") or {}
        failures = "".join(_failure(f) for f in attempt.get("failures") or [] if isinstance(f, dict))
        shown, total = len(attempt.get("failures") or []), attempt.get("total_failures")
        if isinstance(total, int) and total > shown:
            failures += f'<li class="cut">… {total - shown} more partial match(es) fail</li>'
        items.append(
            f'<li><span class="kind">rule at line {e(rule.get("line", "?"))}</span>: '
            f'<code class="rule">{e(rule.get("text", ""))}</code>'
            + (f'<ul class="proof">{failures}</ul>' if failures else "")
            + "</li>"
        )
    if items:
        parts.append(f'<ul class="proof top">{"".join(items)}</ul>')
    if doc.get("truncated"):
        parts.append('<p class="cut">Nested explanations stop here (depth or breadth bound).</p>')
    return "".join(parts)


def _facts(inputs: dict[str, Any]) -> str:
    facts = inputs.get("facts")
    masked = inputs.get("masked_predicates") or []
    out = []
    if masked:
        out.append(
            '<p class="note">Masked predicates: '
            + ", ".join(f"<code>{e(m)}</code>" for m in masked)
            + ". Their values are HMACs (<code>hmac-sha256:…</code>): the clear values were never stored.</p>"
        )
    if not isinstance(facts, dict) or not facts:
        out.append('<p class="note">No case facts.</p>')
        return "".join(out)
    for predicate in sorted(facts):
        rows = facts[predicate]
        if not isinstance(rows, list):
            continue
        body = "".join(
            "<tr>"
            + "".join(f"<td>{term(v)}</td>" for v in (row if isinstance(row, list) else [row]))
            + "</tr>"
            for row in rows
        )
        out.append(f"<h3><code>{e(predicate)}</code> ({e(len(rows))})</h3><table>{body}</table>")
    if inputs.get("omitted_rows"):
        out.append(f'<p class="cut">… {e(inputs["omitted_rows"])} more fact row(s) not shown.</p>')
    return "".join(out)


def _datasets(refs: list[dict[str, Any]]) -> str:
    """The dataset versions the decision read: what a replay reads again."""
    rows = "".join(
        f"<tr><td><code>{e(r.get('binding', ''))}</code></td><td>{e(r.get('name', ''))}</td>"
        f"<td>{e(r.get('version', ''))}</td><td><code>{e(r.get('hash', ''))}</code></td></tr>"
        for r in refs
    )
    return (
        "<p>The reference data this decision read, version by version (a replay reads the same).</p>"
        '<table><thead><tr><th scope="col">Binding</th><th scope="col">Dataset</th>'
        '<th scope="col">Version</th><th scope="col">Content SHA-256</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _answers(queries: list[dict[str, Any]]) -> str:
    out = []
    for q in queries:
        answers = q.get("answers") or []
        count = e(q.get("count", len(answers)))
        out.append(f"<h3>Query <code>{e(q.get('query', ''))}</code>: {count} answer(s)</h3>")
        if not answers:
            out.append('<p class="note">No answers.</p>')
        for a in answers:
            out.append('<div class="answer">')
            out.append(f'<p class="answer-head"><code>{e(a.get("atom", ""))}</code></p>')
            out.append(_reasons(a.get("reasons")))
            proof = a.get("proof")
            if proof is not None:
                out.append(f'<ul class="proof top">{_proof(proof)}</ul>')
            out.append("</div>")
        if q.get("omitted_answers"):
            out.append(f'<p class="cut">… {e(q["omitted_answers"])} more answer(s) not shown.</p>')
        if q.get("why_not") is not None:
            out.append("<h3>Why not</h3>" + _why_not(q["why_not"]))
    return "".join(out)


def render(doc: dict[str, Any]) -> str:
    """The HTML document of a report's content (entail.report.content)."""
    d = doc["decision"]
    audited = doc["source"] == "audit"
    state = (
        '<span class="state audited">Audited record</span>'
        if audited
        else '<span class="state live">Live record: not yet in the audit trail</span>'
    )
    ruleset = d["ruleset"]
    summary = [
        _row("Decision id", f"<code>{e(d['decision_id'])}</code>"),
        _row("Tenant", e(d["tenant"])),
        _row("Status", e(d["status"])),
        _row("Ruleset", f"{e(ruleset['name'])} version {e(ruleset['version'])}"),
        _row("Ruleset source SHA-256", f"<code>{e(ruleset['hash'])}</code>"),
    ]
    summary += [
        _row("Engine version", f"<code>{e(d['engine_version'])}</code>"),
        _row("Request hash", f"<code>{e(d['request_hash'])}</code>"),
    ]
    if d.get("result_hash"):
        summary.append(_row("Result hash", f"<code>{e(d['result_hash'])}</code>"))
    if d.get("cached_from"):
        summary.append(_row("Repeats the result of", f"<code>{e(d['cached_from'])}</code>"))
    times = (("Submitted", "submitted_at"), ("Started", "started_at"), ("Completed", "completed_at"))
    for label, key in times:
        if d.get(key):
            summary.append(_row(label, f"<code>{e(d[key])}</code>"))
    summary.append(_row("Proofs requested", "yes" if d.get("explain") else "no"))

    sections = [
        f'<section id="summary"><h2>Decision</h2><table>{"".join(summary)}</table></section>',
        f'<section id="inputs"><h2>Inputs</h2>{_facts(doc["inputs"])}</section>',
    ]
    if d.get("datasets"):
        sections.append(f'<section id="datasets"><h2>Datasets</h2>{_datasets(d["datasets"])}</section>')
    error = d.get("error")
    if error:
        diagnostics = "".join(
            f"<li><code>{e(x.get('line', '?'))}:{e(x.get('column', '?'))}</code> "
            f"{e(x.get('message', ''))}</li>"
            for x in error.get("diagnostics") or []
            if isinstance(x, dict)
        )
        sections.append(
            f'<section id="error"><h2>Error</h2><p><code>{e(error.get("code", ""))}</code> '
            f"{e(error.get('message', ''))}</p>"
            + (f"<ul>{diagnostics}</ul>" if diagnostics else "")
            + "</section>"
        )
    if doc["reasons"]:
        reasons = _reasons(doc["reasons"])
        sections.append(f'<section id="reasons"><h2>Principal reasons</h2>{reasons}</section>')
    sections.append(f'<section id="answers"><h2>Answers</h2>{_answers(doc["answers"])}</section>')
    if doc["why_not"]:
        items = "".join(f"<div>{_why_not(w)}</div>" for w in doc["why_not"])
        sections.append(f'<section id="why-not"><h2>Why not</h2>{items}</section>')
    sections.append(f'<section id="trail"><h2>Audit trail</h2>{_trail(doc)}</section>')
    if doc["truncated"]:
        sections.append(
            '<p class="cut">This report is shortened: parts marked "not shown" exceed its bounds '
            "(ENTAIL_REPORT_MAX_PROOF_STEPS, ENTAIL_REPORT_MAX_ROWS). The full record is at "
            f"<code>GET /v1/audit/decisions/{e(d['decision_id'])}</code>.</p>"
        )
    title = f"Decision report {d['decision_id']}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head>"
        "<body><main><header><h1>Decision report</h1>"
        f"<p><code>{e(d['decision_id'])}</code> {state}</p></header>"
        + "".join(sections)
        + f"<footer>Generated by <code>{e(doc['generator_version'])}</code> from the "
        + ("audited record" if audited else "live record")
        + ". The SHA-256 of this document is sent with it (header X-Entail-Report-Sha256) and recorded "
        "in the audit store's decision_reports table.</footer></main></body></html>\n"
    )


def _trail(doc: dict[str, Any]) -> str:
    inclusion = doc.get("inclusion")
    if doc["source"] != "audit":
        return (
            '<p class="note">The decision is not in the audit trail yet; '
            "its row is written when it completes.</p>"
        )
    if not inclusion:
        return (
            '<p class="note">The audited row is not yet covered by a signed Merkle root '
            "(roots are built daily: docs/audit.md).</p>"
        )
    rows = [
        _row("Day (UTC)", e(inclusion.get("day", ""))),
        _row("Root sequence", e(inclusion.get("seq", ""))),
        _row("Leaf index", f"{e(inclusion.get('leaf_index', ''))} of {e(inclusion.get('tree_size', ''))}"),
        _row("Leaf hash", f"<code>{e(inclusion.get('leaf_hash', ''))}</code>"),
        _row("Root hash", f"<code>{e(inclusion.get('root_hash', ''))}</code>"),
        _row(
            "Signing key",
            f"<code>{e(inclusion.get('key_id', ''))}</code> ({e(inclusion.get('algorithm', ''))})",
        ),
    ]
    return (
        f"<table>{''.join(rows)}</table>"
        '<p class="note">The full inclusion proof (audit path, signed statement): '
        f"<code>GET /v1/audit/decisions/{e(doc['decision']['decision_id'])}/inclusion</code>.</p>"
    )
