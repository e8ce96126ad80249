"""The service-level objectives of terraform/modules/entail/slo.tf (issue 20 §3),
read with python-hcl2 and, where a terraform binary exists, evaluated by it.

- every SLO has a fast and a slow multi-window burn-rate alert;
- every SLI reads a metric that exists, of the kind its SLI type needs (a
  request ratio counts DELTA/CUMULATIVE numbers, a distribution cut reads a
  DISTRIBUTION), on the monitored resource the metric is written for;
- the dashboard JSON parses, every placeholder in it is filled by the
  templatefile() call, and its charts cover every tier a decision crosses;
- docs/operations.md explains every SLO, and README and docs/design.md link it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from . import iac_tools as iac

MODULE = "modules/entail"
MODULE_DIR = iac.TERRAFORM_DIR / MODULE
DASHBOARD = MODULE_DIR / "dashboards" / "latency.json"
OPERATIONS = iac.ROOT / "docs" / "operations.md"

# The Google Cloud metrics the module reads, as Cloud Monitoring's metrics list
# (https://cloud.google.com/monitoring/api/metrics_gcp) describes them:
# type -> (monitored resource type, metric kind, value type).
GOOGLE_METRICS = {
    "run.googleapis.com/request_count": ("cloud_run_revision", "DELTA", "INT64"),
    "run.googleapis.com/request_latencies": ("cloud_run_revision", "DELTA", "DISTRIBUTION"),
    "pubsub.googleapis.com/subscription/push_request_count": ("pubsub_subscription", "DELTA", "INT64"),
    "pubsub.googleapis.com/subscription/push_request_latencies": (
        "pubsub_subscription",
        "DELTA",
        "DISTRIBUTION",
    ),
    "pubsub.googleapis.com/subscription/dead_letter_message_count": ("pubsub_subscription", "DELTA", "INT64"),
    "pubsub.googleapis.com/subscription/num_undelivered_messages": ("pubsub_subscription", "GAUGE", "INT64"),
    "pubsub.googleapis.com/subscription/oldest_unacked_message_age": (
        "pubsub_subscription",
        "GAUGE",
        "INT64",
    ),
    "redis.googleapis.com/stats/memory/usage_ratio": ("redis_instance", "GAUGE", "DOUBLE"),
}
USER_METRIC = re.compile(r"^logging\.googleapis\.com/user/\$\{google_logging_metric\.([a-z0-9_]+)\.name\}$")
METRIC_TYPE = re.compile(r'metric\.type\s*=\s*"([^"]+)"')
RESOURCE_TYPE = re.compile(r'resource\.type\s*=\s*"([^"]+)"')
PLACEHOLDER = re.compile(r"(?<!\$)\$\{([a-z_]+)\}")


@pytest.fixture(scope="module")
def entail() -> dict[tuple[str, str], dict[str, Any]]:
    return iac.resources(MODULE)


def unescape(expression: str) -> str:
    """python-hcl2 keeps the source's escapes: ``\\"`` inside a string is ``"``."""
    return expression.replace('\\"', '"')


