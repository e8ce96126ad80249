"""The audit sink in process: called with a real CloudEvent, and through the
functions framework's own Flask app (binary-mode CloudEvents over WSGI)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import flask
import functions_framework
import pytest
from cloudevents.http import CloudEvent

from entail.audit import duckdb_store
from entail.bus.push import PUSH_SECRET_HEADER

from .helpers import EVENT_TYPE, SOURCE, ce_headers, decision, event_data, record_bytes, rejected, stored


def cloud_event(data: dict[str, Any], message_id: str = "1") -> CloudEvent:
    attributes = {
        "id": message_id,
        "source": "//pubsub.googleapis.com/projects/local/topics/decisions",
        "type": EVENT_TYPE,
        "specversion": "1.0",
    }
    return CloudEvent(attributes, data)


POISON: dict[str, tuple[bytes | str, str]] = {
    "not base64": ("%%% not base64 %%%", "not valid base64"),
    "not utf-8": (b"\xff\xfe{", "not UTF-8"),
    "not json": (b"{not json", "not JSON"),
    "json list": (b"[1, 2]", "JSON list"),
    "not a record": (b'{"decision_id": "dec_x", "tenant": "acme"}', ""),
    "not final": (b"", ""),  # filled in by the test: a running record
}


# -- (a) the function called directly ----------------------------------------------------


def test_stores_a_decision_and_connects_nothing_before_the_first_message(
    sink: ModuleType, audit_path: Path
) -> None:
    assert not sink.sink.store_open and not audit_path.exists()
    record = decision()
    assert sink.audit_sink(cloud_event(event_data(record_bytes(record)))) is None
    assert stored(audit_path) == {record.decision_id: 1}
    assert rejected(audit_path) == []
    got = sink.sink.store().get_decision("acme", record.decision_id)
    assert got is not None and got.answers == record.answers and got.completed_at == record.completed_at


def test_redelivery_is_stored_once(sink: ModuleType, audit_path: Path) -> None:
    record = decision()
    for message_id in ("1", "1", "2"):  # the same message again, and the record republished
        sink.audit_sink(cloud_event(event_data(record_bytes(record), message_id), message_id))
    assert stored(audit_path) == {record.decision_id: 1}


@pytest.mark.parametrize("kind", sorted(POISON))
def test_poison_is_rejected_with_a_reason_and_acked(sink: ModuleType, audit_path: Path, kind: str) -> None:
    data, reason_part = POISON[kind]
    if kind == "not final":
        data = record_bytes(decision(status="running"))
    sink.audit_sink(cloud_event(event_data(data)))  # returns: the message is acked
    assert stored(audit_path) == {}
    [(_, reason, payload)] = rejected(audit_path)
    assert reason
    if reason_part:  # undecodable: the payload says what and why
        assert reason_part in payload["error"]
        assert payload["raw"]
    if kind == "not final":
        assert "status" in reason or "final" in reason


def test_event_without_a_message_is_rejected(sink: ModuleType, audit_path: Path) -> None:
    sink.audit_sink(cloud_event({"unexpected": True}))
    [(_, _, payload)] = rejected(audit_path)
    assert "no Pub/Sub message" in payload["error"]


def test_unwritable_store_raises_and_a_later_delivery_succeeds(
    sink: ModuleType, audit_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ENTAIL_AUDIT_DUCKDB_PATH", str(blocker / "audit.duckdb"))
    record = decision()
    event = cloud_event(event_data(record_bytes(record)))
    with pytest.raises(OSError, match="a-file"):
        sink.audit_sink(event)
    assert not sink.sink.store_open  # a failed open is not cached
    monkeypatch.setenv("ENTAIL_AUDIT_DUCKDB_PATH", str(audit_path))
    sink.audit_sink(event)
    assert stored(audit_path) == {record.decision_id: 1}


# -- (b) through the functions framework's app ----------------------------------------------


@pytest.fixture
def client(audit_path: Path) -> Iterator[flask.testing.FlaskClient]:
    app = functions_framework.create_app(target="audit_sink", source=str(SOURCE), signature_type="cloudevent")
    try:
        yield app.test_client()
    finally:
        sys.modules["main"].sink.reset()  # the framework loads the source as module ``main``


def post(client: flask.testing.FlaskClient, data: bytes | str, message_id: str = "1") -> Any:
    body = json.dumps(event_data(data, message_id))
    return client.post("/", data=body, headers=ce_headers(message_id))


def test_app_acks_a_binary_mode_cloudevent_and_stores_once(
    client: flask.testing.FlaskClient, audit_path: Path
) -> None:
    record = decision()
    first = post(client, record_bytes(record), "1")
    again = post(client, record_bytes(record), "1")
    assert (first.status_code, first.get_data(as_text=True)) == (200, "OK")
    assert again.status_code == 200
    assert stored(audit_path) == {record.decision_id: 1}


def test_app_acks_poison_after_rejecting_it(client: flask.testing.FlaskClient, audit_path: Path) -> None:
    assert post(client, b"{not json").status_code == 200
    assert post(client, record_bytes(decision(status="pending"))).status_code == 200
    assert stored(audit_path) == {}
    assert len(rejected(audit_path)) == 2


def test_app_answers_500_while_another_process_holds_the_file(
    client: flask.testing.FlaskClient, audit_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit_path.parent.mkdir(parents=True)
    monkeypatch.setattr(duckdb_store, "LOCK_WAIT_S", 0.3)  # the store's wait for the lock, shortened
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " sys.stdin.read()",
            str(audit_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        record = decision()
        response = post(client, record_bytes(record))
        assert response.status_code == 500  # nacked: Pub/Sub delivers it again
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    assert post(client, record_bytes(record)).status_code == 200
    assert stored(audit_path) == {record.decision_id: 1}


def test_app_refuses_a_delivery_without_the_push_secret(
    client: flask.testing.FlaskClient, audit_path: Path
) -> None:
    headers = {k: v for k, v in ce_headers().items() if k != PUSH_SECRET_HEADER}
    response = client.post("/", data=json.dumps(event_data(record_bytes(decision()))), headers=headers)
    assert response.status_code == 401
    assert PUSH_SECRET_HEADER in response.get_data(as_text=True)
    assert not audit_path.exists()  # refused before the store was opened
