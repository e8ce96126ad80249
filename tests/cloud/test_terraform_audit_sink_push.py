"""The audit sink as terraform/ deploys it: fed by a plain Pub/Sub push
subscription (with a dead-letter policy), not an Eventarc trigger. The push
request carries the raw envelope ``{"message", "subscription"}`` with no
CloudEvent headers; functions-framework must turn it into the CloudEvent the
function expects, and answer 2xx only for a stored (or rejected) row, so that
anything else is redelivered and finally dead-lettered."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import flask
import functions_framework
import pytest
from integration.audit_sink.helpers import SOURCE, decision, record_bytes, rejected, stored

from entail.models import utcnow


def push_body(data: bytes, message_id: str) -> str:
    """Exactly what Pub/Sub push POSTs (wrapped, not the unwrapped/no-wrapper format)."""
    return json.dumps(
        {
            "message": {
                "data": base64.b64encode(data).decode(),
                "attributes": {"decision_id": "dec_x", "tenant": "acme", "schema": "entail.decision.v1"},
                "messageId": message_id,
                "message_id": message_id,
                "publishTime": utcnow(),
                "publish_time": utcnow(),
            },
            "subscription": "projects/p/subscriptions/audit-sink-push",
        }
    )


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[flask.testing.FlaskClient]:
    monkeypatch.setenv("ENTAIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ENTAIL_AUDIT_DUCKDB_PATH", str(tmp_path / "audit.duckdb"))
    # as Terraform deploys it (main.tf's settings_env): the push subscription's OIDC
    # token is checked by Cloud Functions' IAM, not by the function's own secret
    monkeypatch.setenv("ENTAIL_PUSH_AUTH", "oidc")
    monkeypatch.setenv("ENTAIL_PUSH_SERVICE_ACCOUNT", "push@example-project.iam.gserviceaccount.com")
    app = functions_framework.create_app(target="audit_sink", source=str(SOURCE), signature_type="cloudevent")
    try:
        yield app.test_client()
    finally:
        sys.modules["main"].sink.reset()  # the framework loads the source as module ``main``


def test_raw_push_envelope_is_stored_once(client: flask.testing.FlaskClient, tmp_path: Path) -> None:
    record = decision()
    headers = {"Content-Type": "application/json"}
    first = client.post("/", data=push_body(record_bytes(record), "41"), headers=headers)
    again = client.post("/", data=push_body(record_bytes(record), "41"), headers=headers)  # a redelivery
    assert first.status_code == 200, first.get_data(as_text=True)
    assert again.status_code == 200
    assert stored(tmp_path / "audit.duckdb") == {record.decision_id: 1}


def test_raw_push_of_poison_is_rejected_and_acked(client: flask.testing.FlaskClient, tmp_path: Path) -> None:
    response = client.post(
        "/", data=push_body(b"{not json", "42"), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    [(_, reason, _)] = rejected(tmp_path / "audit.duckdb")
    assert reason


def test_raw_push_is_not_acked_when_the_store_fails(
    client: flask.testing.FlaskClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("ENTAIL_AUDIT_DUCKDB_PATH", str(blocker / "audit.duckdb"))
    response = client.post(
        "/", data=push_body(record_bytes(decision()), "43"), headers={"Content-Type": "application/json"}
    )
    # not 2xx: Pub/Sub redelivers, then dead-letters after max_delivery_attempts
    assert response.status_code >= 500