def one(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, items
    return items[0]


def describe(metric: str, entail: dict[tuple[str, str], dict[str, Any]]) -> tuple[str, str, str]:
    """(resource type, kind, value type) of a metric the module reads; fails on an unknown one."""
    if metric in GOOGLE_METRICS:
        return GOOGLE_METRICS[metric]
    m = USER_METRIC.match(metric)
    assert m, f"{metric}: neither a Google Cloud metric of GOOGLE_METRICS nor a log metric of the module"
    body = entail.get(("google_logging_metric", m.group(1)))
    assert body is not None, f"{metric}: no google_logging_metric {m.group(1)}"
    descriptor = one(body["metric_descriptor"])
    # the audit sink writes them: a gen2 function logs as its Cloud Run service
    return "cloud_run_revision", descriptor["metric_kind"], descriptor["value_type"]


# --- SLOs and burn-rate alerts ------------------------------------------------------


def test_every_slo_has_a_fast_and_a_slow_burn_rate_alert(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    local = iac.locals_of(MODULE)
    slos = {name for (rtype, name) in entail if rtype == "google_monitoring_slo"}
    assert slos == {"availability", "decision_latency", "audit_lag", "delivery"}
    assert local["slos"] == {name: f"${{google_monitoring_slo.{name}.name}}" for name in slos}

    windows = local["burn_rate_alerts"]
    assert set(windows) == {"fast", "slow"}
    period_s = local["slo_period_days"] * 24 * 3600
    for speed, (long_s, short_s, rate, budget) in {
        "fast": (3600, 300, 14.4, 0.02),  # 2% of the budget in an hour: page
        "slow": (21600, 1800, 6, 0.05),  # 5% in six hours
    }.items():
        w = windows[speed]
        assert (w["long_window"], w["short_window"], w["burn_rate"]) == (f"{long_s}s", f"{short_s}s", rate)
        assert w["short_window"] != w["long_window"] and short_s * 12 == long_s  # the workbook's 1/12
        # burning at `rate` for the long window spends at least `budget` of the period's budget
        assert rate * long_s / period_s >= budget, speed

    expression = local["slo_alerts"]
    assert "setproduct(keys(local.slos), keys(local.burn_rate_alerts))" in expression
    policy = entail[("google_monitoring_alert_policy", "slo_burn")]
    assert policy["for_each"] == "${local.slo_alerts}"
    # both windows must burn: the long one for significance, the short one to reset quickly
    assert policy["combiner"] == "AND"
    filters = sorted(unescape(one(c["condition_threshold"])["filter"]) for c in policy["conditions"])
    assert filters == [
        'select_slo_burn_rate("${local.slos[each.value.slo]}", "${each.value.long_window}")',
        'select_slo_burn_rate("${local.slos[each.value.slo]}", "${each.value.short_window}")',
    ]
    for condition in policy["conditions"]:
        threshold = one(condition["condition_threshold"])
        assert threshold["comparison"] == "COMPARISON_GT"
        assert threshold["threshold_value"] == "${each.value.burn_rate}"
    # fast burns page, slow burns notify; both reach the on-call email
    assert policy["notification_channels"] == (
        '${each.value.speed == "fast" ? local.notify_page : local.notify_ticket}'
    )
    for name in ("notify_page", "notify_ticket"):
        assert local[name].startswith("${concat(local.notify, var."), local[name]
    assert "docs/operations.md" in one(policy["documentation"])["content"]
    assert set(local["slo_runbooks"]) == slos


TERRAFORM = shutil.which("terraform")


def console(folder: Path, expression: str) -> Any:
    """The value of ``expression`` in the configuration of ``folder``, by ``terraform console``."""
    assert TERRAFORM is not None
    (folder / "cli.tfrc").write_text("")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TF_")},
        "TF_CLI_CONFIG_FILE": str(folder / "cli.tfrc"),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }
    out = subprocess.run(
        [TERRAFORM, f"-chdir={folder}", "console"],
        input=f"jsonencode({expression})\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(json.loads(out.stdout))


@pytest.mark.skipif(TERRAFORM is None, reason="no terraform binary on PATH")
def test_terraform_expands_the_alerts_to_every_slo_times_every_speed(tmp_path: Path) -> None:
    """The module's own slo_alerts expression, evaluated by Terraform with the SLO
    names stubbed (they are known only after apply)."""
    local = iac.locals_of(MODULE)
    stub = {name: f"projects/p/services/s/serviceLevelObjectives/{name}" for name in local["slos"]}
    (tmp_path / "main.tf").write_text(
        "locals {\n"
        f"  slos = jsondecode({json.dumps(json.dumps(stub))})\n"
        f"  burn_rate_alerts = jsondecode({json.dumps(json.dumps(local['burn_rate_alerts']))})\n"
        f"  slo_alerts = {local['slo_alerts'].removeprefix('${').removesuffix('}')}\n"
        "}\n"
    )
    alerts = console(tmp_path, "local.slo_alerts")
    assert set(alerts) == {f"{slo}-{speed}" for slo in stub for speed in ("fast", "slow")}
    for key, alert in alerts.items():
        assert key == f"{alert['slo']}-{alert['speed']}"
        assert alert["long_window"] == local["burn_rate_alerts"][alert["speed"]]["long_window"]


def sli_filters(slo: dict[str, Any]) -> dict[str, str]:
    """SLI field -> filter of a request-based SLO (``join(" AND ", [...])`` flattened)."""
    sli = one(slo["request_based_sli"])
    found = {}
    for kind, fields in (
        ("good_total_ratio", ("good_service_filter", "bad_service_filter", "total_service_filter")),
        ("distribution_cut", ("distribution_filter",)),
    ):
        for block in sli.get(kind, []):
            for field in fields:
                if field in block:
                    found[f"{kind}.{field}"] = unescape(block[field])
    return found


def test_every_sli_reads_an_existing_metric_of_the_kind_it_needs(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for (rtype, name), slo in entail.items():
        if rtype != "google_monitoring_slo":
            continue
        assert 0 < float(iac.named("variable", MODULE)[slo["goal"][6:-1]]["default"]) <= 0.999
        filters = sli_filters(slo)
        assert filters, f"{name}: no request-based SLI"
        for field, text in filters.items():
            metrics = METRIC_TYPE.findall(text)
            assert len(metrics) == 1, (name, field, text)
            resource, kind, value_type = describe(metrics[0], entail)
            assert RESOURCE_TYPE.findall(text) == [resource], (name, field, text)
            if field.startswith("good_total_ratio"):
                assert kind in {"DELTA", "CUMULATIVE"} and value_type in {"INT64", "DOUBLE"}, (name, field)
            else:
                assert value_type == "DISTRIBUTION" and kind in {"DELTA", "CUMULATIVE"}, (name, field)
        if "distribution_cut.distribution_filter" in filters:
            # the cut is in the metric's unit: a threshold variable in milliseconds
            cut = one(one(one(slo["request_based_sli"])["distribution_cut"])["range"])
            assert re.fullmatch(r"\$\{var\.slo_[a-z_]+_threshold_ms\}", cut["max"]), cut
            metric = METRIC_TYPE.findall(filters["distribution_cut.distribution_filter"])[0]
            log_metric = entail[("google_logging_metric", USER_METRIC.match(metric).group(1))]  # type: ignore[union-attr]
            assert one(log_metric["metric_descriptor"])["unit"] == "ms"
            # the bucket bounds include the threshold itself, so the cut is exact
            bounds = one(one(log_metric["bucket_options"])["explicit_buckets"])["bounds"]
            assert bounds == "${local.latency_bucket_bounds_ms}"
            assert cut["max"][2:-1] in iac.locals_of(MODULE)["latency_bucket_bounds_ms"]


def test_the_log_metrics_read_the_audit_sinks_structured_fields(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """decision_ms and audit_lag_ms are fields of the audit sink's JSON log line
    (jsonPayload in Cloud Logging); docs/operations.md says who writes them."""
    operations = OPERATIONS.read_text()
    for name, field in (("decision_latency", "decision_ms"), ("audit_lag", "audit_lag_ms")):
        metric = entail[("google_logging_metric", name)]
        assert metric["value_extractor"] == f"EXTRACT(jsonPayload.{field})"
        assert metric["filter"].endswith(f"AND jsonPayload.{field}:*"), metric["filter"]
        assert metric["filter"].startswith("${local.audit_sink_log_filter}")
        assert f"`{field}`" in operations, field
    sink_filter = iac.locals_of(MODULE)["audit_sink_log_filter"]
    assert "google_cloudfunctions2_function.audit_sink.name" in sink_filter


def test_every_metric_the_module_reads_exists(entail: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Alert conditions, SLIs and the dashboard: no typo in a metric type."""
    seen = set()
    for path in sorted(MODULE_DIR.glob("*.tf")):
        for metric in METRIC_TYPE.findall(path.read_text().replace('\\"', '"')):
            describe(metric, entail)
            seen.add(metric)
    for metric in METRIC_TYPE.findall(unescape(rendered_dashboard_text())):
        describe(metric, entail)
        seen.add(metric)
    unused = set(GOOGLE_METRICS) - seen
    assert not unused, f"GOOGLE_METRICS lists metrics nothing reads: {unused}"


# --- the dashboard ------------------------------------------------------------------


def templatefile_arguments() -> dict[str, str]:
    """name -> HCL expression of the templatefile() call of the dashboard resource."""
    call = iac.resources(MODULE)[("google_monitoring_dashboard", "latency")]["dashboard_json"]
    assert call.startswith('${templatefile("${path.module}/dashboards/latency.json", {'), call
    body = call[call.index(", {") + 3 : call.rindex("})")]
    return dict(re.findall(r"([a-z_]+) = ([^,]+)", body))


def stand_ins() -> dict[str, str]:
    """A value for each templatefile() argument: the HCL expression's resource or
    variable, so a rendered metric type names the log metric it comes from."""
    out = {}
    for name, expression in templatefile_arguments().items():
        if m := re.fullmatch(r"google_logging_metric\.([a-z_]+)\.name", expression.strip()):
            out[name] = f"${{google_logging_metric.{m.group(1)}.name}}"
        else:
            out[name] = f"stand-in-{name}"
    return out


def rendered_dashboard_text() -> str:
    text = DASHBOARD.read_text()
    values = stand_ins()
    text = PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    return text.replace("$${", "${")  # templatefile's escape of a literal ${


def test_the_dashboard_parses_and_every_placeholder_is_filled() -> None:
    raw = json.loads(DASHBOARD.read_text())  # placeholders only ever sit inside strings
    placeholders = set(PLACEHOLDER.findall(DASHBOARD.read_text()))
    assert placeholders == set(templatefile_arguments()), placeholders ^ set(templatefile_arguments())
    rendered = json.loads(rendered_dashboard_text())
    assert rendered["displayName"] and raw["mosaicLayout"]["columns"] == 48
    tiles = rendered["mosaicLayout"]["tiles"]
    # the tiles fit the grid and do not overlap
    cells: set[tuple[int, int]] = set()
    for tile in tiles:
        assert tile["xPos"] + tile["width"] <= 48, tile["widget"]["title"]
        area = {
            (x, y)
            for x in range(tile["xPos"], tile["xPos"] + tile["width"])
            for y in range(tile["yPos"], tile["yPos"] + tile["height"])
        }
        assert not area & cells, f"{tile['widget']['title']} overlaps another tile"
        cells |= area
        assert tile["widget"]["title"]


def test_the_dashboard_shows_every_tier_a_decision_crosses(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    tiles = json.loads(rendered_dashboard_text())["mosaicLayout"]["tiles"]
    filters = []
    for tile in tiles:
        for data in tile["widget"].get("xyChart", {}).get("dataSets", []):
            query = data["timeSeriesQuery"]["timeSeriesFilter"]
            filters.append(query["filter"])
            (metric,) = METRIC_TYPE.findall(query["filter"])
            resource, _, value_type = describe(metric, entail)
            assert RESOURCE_TYPE.findall(query["filter"]) == [resource], query["filter"]
            if value_type == "DISTRIBUTION":
                # percentiles across revisions and subscriptions, never a mean of means
                assert query["aggregation"]["perSeriesAligner"] == "ALIGN_DELTA", tile["widget"]["title"]
                assert query["aggregation"]["crossSeriesReducer"].startswith("REDUCE_PERCENTILE_")
    text = " ".join(filters)
    for tier in (
        'service_name="stand-in-backend_service"',
        'subscription_id="stand-in-jobs_subscription"',
        'service_name="stand-in-worker_service"',
        "google_logging_metric.decision_latency.name",
        'subscription_id="stand-in-decisions_subscription"',
        'service_name="stand-in-audit_sink_service"',
        "google_logging_metric.audit_lag.name",
    ):
        assert tier in text, f"no chart of {tier}"
    intro = tiles[0]["widget"]["text"]["content"]
    assert "traces" in intro and "docs/operations.md" in intro


@pytest.mark.skipif(TERRAFORM is None, reason="no terraform binary on PATH")
def test_terraform_renders_the_dashboard_as_json(tmp_path: Path) -> None:
    """templatefile() itself: a ``${`` the template did not mean would fail here."""
    values = {name: f"stand-in-{name}" for name in templatefile_arguments()}
    shutil.copy(DASHBOARD, tmp_path / "latency.json")
    (tmp_path / "main.tf").write_text("")
    rendered = console(
        tmp_path, f'jsondecode(templatefile("latency.json", jsondecode({json.dumps(json.dumps(values))})))'
    )
    assert rendered["displayName"] == "Entail stand-in-environment: latency per tier"
    legends = [
        d.get("legendTemplate")
        for t in rendered["mosaicLayout"]["tiles"]
        for d in t["widget"].get("xyChart", {}).get("dataSets", [])
    ]
    assert "${resource.labels.subscription_id}" in legends  # Monitoring's own template, kept


# --- tracing and the operator's guide -------------------------------------------------------


def test_every_workload_may_write_traces(entail: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert "cloudtrace.googleapis.com" in iac.locals_of(MODULE)["services"]
    grant = entail[("google_project_iam_member", "writes_traces")]
    assert grant["role"] == "roles/cloudtrace.agent"
    assert set(grant["for_each"]) == {"backend", "worker", "audit_sink", "batch_reason"}
    for name, member in grant["for_each"].items():
        assert member == f"${{google_service_account.{name}.member}}"


def test_operations_guide_covers_every_slo_and_is_linked() -> None:
    text = OPERATIONS.read_text()
    for slo in iac.resources(MODULE):
        if slo[0] == "google_monitoring_slo":
            assert f"`{slo[1]}`" in text, f"docs/operations.md does not explain SLO {slo[1]}"
    for needle in ("select_slo_burn_rate", "X-Request-Id", "logging.googleapis.com/trace", "/v1/decisions/"):
        assert needle in text, needle
    for doc in (iac.ROOT / "README.md", iac.ROOT / "docs" / "design.md"):
        assert "operations.md" in doc.read_text(), f"{doc.name} does not link docs/operations.md"
