"""Publishing signed roots (entail.audit.publish): object names, the published
document, a directory publisher that never overwrites, and
``entail audit roots --publish DIR`` end to end on a DuckDB file. The Cloud
Storage adapter runs against gcp-storage-emulator in
tests/integration/functions/test_trail_roots.py."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from trail_support import DAY, NOON, decision, filled_store

from entail.audit import roots
from entail.audit.publish import DirectoryPublisher, PublishConflict, document, object_name
from entail.audit.signing import Keyring
from entail.cli import main


def test_object_names_follow_the_documented_layout() -> None:
    assert object_name({"tenant": "acme", "day": "2026-11-20", "seq": 0}) == "roots/acme/2026-11-20.json"
    assert (
        object_name({"tenant": "acme", "day": "2026-11-20", "seq": 2})
        == "roots/acme/2026-11-20-supplementary-2.json"
    )
    for tenant in ("../etc", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="cannot name an object path"):
            object_name({"tenant": tenant, "day": "2026-11-20", "seq": 0})
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        object_name({"tenant": "acme", "day": "../../x", "seq": 0})


def test_a_directory_publisher_creates_once_and_never_overwrites(tmp_path: Path) -> None:
    publisher = DirectoryPublisher(tmp_path)
    assert publisher.put("roots/acme/2026-11-20.json", b"one\n") == "created"
    assert publisher.put("roots/acme/2026-11-20.json", b"one\n") == "exists"
    with pytest.raises(PublishConflict, match="other content"):
        publisher.put("roots/acme/2026-11-20.json", b"two\n")
    assert (tmp_path / "roots/acme/2026-11-20.json").read_bytes() == b"one\n"


def test_roots_are_published_by_the_cli_and_verify_from_the_copy(tmp_path: Path) -> None:
    db = tmp_path / "audit.duckdb"
    filled_store(4, path=db).close()
    env_keys = tmp_path / "keys"
    out, err = io.StringIO(), io.StringIO()
    argv = ["audit", "roots", "--path", str(db), "--grace-s", "0", "--publish", str(tmp_path / "pub")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENTAIL_AUDIT_KEYS_DIR", str(env_keys))
        assert main(argv, out=out, err=err) == 0, err.getvalue()
        assert "1 root(s) published" in out.getvalue()
        published = tmp_path / "pub" / "roots" / "acme" / f"{DAY}.json"
        root = json.loads(published.read_text())
        # the published copy is the stored root and its signature checks with the public key alone
        assert roots.check_root_signature(root, Keyring(env_keys / "public")) is None
        assert published.read_bytes() == document(root)
        # a late row: its supplementary root is published beside; the first is left as it was
        store = filled_store(0, path=db)
        store.insert_decisions([decision(50, NOON + timedelta(hours=3))])
        store.close()
        again = io.StringIO()
        assert main(argv, out=again, err=err) == 0, err.getvalue()
        assert "1 root(s) published" in again.getvalue() and "(1 already there)" in again.getvalue()
        assert (published.parent / f"{DAY}-supplementary-1.json").exists()
        # a tampered published copy is a conflict, reported as a message, not a traceback
        published.chmod(0o644)
        published.write_text("{}\n")
        bad = io.StringIO()
        assert main(argv, out=io.StringIO(), err=bad) == 2
        assert "exists with other content" in bad.getvalue()
