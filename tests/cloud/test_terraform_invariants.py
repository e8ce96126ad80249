"""Invariants of terraform/, read with python-hcl2 (no providers, no plan).

The design's non-negotiables (docs/design.md: Tiers, Contracts) as checks on the
source: three warm instances of each service, a private worker, OIDC push and
dead letters on every push subscription, HA Redis with two read replicas, the
audit tables' seven-year partitions, typed and described variables with units,
and environment variables the services actually read.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

import pytest
import redis

from entail.audit.schema import RETENTION_DAYS, TABLES
from entail.settings import Settings

from . import iac_tools as iac
from .terraform_instances import instance

MODULE = "modules/entail"
CLOUDFLARE = "modules/cloudflare"
ENVIRONMENTS = ("environments/staging", "environments/prod")
FOLDERS = (MODULE, CLOUDFLARE, *ENVIRONMENTS)

VAR_REF = re.compile(r"^\$\{var\.([a-z0-9_]+)\}$")

# a number variable says what it counts or measures in its name
UNIT_SUFFIXES = (
    "_seconds",
    "_ms",
    "_mib",
    "_gb",
    "_count",
    "_instances",
    "_requests",
    "_attempts",
    "_ratio",
    "_per_second",
    "_per_minute",
)


@pytest.fixture(scope="module")
def entail() -> dict[tuple[str, str], dict[str, Any]]:
    return iac.resources(MODULE)


def module_variable_values(name: str) -> list[Any]:
    """The values a module variable takes: its default and what each environment passes."""
    variables = iac.named("variable", MODULE)
    values = []
    if "default" in variables[name]:
        values.append(variables[name]["default"])
    for env in ENVIRONMENTS:
        call = iac.named("module", env)["entail"]
        if name in call:
            values.append(call[name])
    return values


def resolve(value: Any) -> list[Any]:
    """A literal, or every value of the module variable it references."""
    match = VAR_REF.match(value) if isinstance(value, str) else None
    return module_variable_values(match.group(1)) if match else [value]


def one(items: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(items) == 1, items
    return items[0]


def cloud_run(key: str) -> dict[str, Any]:
    """google_cloud_run_v2_service.service[key], expanded from local.cloud_run_services."""
    return instance(MODULE, "google_cloud_run_v2_service", "service", key)


SERVICE_REF = 'google_cloud_run_v2_service.service["{}"]'


# --- Cloud Run ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "port"), [("backend", 3005), ("worker", 4002)])
def test_cloud_run_services_keep_three_warm_instances_and_are_sized_by_variables(
    entail: dict[tuple[str, str], dict[str, Any]], name: str, port: int
) -> None:
    service = cloud_run(name)
    template = one(service["template"])
    scaling = one(template["scaling"])
    values = resolve(scaling["min_instance_count"])
    assert values, "min_instance_count has no value"
    assert all(isinstance(v, int) and v >= 3 for v in values), values
    # the module refuses fewer than 3 even when an environment asks
    var = iac.named("variable", MODULE)[VAR_REF.match(scaling["min_instance_count"]).group(1)]  # type: ignore[union-attr]
    assert ">= 3" in one(var["validation"])["condition"]

    assert VAR_REF.match(scaling["max_instance_count"])
    assert VAR_REF.match(template["max_instance_request_concurrency"])
    container = one(template["containers"])
    assert one(container["ports"])["container_port"] == port
    limits = one(container["resources"])["limits"]
    assert "var." in limits["cpu"] and "var." in limits["memory"]
    assert limits["memory"] == f"${{var.{name}_memory_mib}}Mi", limits
    assert one(template["vpc_access"])["network_interfaces"], "no VPC access to Redis"


def test_every_entail_environment_variable_is_a_setting_the_services_read() -> None:
    fields = set(Settings.model_fields)
    # every ENTAIL_ name in the module's code (comments are not parsed)
    text = json.dumps({p: b for p, b in iac.terraform().items() if p.startswith(MODULE)})
    names = set(re.findall(r"\bENTAIL_[A-Z0-9_]+", text))
    assert len(names) > 10, names
    unknown = sorted(n for n in names if n.removeprefix("ENTAIL_").lower() not in fields)
    assert not unknown, f"set in Terraform but not read by entail.settings: {unknown}"
    # Cloud Run sets PORT itself (the container port)
    assert '"PORT"' not in text


def test_the_two_services_are_one_resource_over_local_cloud_run_services(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    services = iac.locals_of(MODULE)["cloud_run_services"]
    assert set(services) == {"backend", "worker"}
    assert {services[k]["name"] for k in services} == {"backend", "reasoning-worker"}
    assert [name for (rtype, name) in entail if rtype == "google_cloud_run_v2_service"] == ["service"]
    assert entail[("google_cloud_run_v2_service", "service")]["for_each"] == "${local.cloud_run_services}"
    # each key's data is its own: no variable of one service configures the other
    for key, data in services.items():
        other = "worker" if key == "backend" else "backend"
        assert f"var.{other}_" not in json.dumps(data), (key, data)
        assert f"google_service_account.{other}." not in json.dumps(data), (key, data)


def test_secrets_come_from_secret_manager(entail: dict[tuple[str, str], dict[str, Any]]) -> None:
    for name in ("backend", "worker"):
        container = one(one(cloud_run(name)["template"])["containers"])
        dynamic_envs = [d["env"] for d in container["dynamic"] if "env" in d]
        from_secrets = [e for e in dynamic_envs if "value_source" in one(e["content"])]
        assert from_secrets, f"{name}: no environment variable from Secret Manager"
        assert one(from_secrets)["for_each"] == f"${{local.{name}_secret_env}}"
    local = iac.locals_of(MODULE)
    for key in ("ENTAIL_REDIS_URL", "ENTAIL_REDIS_READ_URL"):
        assert "google_secret_manager_secret" in local["redis_secret_env"][key]
    for key, secret in (("ENTAIL_API_KEYS_JSON", "api_keys"), ("ENTAIL_MASK_SECRET", "mask_secret")):
        assert (
            f'{key} = google_secret_manager_secret.secret["{secret}"].secret_id'
            in local["backend_secret_env"]
        )
    # one secret resource over local.secrets, with the ids docs/deploy.md has versions added to
    deploy = (iac.ROOT / "docs" / "deploy.md").read_text()
    for key in ("api_keys", "mask_secret"):
        body = instance(MODULE, "google_secret_manager_secret", "secret", key)
        assert body["secret_id"] == 'entail-${var.environment}-${replace("' + key + '", "_", "-")}'
        assert f"gcloud secrets versions add entail-$ENV-{key.replace('_', '-')} " in deploy, key
    versions = {
        key
        for key in ("redis_url", "redis_read_url", "redis_ca", "api_keys", "mask_secret")
        if f'"{key}"' in entail[("google_secret_manager_secret_version", "derived")]["for_each"]
    }
    # Terraform writes only the Redis versions: operator-set values never enter the state
    assert versions == {"redis_url", "redis_read_url", "redis_ca"}, versions


def test_worker_is_not_public_its_only_invoker_is_the_push_account(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    on_worker = [
        body
        for (rtype, _), body in entail.items()
        if rtype.startswith("google_cloud_run")
        and rtype.endswith("_iam_member")
        and body.get("name") == "${" + SERVICE_REF.format("worker") + ".name}"
    ]
    assert [(b["role"], b["member"]) for b in on_worker] == [
        ("roles/run.invoker", "${google_service_account.push.member}")
    ]
    for (rtype, _), body in entail.items():
        if rtype.endswith(("_iam_member", "_iam_binding")):
            members = body.get("members", [body.get("member")])
            public = {"allUsers", "allAuthenticatedUsers"} & set(members)
            if public:
                # only the backend (it checks API keys itself) and the SPA bucket are public
                assert rtype in {"google_cloud_run_v2_service_iam_member", "google_storage_bucket_iam_member"}
                assert body.get("name", body.get("bucket")) in {
                    "${" + SERVICE_REF.format("backend") + ".name}",
                    "${google_storage_bucket.web.name}",
                }, body


def test_one_service_account_per_workload_and_no_primitive_roles(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    accounts = {name for (rtype, name) in entail if rtype == "google_service_account"}
    assert {"backend", "worker", "push", "audit_sink", "batch_reason"} <= accounts
    for name in ("backend", "worker"):
        template = one(cloud_run(name)["template"])
        assert template["service_account"] == f"${{google_service_account.{name}.email}}"
    text = json.dumps(iac.terraform())
    for role in ("roles/owner", "roles/editor", "roles/viewer"):
        assert role not in text


# --- Pub/Sub -----------------------------------------------------------------------


def test_every_push_subscription_pushes_with_oidc_and_dead_letters(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    subscriptions = {
        name: body for (rtype, name), body in entail.items() if rtype == "google_pubsub_subscription"
    }
    push = {name: body for name, body in subscriptions.items() if "push_config" in body}
    assert set(push) == {"worker_push", "audit_sink_push", "worker_dead_letter_push"}
    dead_letter_topics = set()
    for name, body in push.items():
        oidc = one(one(body["push_config"])["oidc_token"])
        assert oidc["service_account_email"] == "${google_service_account.push.email}", name
        assert oidc["audience"], name
        if name == "worker_dead_letter_push":
            continue  # the end of the line (test_dead_lettered_jobs_end_their_decisions)
        dead_letter = one(body["dead_letter_policy"])
        assert dead_letter["dead_letter_topic"].startswith("${google_pubsub_topic."), name
        dead_letter_topics.add(dead_letter["dead_letter_topic"].split(".")[1])
        assert all(v >= 5 for v in resolve(dead_letter["max_delivery_attempts"])), name
        retry = one(body["retry_policy"])
        assert retry["minimum_backoff"] and retry["maximum_backoff"], name
        assert body["ack_deadline_seconds"], name
        assert body["message_retention_duration"], name
    # a dead-letter topic without a (pull) subscription for operators drops what it receives
    pulled = {
        body["topic"].split(".")[1] for name, body in subscriptions.items() if "push_config" not in body
    }
    assert dead_letter_topics <= pulled, dead_letter_topics - pulled
    # the Pub/Sub agent may publish to every dead-letter topic
    agent = entail[("google_pubsub_topic_iam_member", "agent_publishes_dead_letters")]
    assert {v.split(".")[1] for v in agent["for_each"].values()} == dead_letter_topics


def test_dead_lettered_jobs_end_their_decisions(entail: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Every accepted decision ends: the jobs' dead-letter topic is pushed to the
    worker's dead-letter endpoint (the decision fails with delivery-failed),
    authenticated like every push, and retried rather than dead-lettered again."""
    sub = entail[("google_pubsub_subscription", "worker_dead_letter_push")]
    assert sub["topic"] == "${google_pubsub_topic.reasoning_jobs_dead_letter.id}"
    config = one(sub["push_config"])
    assert config["push_endpoint"] == "${" + SERVICE_REF.format("worker") + ".uri}/push/dead-letters"
    oidc = one(config["oidc_token"])
    assert oidc == {
        "service_account_email": "${google_service_account.push.email}",
        "audience": "${local.push_audience}",
    }
    assert "dead_letter_policy" not in sub  # a dead letter of a dead letter would loop
    retry = one(sub["retry_policy"])
    assert retry["minimum_backoff"] and retry["maximum_backoff"]
    # the worker verifies that audience (ENTAIL_PUSH_AUDIENCE)
    assert iac.locals_of(MODULE)["settings_env"]["ENTAIL_PUSH_AUDIENCE"] == "${local.push_audience}"


