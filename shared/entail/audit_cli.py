"""``entail audit …`` trail commands and ``entail canary`` (docs/audit.md).

All work on the local audit store (the DuckDB file of ``ENTAIL_AUDIT_DUCKDB_PATH``
or ``--path``) and the local signing key (``ENTAIL_AUDIT_KEYS_DIR``, or a Cloud
KMS key version with ``ENTAIL_AUDIT_KMS_KEY_VERSION``); ``export`` reads BigQuery
when ``ENTAIL_AUDIT_STORE=bigquery`` and no ``--path`` is given, and ``--bucket``
uploads the export to ``ENTAIL_AUDIT_ROOTS_BUCKET``. Exit 0 on success, 1
when a verification or the canary finds a mismatch, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from .cli_remote import add_search_command

EXIT_MISMATCH = 1
EXIT_USAGE = 2


def add_audit_commands(audit_sub: Any) -> None:
    """The trail subcommands of ``entail audit``."""

    def with_path(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--path", help="the DuckDB file (default: ENTAIL_AUDIT_DUCKDB_PATH or .entail/audit.duckdb)"
        )
        return p

    roots = with_path(audit_sub.add_parser("roots", help="build and sign the Merkle roots that are due"))
    roots.add_argument("--tenant", help="only this tenant")
    roots.add_argument(
        "--grace-s", type=float, default=300.0, help="rows younger than this wait (default 300)"
    )
    roots.add_argument(
        "--publish",
        type=Path,
        metavar="DIR",
        help="also write each root built in the last 48 h to DIR/roots/<tenant>/<day>[-supplementary-N].json",
    )
    roots.set_defaults(func=cmd_roots)

    verify = with_path(
        audit_sub.add_parser("verify", help="recompute a day's roots and check their signatures")
    )
    verify.add_argument("--tenant", required=True)
    verify.add_argument("--day", required=True, help="UTC day, YYYY-MM-DD")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_verify)

    inc = with_path(audit_sub.add_parser("inclusion", help="print a decision's inclusion proof (JSON)"))
    inc.add_argument("--tenant", required=True)
    inc.add_argument("decision_id")
    inc.set_defaults(func=cmd_inclusion)

    prov = with_path(
        audit_sub.add_parser("provenance", help="decisions that used a rule or fact, or cited a reason code")
    )
    prov.add_argument("--tenant", required=True)
    prov.add_argument("--start", required=True, help="ISO 8601 with a zone")
    prov.add_argument("--end", required=True, help="ISO 8601 with a zone")
    prov.add_argument("--ruleset")
    prov.add_argument("--version", type=int)
    prov.add_argument("--rule", type=int, help="rule index in that ruleset version (proof rule.index)")
    prov.add_argument("--fact", help='a base fact, e.g. \'income("ann",5200000,"salary")\', or its hash')
    prov.add_argument("--reason-code")
    prov.add_argument("--limit", type=int, default=1000)
    prov.add_argument(
        "--rerun-with",
        type=Path,
        help="a fixed ruleset source: re-run every match with it and report changes",
    )
    prov.set_defaults(func=cmd_provenance)

    hold = audit_sub.add_parser("hold", help="legal holds: keep rows past the 7-year expiry")
    hold_sub = hold.add_subparsers(dest="hold_command", required=True)
    place = with_path(hold_sub.add_parser("place", help="place a hold"))
    place.add_argument("--tenant", required=True)
    place.add_argument("--scope", required=True, choices=["tenant", "ruleset", "decisions"])
    place.add_argument("--ruleset")
    place.add_argument("--decision", action="append", help="repeatable, for scope decisions")
    place.add_argument("--reason", required=True)
    place.add_argument("--actor", required=True, help="who places it")
    place.set_defaults(func=cmd_hold_place)
    rel = with_path(hold_sub.add_parser("release", help="release a hold"))
    rel.add_argument("--tenant", required=True)
    rel.add_argument("hold_id")
    rel.add_argument("--reason", required=True)
    rel.add_argument("--actor", required=True)
    rel.set_defaults(func=cmd_hold_release)
    lst = with_path(hold_sub.add_parser("list", help="holds and their events"))
    lst.add_argument("--tenant", required=True)
    lst.set_defaults(func=cmd_hold_list)

    exp = with_path(audit_sub.add_parser("export", help="a tenant's trail and roots to Parquet + JSONL"))
    exp.add_argument("--tenant", required=True)
    exp.add_argument("--from", dest="first", required=True, help="first UTC day, YYYY-MM-DD")
    exp.add_argument("--to", dest="last", required=True, help="last UTC day (inclusive)")
    exp.add_argument("--out", type=Path, required=True, help="a directory")
    exp.add_argument(
        "--bucket",
        action="store_true",
        help="also upload it to ENTAIL_AUDIT_ROOTS_BUCKET under exports/<tenant>/<from>--<to>/<time>/",
    )
    exp.set_defaults(func=cmd_export)

    key = audit_sub.add_parser("key", help="the local signing key")
    key_sub = key.add_subparsers(dest="key_command", required=True)
    key_sub.add_parser("show", help="print the current public key and its id").set_defaults(func=cmd_key_show)
    key_sub.add_parser("rotate", help="make a new signing key; old roots still verify").set_defaults(
        func=cmd_key_rotate
    )
    add_search_command(audit_sub)  # the one that asks a running service (ENTAIL_URL), not the file


def add_canary_command(sub: Any) -> None:
    canary = sub.add_parser("canary", help="replay a sample of archived decisions with today's engine")
    canary.add_argument("--path", help="the DuckDB file")
    canary.add_argument("--sample-size", type=int, help="default: ENTAIL_CANARY_SAMPLE_SIZE (100)")
    canary.add_argument("--seed", help="default: today's date (reproducible per day)")
    canary.add_argument("--tenant")
    canary.add_argument("--json", action="store_true")
    canary.set_defaults(func=cmd_canary)


# --- plumbing ------------------------------------------------------------------------


class _Usage(Exception):
    pass


def _store(args: argparse.Namespace) -> Any:
    from .audit import DuckDBAuditStore
    from .settings import Settings

    path = Path(args.path) if getattr(args, "path", None) else Settings().audit_path
    if not path.exists():
        raise _Usage(f"no audit store at {path}")
    return DuckDBAuditStore(path, shared=True)


def _run(fn: Any, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        code: int = fn(args, out)
    except (_Usage, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"entail: {message}", file=err)
        return EXIT_USAGE
    return code


def _dump(doc: Any, out: TextIO) -> None:
    json.dump(doc, out, indent=2, ensure_ascii=False)
    out.write("\n")


# --- commands --------------------------------------------------------------------------


def cmd_roots(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(args: argparse.Namespace, out: TextIO) -> int:
        from .audit.roots import build_roots
        from .audit.signing import open_signer
        from .settings import Settings

        signer = open_signer(Settings())
        with _store(args) as store:
            built = build_roots(store, signer, grace=timedelta(seconds=args.grace_s), tenant=args.tenant)
            published = None
            if args.publish is not None:
                from .audit.publish import DirectoryPublisher, publish_roots, recent_roots
                from .audit.trail_job import REPUBLISH_WINDOW

                since = datetime.now(UTC) - REPUBLISH_WINDOW
                recent = [r for r in recent_roots(store, since) if args.tenant in (None, r["tenant"])]
                published = publish_roots(DirectoryPublisher(args.publish), recent)
        for b in built:
            kind = "root" if b.seq == 0 else f"supplementary root {b.seq}"
            print(f"{b.tenant} {b.day}: {kind} over {b.leaf_count} row(s), {b.root_hash}", file=out)
        print(f"{len(built)} root(s) built and signed with key {signer.key_id}", file=out)
        if published is not None:
            print(
                f"{len(published.created)} root(s) published to {args.publish}"
                f" ({len(published.existing)} already there)",
                file=out,
            )
        return 0

    return _run(go, args, out, err)


def cmd_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(args: argparse.Namespace, out: TextIO) -> int:
        from .audit.roots import verify_day
        from .audit.signing import open_keyring
        from .settings import Settings

        with _store(args) as store:
            report = verify_day(store, open_keyring(Settings()), args.tenant, args.day)
        if args.json:
            _dump(report.to_json(), out)
        elif report.ok:
            print(
                f"OK: {report.roots} root(s) of {args.tenant} on {report.day} verify"
                f" over {report.rows} row(s)"
                + (f"; {report.pending} newer row(s) wait for the next root" if report.pending else ""),
                file=out,
            )
        else:
            first = report.problems[0]
            print(f"MISMATCH: {first.message}", file=out)
            for p in report.problems[1:]:
                print(f"  also: {p.message}", file=out)
        return 0 if report.ok else EXIT_MISMATCH

    return _run(go, args, out, err)


def cmd_inclusion(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(args: argparse.Namespace, out: TextIO) -> int:
        from .audit.roots import inclusion

        with _store(args) as store:
            proof = inclusion(store, args.tenant, args.decision_id)
        if proof is None:
            raise _Usage(f"decision {args.decision_id!r} of {args.tenant!r} is in no signed root (yet)")
        _dump(proof, out)
        return 0

    return _run(go, args, out, err)


def cmd_provenance(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(args: argparse.Namespace, out: TextIO) -> int:
        from .audit import provenance_query as pq

        q = pq.build_query(
            args.tenant,
            args.start,
            args.end,
            ruleset_name=args.ruleset,
            ruleset_version=args.version,
            rule=args.rule,
            fact=args.fact,
            reason_code=args.reason_code,
        )
        items: list[dict[str, Any]] = []
        token: str | None = None
        with _store(args) as store:
            while len(items) < args.limit:
                page, token = pq.search(
                    store, q, page_size=min(1000, args.limit - len(items)), page_token=token
                )
                items += page
                if token is None:
                    break
            doc: dict[str, Any] = {"items": items, "truncated": token is not None}
            if args.rerun_with is not None:
                doc["rerun"] = pq.rerun(store, args.tenant, items, args.rerun_with.read_text())
        _dump(doc, out)
        return 0

    return _run(go, args, out, err)


def cmd_hold_place(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(args: argparse.Namespace, out: TextIO) -> int:
        from .audit import holds

        with _store(args) as store:
            hold = holds.place(
                store,
                args.tenant,
                args.scope,
                reason=args.reason,
                actor=args.actor,
                ruleset_name=args.ruleset,
                decision_ids=args.decision,
            )
        _dump(hold.to_json(), out)
        return 0

    return _run(go, args, out, err)


def cmd_hold_release(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(args: argparse.Namespace, out: TextIO) -> int:
        from .audit import holds

        with _store(args) as store:
            hold = holds.release(store, args.tenant, args.hold_id, actor=args.actor, reason=args.reason)
        _dump(hold.to_json(), out)
        return 0

    return _run(go, args, out, err)


def cmd_hold_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(args: argparse.Namespace, out: TextIO) -> int:
        from .audit import holds

        with _store(args) as store:
            doc = {
                "holds": [h.to_json() for h in holds.list_holds(store, args.tenant)],
                "events": holds.events(store, args.tenant),
            }
        _dump(doc, out)
        return 0

    return _run(go, args, out, err)


def cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(args: argparse.Namespace, out: TextIO) -> int:
        from .audit.export import export, export_prefix, upload
        from .audit.signing import open_keyring
        from .bootstrap import open_audit_store, open_root_publisher
        from .settings import Settings

        settings = Settings()
        publisher = open_root_publisher(settings) if args.bucket else None
        if args.bucket and publisher is None:
            raise _Usage("--bucket: set ENTAIL_AUDIT_ROOTS_BUCKET")
        # the configured store: BigQuery in the cloud (ENTAIL_AUDIT_STORE), else the file
        cloud = settings.audit_store == "bigquery" and not args.path
        store: Any = open_audit_store(settings) if cloud else _store(args)
        try:
            result = export(store, open_keyring(settings), args.tenant, args.first, args.last, args.out)
        finally:
            store.close()
        print(f"exported {result.rows} row(s) and {result.roots} root(s) to {result.directory}", file=out)
        if publisher is not None:
            prefix = export_prefix(args.tenant, args.first, args.last, datetime.now(UTC))
            try:
                names = upload(publisher, result.directory, prefix)
            finally:
                close = getattr(publisher, "close", None)
                if close is not None:
                    close()
            bucket = getattr(publisher, "bucket", "")
            print(f"uploaded {len(names)} object(s) to gs://{bucket}/{prefix}/", file=out)
        return 0

    return _run(go, args, out, err)


def cmd_key_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .audit.signing import open_signer
    from .settings import Settings

    signer = open_signer(Settings())
    print(f"key id {signer.key_id} ({signer.algorithm})", file=out)
    out.write(signer.public_key_pem())
    return 0


def cmd_key_rotate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .audit.signing import LocalEd25519Signer
    from .settings import Settings

    settings = Settings()
    if settings.audit_kms_key_version:
        print("entail: KMS keys rotate in Cloud KMS (a new key version), not here", file=err)
        return EXIT_USAGE
    signer = LocalEd25519Signer(settings.audit_keys_path)
    old = signer.key_id
    print(f"rotated: {old} -> {signer.rotate()} (the old public key stays in the keyring)", file=out)
    return 0


def cmd_canary(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    def go(args: argparse.Namespace, out: TextIO) -> int:
        from .audit import canary
        from .settings import Settings

        size = args.sample_size or Settings().canary_sample_size
        with _store(args) as store:
            report = canary.run(store, sample_size=size, seed=args.seed, tenant=args.tenant)
        if args.json:
            _dump(report.to_json(), out)
        else:
            print(
                f"canary {report.run_id} ({report.engine_version}): {report.sampled} decision(s) from "
                f"{report.strata} stratum/strata replayed, {report.matched} identical, "
                f"{len(report.mismatches)} mismatch(es)",
                file=out,
            )
            for m in report.mismatches:
                print(
                    f"  MISMATCH {m['decision_id']} ({m['ruleset_name']}@{m['ruleset_version']}, "
                    f"made by {m['original_engine_version']}): {m['detail']}",
                    file=out,
                )
        return EXIT_MISMATCH if report.mismatches else 0

    return _run(go, args, out, err)
