"""Publishing a final decision record on topic ``decisions`` (the audit trail)."""

from __future__ import annotations

from ..models import DECISION_SCHEMA, DecisionRecord
from ..record_json import dump_record
from .port import DECISIONS, Bus


async def publish_decision(bus: Bus, record: DecisionRecord) -> str:
    """Publish ``record`` (any proof depth) with the attributes the audit sink
    routes on; returns the message id."""
    return await bus.publish(
        DECISIONS,
        dump_record(record).encode(),
        {"decision_id": record.decision_id, "tenant": record.tenant, "schema": DECISION_SCHEMA},
    )