def test_the_sweeper_runs_every_minute_and_outlasts_redelivery(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Cloud Scheduler calls the worker's POST /sweep with the push account's OIDC
    token (the worker's only invoker); the deadline it applies outlasts every
    delivery attempt (ack deadline + maximum backoff each) and the evaluation limit."""
    job = entail[("google_cloud_scheduler_job", "sweeper")]
    assert job["schedule"] == "* * * * *"
    target = one(job["http_target"])
    assert target["http_method"] == "POST"
    assert target["uri"] == "${" + SERVICE_REF.format("worker") + ".uri}/sweep"
    assert one(target["oidc_token"]) == {
        "service_account_email": "${google_service_account.push.email}",
        "audience": "${local.push_audience}",
    }
    local = iac.locals_of(MODULE)
    assert "cloudscheduler.googleapis.com" in local["services"]
    assert "local.decision_deadline_seconds" in json.dumps(local["worker_env"])
    deadline = local["decision_deadline_seconds"]
    for var in ("max_delivery_attempts", "worker_ack_deadline_seconds", "retry_maximum_backoff_seconds"):
        assert f"var.{var}" in deadline, var
    # evaluated with every value each variable takes (defaults and environments)
    names = ("max_delivery_attempts", "worker_ack_deadline_seconds", "retry_maximum_backoff_seconds")
    worst = {n: max(module_variable_values(n)) for n in (*names, "limit_wall_time_ms")}
    expression = deadline.removeprefix("${").removesuffix("}").replace("ceil(", "math.ceil(")
    value = eval(re.sub(r"var\.([a-z_]+)", lambda m: str(worst[m.group(1)]), expression), {"math": math})
    budget = worst["max_delivery_attempts"] * (
        worst["worker_ack_deadline_seconds"] + worst["retry_maximum_backoff_seconds"]
    )
    assert value > budget + 2 * worst["limit_wall_time_ms"] / 1000, (value, budget)
    assert value >= int(COMPUTED["ENTAIL_DECISION_DEADLINE_S"])  # the stand-in is the defaults' value


def test_topics_are_the_designs_and_keep_messages(entail: dict[tuple[str, str], dict[str, Any]]) -> None:
    local = iac.locals_of(MODULE)
    assert (local["topic_reasoning_jobs"], local["topic_decisions"]) == ("reasoning-jobs", "decisions")
    topics = {name: body for (rtype, name), body in entail.items() if rtype == "google_pubsub_topic"}
    assert set(topics) == {
        "reasoning_jobs",
        "decisions",
        "reasoning_jobs_dead_letter",
        "decisions_dead_letter",
    }
    for name, body in topics.items():
        assert body["message_retention_duration"], name
    source = (iac.TERRAFORM_DIR / MODULE / "pubsub.tf").read_text()
    for topic in ("reasoning-jobs", "decisions"):
        comment = source.split(f"# {topic}:", 1)[1].split("resource", 1)[0]
        for word in ("publisher:", "subscriber:", "dead letter:"):
            assert word in comment, f"topic {topic}: comment lacks {word!r}"


# --- Redis ---------------------------------------------------------------------------


def test_redis_is_standard_ha_with_two_read_replicas_auth_and_tls(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    redis = entail[("google_redis_instance", "state")]
    assert redis["tier"] == "STANDARD_HA"
    assert redis["read_replicas_mode"] == "READ_REPLICAS_ENABLED"
    assert resolve(redis["replica_count"]) == [2]
    assert redis["auth_enabled"] is True
    assert redis["transit_encryption_mode"] == "SERVER_AUTHENTICATION"
    assert redis["authorized_network"] == "${google_compute_network.entail.id}"


# --- BigQuery ------------------------------------------------------------------------


def test_audit_tables_come_from_the_schema_with_seven_year_partitions(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    tables = json.loads((iac.TERRAFORM_DIR / MODULE / "schemas" / "tables.json").read_text())
    assert set(tables) == set(TABLES)
    decisions = tables["decisions"]
    assert decisions["partition_field"] == "completed_at"
    assert decisions["partition_type"] == "DAY"
    assert decisions["partition_expiration_days"] == RETENTION_DAYS == 2557
    assert decisions["require_partition_filter"] is True
    assert decisions["clustering"] == ["tenant", "ruleset_name", "ruleset_version", "rule_ids"]
    assert tables["rulesets"]["partition_expiration_days"] is None

    table = entail[("google_bigquery_table", "audit")]
    assert table["for_each"] == "${local.audit_tables}"
    assert table["schema"] == '${file("${path.module}/schemas/${each.key}.json")}'
    assert table["clustering"] == "${each.value.clustering}"
    assert all(v is True for v in resolve(table["deletion_protection"]))
    partitioning = one(one(table["dynamic"])["time_partitioning"]["content"])
    assert partitioning["require_partition_filter"] == "${time_partitioning.value.require_partition_filter}"
    # days to milliseconds, nothing else
    assert "partition_expiration_days * 24 * 3600 * 1000" in partitioning["expiration_ms"]
    assert (
        iac.locals_of(MODULE)["audit_tables"] == '${jsondecode(file("${path.module}/schemas/tables.json"))}'
    )


# --- the rest of the design --------------------------------------------------------------


def test_audit_sink_function_and_alert_policies(entail: dict[tuple[str, str], dict[str, Any]]) -> None:
    sink = entail[("google_cloudfunctions2_function", "audit_sink")]
    assert one(sink["build_config"])["runtime"] == "python311"
    assert one(sink["build_config"])["entry_point"] == "audit_sink"
    assert "audit_sink" in (iac.ROOT / "functions" / "audit_sink" / "main.py").read_text()
    push = entail[("google_pubsub_subscription", "audit_sink_push")]
    assert push["topic"] == "${google_pubsub_topic.decisions.id}"
    # as many gunicorn threads as concurrent pushes (functions-framework's default is 4
    # per CPU): the extra pushes would queue in front of the group commit, not join it
    service = one(sink["service_config"])
    assert service["max_instance_request_concurrency"] == "${local.audit_sink_concurrency}"
    assert "THREADS = tostring(local.audit_sink_concurrency)" in service["environment_variables"]
    assert iac.locals_of(MODULE)["audit_sink_concurrency"] == 16
    alerts = {name for (rtype, name) in entail if rtype == "google_monitoring_alert_policy"}
    assert alerts == {
        "backend_5xx",
        "dead_letters",
        "redis_memory",
        "audit_sink_errors",
        "canary_mismatch",
        "trail_job_failed",
        "slo_burn",  # every SLO, fast and slow (test_terraform_slo.py)
    }


def test_gateway_cdn_and_registry_exist(entail: dict[tuple[str, str], dict[str, Any]]) -> None:
    for key in [
        ("google_api_gateway_api", "entail"),
        ("google_api_gateway_api_config", "entail"),
        ("google_api_gateway_gateway", "entail"),
        ("google_storage_bucket", "web"),
        ("google_compute_backend_bucket", "web"),
        ("google_artifact_registry_repository", "images"),
        ("google_project_service", "enabled"),
    ]:
        assert key in entail, key
    assert entail[("google_compute_backend_bucket", "web")]["enable_cdn"] is True
    services = iac.locals_of(MODULE)["services"]
    for api in ("run", "pubsub", "redis", "bigquery", "cloudfunctions", "apigateway", "secretmanager"):
        assert f"{api}.googleapis.com" in services


def test_cloudflare_records_are_proxied_strict_with_waf_rate_limit_and_cache_rules() -> None:
    cf = iac.resources(CLOUDFLARE)
    assert cf[("cloudflare_record", "api")]["proxied"] is True
    assert cf[("cloudflare_record", "app")]["proxied"] is True
    settings = one(cf[("cloudflare_zone_settings_override", "tls")]["settings"])
    assert settings["ssl"] == "strict"
    phases = {body["phase"] for (rtype, _), body in cf.items() if rtype == "cloudflare_ruleset"}
    assert {"http_request_firewall_managed", "http_ratelimit", "http_request_cache_settings"} <= phases
    limit = one(cf[("cloudflare_ruleset", "api_rate_limit")]["rules"])
    assert one(limit["ratelimit"])["requests_per_period"] == "${var.api_rate_limit_requests_per_minute}"


# --- variables, outputs, module calls ------------------------------------------------------


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_name_is_declared_twice_in_a_module(folder: str) -> None:
    """Terraform refuses a local, variable, output or resource declared twice
    (in any two files of a module); iac.locals_of would silently keep one."""
    seen: dict[str, str] = {}
    for kind in ("locals", "variable", "output", "module", "resource", "data"):
        for path, block in iac.blocks(kind, folder):
            if kind == "resource" or kind == "data":
                names = [f"{kind}.{t}.{n}" for t, named in block.items() for n in named]
            else:
                names = [f"{kind}.{n}" for n in block]
            for name in names:
                assert name not in seen, f"{name} is declared in {seen[name]} and {path}"
                seen[name] = path


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_variable_is_typed_described_and_numbers_carry_units(folder: str) -> None:
    variables = iac.named("variable", folder)
    assert variables
    for name, body in variables.items():
        assert body.get("type"), f"{folder}: variable {name} has no type"
        assert len(body.get("description", "")) > 10, f"{folder}: variable {name} has no description"
        if body["type"] == "${number}" or body["type"] == "number":
            assert name.endswith(UNIT_SUFFIXES), f"{folder}: number variable {name} names no unit"


@pytest.mark.parametrize("folder", FOLDERS)
def test_every_output_is_described(folder: str) -> None:
    for name, body in iac.named("output", folder).items():
        assert body.get("description"), f"{folder}: output {name} has no description"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_roots_pass_what_the_modules_declare_and_output_the_urls(env: str) -> None:
    calls = iac.named("module", env)
    for name, folder in (("entail", MODULE), ("cloudflare", CLOUDFLARE)):
        call = dict(calls[name])
        assert call.pop("source") == f"../../{folder}"
        declared = iac.named("variable", folder)
        required = {n for n, body in declared.items() if "default" not in body}
        assert required <= set(call), f"{env}: module {name} misses {sorted(required - set(call))}"
        assert set(call) <= set(declared), f"{env}: module {name} has no {sorted(set(call) - set(declared))}"
        outputs = set(iac.named("output", folder))
        for value in json.dumps(iac.terraform()[f"{env}/main.tf"]).split(f"module.{name}.")[1:]:
            assert re.match(r"[a-z_]+", value).group(0) in outputs  # type: ignore[union-attr]
    assert {"api_url", "app_url", "backend_url"} <= set(iac.named("output", env))


# --- the settings each deployable gets are accepted in production ----------------------------

ASSIGNMENT = re.compile(r'(ENTAIL_[A-Z0-9_]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,}]+)')

# stand-ins for values Terraform computes (names, emails) and for secret versions
COMPUTED = {
    "ENTAIL_GCP_PROJECT": "entail-test",
    "ENTAIL_GCP_REGION": "europe-west1",
    "ENTAIL_BIGQUERY_DATASET": "entail_audit",
    "ENTAIL_BIGQUERY_LOCATION": "EU",
    "ENTAIL_PUSH_SERVICE_ACCOUNT": "entail-prod-push@entail-test.iam.gserviceaccount.com",
    "ENTAIL_PUSH_AUDIENCE": "entail-reasoning-worker-prod",
    "ENTAIL_LIMIT_WALL_TIME_MS": "10000",
    "ENTAIL_TENANT_MAX_RUNNING": "8",
    "ENTAIL_RATE_LIMIT_PER_S": "50",
    "ENTAIL_CORS_ORIGINS": '["https://app.example.com"]',
    "ENTAIL_PUBLIC_BASE_URL": "https://api.example.com",
    "ENTAIL_DECISION_DEADLINE_S": "3380",  # sweeper.tf with the defaults: 5 x (60 + 600) + 2 x 10 + 60
    # trail.tf: the trail_roots function
    "ENTAIL_AUDIT_KMS_KEY_VERSION": (
        "projects/entail-test/locations/europe-west1/keyRings/entail-prod-audit"
        "/cryptoKeys/audit-roots/cryptoKeyVersions/1"
    ),
    "ENTAIL_AUDIT_ROOTS_BUCKET": "entail-test-entail-prod-audit-roots",
    # trail.tf: older key versions the backend verifies with (none by default)
    "ENTAIL_AUDIT_KMS_VERIFY_KEY_VERSIONS": "",
    "ENTAIL_CANARY_SAMPLE_SIZE": "100",
    # datasets.tf: the dataset bucket and BigQuery dataset
    "ENTAIL_DATASET_BUCKET": "entail-test-entail-prod-datasets",
    "ENTAIL_DATASET_BQ_DATASET": "entail_datasets",
    "ENTAIL_DATASET_MAX_BYTES": "134217728",  # run.tf: a quarter of the default 512 MiB
}
SECRETS = {
    "ENTAIL_REDIS_URL": "rediss://:auth-string@10.0.0.3:6378/0?ssl_ca_certs=/secrets/redis-ca/ca.pem",
    "ENTAIL_REDIS_READ_URL": "rediss://:auth-string@10.0.0.4:6378/0?ssl_ca_certs=/secrets/redis-ca/ca.pem",
    "ENTAIL_API_KEYS_JSON": "[]",
    "ENTAIL_MASK_SECRET": "5f1c0e9a3b7d4e2f8a6c1b0d9e8f7a6b",
}


def env_map(expr: Any, local: dict[str, Any]) -> dict[str, str | None]:
    """An environment map as Terraform writes it (a literal map, ``local.x``, or
    ``merge(local.x, {K = V, ...})``): literal values, None for expressions."""
    if isinstance(expr, dict):
        return {k: None if "${" in str(v) else str(v) for k, v in expr.items()}
    if m := re.fullmatch(r"\$\{local\.([a-z_]+)\}", expr):
        return env_map(local[m.group(1)], local)
    if m := re.fullmatch(r"\$\{merge\(local\.([a-z_]+), \{(.*)\}\)\}", expr, re.S):
        merged = env_map(local[m.group(1)], local)
        for name, value in ASSIGNMENT.findall(m.group(2)):
            value = value.strip()
            literal = value.startswith('"') and value.endswith('"') and "${" not in value
            merged[name] = value[1:-1] if literal else None
        return merged
    raise AssertionError(f"cannot read the environment map {expr!r}")


def evaluated(env: dict[str, str | None], secrets: set[str]) -> dict[str, str]:
    out = {}
    for name, value in env.items():
        if value is None:
            assert name in COMPUTED, f"{name} is computed by Terraform: add a stand-in to COMPUTED"
            value = COMPUTED[name]
        out[name] = value
    for name in secrets:
        out[name] = SECRETS[name]
    return out


def deployables() -> dict[str, dict[str, str]]:
    local = iac.locals_of(MODULE)
    entail = iac.resources(MODULE)
    out = {}
    for name in ("backend", "worker"):
        # what the service's dynamic env blocks iterate over (local.cloud_run_services)
        container = one(one(cloud_run(name)["template"])["containers"])
        envs = [d["env"] for d in container["dynamic"] if "env" in d]
        plain = one([e for e in envs if "value_source" not in one(e["content"])])["for_each"]
        from_secrets = one([e for e in envs if "value_source" in one(e["content"])])["for_each"]
        secrets = set(env_map(from_secrets, local))
        out[name] = evaluated(env_map(plain, local), secrets)
    for name in ("audit_sink", "batch_reason", "trail_roots"):
        config = one(entail[("google_cloudfunctions2_function", name)]["service_config"])
        secrets = {s["key"] for s in config.get("secret_environment_variables", [])}
        out[name] = evaluated(env_map(config["environment_variables"], local), secrets)
    return out


@pytest.mark.parametrize("deployable", ["backend", "worker", "audit_sink", "batch_reason", "trail_roots"])
def test_production_settings_of_every_deployable_validate(
    deployable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = deployables()[deployable]
    for name in [n for n in os.environ if n.startswith("ENTAIL_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()  # raises on a placeholder secret or an incomplete cloud mode
    assert settings.env == "production"
    assert settings.audit_store == "bigquery"
    assert settings.push_auth == "oidc"
    assert settings.dataset_store == "cloud" and settings.dataset_bucket
    if deployable in {"backend", "worker"}:
        assert settings.bus == "pubsub"
        assert settings.host == "0.0.0.0"
        assert settings.redis_ha  # the read endpoint: replicas serve stale-tolerant reads
        pool = redis.ConnectionPool.from_url(settings.redis_url)
        assert pool.connection_kwargs["ssl_ca_certs"] == "/secrets/redis-ca/ca.pem"
        assert pool.connection_kwargs["password"] == "auth-string"
