"""The audit sink as ``entail up`` runs it: the functions-framework target
(``--source <this file> --target audit_sink``), shipped in the installed package
so that the local stack needs no checkout.

The same adapter as the Cloud Function ``functions/audit_sink/main.py`` (which
is deployed as a folder of its own and so cannot import this package): both
hand each CloudEvent to :class:`entail.audit_sink.AuditSink`, built by
:func:`entail.bootstrap.open_audit_sink`.
"""

from __future__ import annotations

import os

import flask
import functions_framework
from cloudevents.http import CloudEvent

from entail.audit_sink import SenderRefused, configure_logging
from entail.bootstrap import open_audit_sink
from entail.process_heap import freeze_startup_heap

# As many requests served at once as the relay keeps pushes in flight (16; the
# framework's default is 4 per CPU): the group commit's batches grow to match,
# and DuckDB's fixed cost per INSERT is shared by up to 16 decisions. Read by
# functions-framework once this file is loaded, and by the group commit below.
os.environ.setdefault("THREADS", "16")
configure_logging()
sink = open_audit_sink()
freeze_startup_heap()  # full collections skip the startup heap: 75-310 ms pauses under load


@functions_framework.cloud_event
def audit_sink(cloud_event: CloudEvent) -> None:
    """Store the decision of one Pub/Sub message; raise only when a retry may help."""
    if flask.has_request_context():
        try:
            sink.check_sender(flask.request.headers, flask.request.remote_addr)
        except SenderRefused as exc:
            flask.abort(401, description=str(exc))
    sink.deliver(cloud_event.get_data(), cloud_event["id"])
