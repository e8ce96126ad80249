"""Invariants of terraform/modules/entail/trail.tf, read with python-hcl2: the
roots are signed by an HSM-backed asymmetric Cloud KMS key that Terraform
never destroys, published to a bucket whose seven-year retention is locked,
and a canary mismatch reaches the on-call through a log metric and an alert;
Cloud Scheduler calls functions/trail_roots after midnight UTC (roots) and
daily (canary) with OIDC tokens of an account that may only invoke it; the
function's account signs with that key, creates objects in that bucket and
writes only the trail's tables; a failed run alerts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from entail.audit.canary import log as canary_log
from entail.audit.schema import RETENTION_DAYS

from . import iac_tools as iac


@pytest.fixture(scope="module")
def entail() -> dict[tuple[str, str], dict[str, Any]]:
    return iac.resources("modules/entail")


def _one(value: Any) -> Any:
    """python-hcl2 wraps nested blocks in lists."""
    return value[0] if isinstance(value, list) else value


def test_roots_are_signed_by_an_hsm_asymmetric_kms_key_that_is_never_destroyed(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    key = entail[("google_kms_crypto_key", "audit_roots")]
    assert key["purpose"] == "ASYMMETRIC_SIGN"
    template = _one(key["version_template"])
    # the algorithm KmsSigner checks for and tools/audit_verifier verifies
    assert template["algorithm"] == "EC_SIGN_P256_SHA256"
    assert template["protection_level"] == "HSM"
    assert _one(key["lifecycle"])["prevent_destroy"] is True
    assert key["key_ring"] == "${google_kms_key_ring.audit.id}"
    apis = iac.locals_of("modules/entail")["services"]
    assert "cloudkms.googleapis.com" in str(apis)


def test_the_roots_bucket_keeps_every_root_seven_years_under_a_locked_policy(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    bucket = entail[("google_storage_bucket", "audit_roots")]
    policy = _one(bucket["retention_policy"])
    assert policy["retention_period"] == "${local.audit_roots_retention_seconds}"
    seconds = iac.locals_of("modules/entail")["audit_roots_retention_seconds"]
    assert str(seconds).replace(" ", "") == f"${{{RETENTION_DAYS}*24*60*60}}"
    assert policy["is_locked"] == "${var.audit_roots_retention_locked}"
    variables = iac.named("variable", "modules/entail")
    assert variables["audit_roots_retention_locked"]["default"] is True
    assert bucket["force_destroy"] is False
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["uniform_bucket_level_access"] is True


def test_a_canary_mismatch_alerts_the_on_call(entail: dict[tuple[str, str], dict[str, Any]]) -> None:
    metric = entail[("google_logging_metric", "canary_mismatches")]
    assert "canary_mismatch" in metric["filter"]
    assert canary_log.name == "entail.canary"  # the logger whose JSON lines the metric counts
    alert = entail[("google_monitoring_alert_policy", "canary_mismatch")]
    condition = _one(_one(alert["conditions"])["condition_threshold"])
    assert "${google_logging_metric.canary_mismatches.name}" in condition["filter"]
    assert condition["comparison"] == "COMPARISON_GT"
    assert condition["threshold_value"] == 0
    assert alert["notification_channels"] == "${local.notify}"


# --- the scheduled trail jobs (functions/trail_roots) ---------------------------------


def _listed(expr: Any) -> list[str]:
    """The strings of a ``toset([...])`` expression as python-hcl2 renders it."""
    return re.findall(r'"([^"]+)"', str(expr))


def _grants(entail: dict[tuple[str, str], dict[str, Any]], account: str) -> set[tuple[str, str, str]]:
    """(resource type, role, target) of every IAM grant to ``account``."""
    out: set[tuple[str, str, str]] = set()
    member = f"${{google_service_account.{account}.member}}"
    for (rtype, _name), body in entail.items():
        if body.get("member") != member:
            continue
        roles = _listed(body["for_each"]) if body.get("role") == "${each.value}" else [body["role"]]
        target = next(
            (body[k] for k in ("crypto_key_id", "bucket", "table_id", "dataset_id", "service") if k in body),
            body.get("project", ""),
        )
        out |= {(rtype, role, str(target)) for role in roles}
    return out


def test_the_scheduler_calls_the_roots_job_after_midnight_utc_with_the_grace(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    from entail.audit.roots import DEFAULT_GRACE

    variables = iac.named("variable", "modules/entail")
    grace = iac.locals_of("modules/entail")["trail_grace_seconds"]
    assert grace == DEFAULT_GRACE.total_seconds()
    minute, hour, *days = variables["trail_roots_schedule"]["default"].split()
    # once a day, after midnight UTC and after the grace for late rows has passed
    assert days == ["*", "*", "*"] and int(hour) == 0 and int(minute) * 60 > grace
    for name, job in (("trail_roots", "roots"), ("canary", "canary")):
        scheduled = entail[("google_cloud_scheduler_job", name)]
        assert scheduled["time_zone"] == "Etc/UTC"
        target = _one(scheduled["http_target"])
        assert target["http_method"] == "POST"
        assert target["headers"] == {"Content-Type": "application/json"}
        assert f'job = "{job}"' in target["body"]
        function_uri = "${google_cloudfunctions2_function.trail_roots.service_config[0].uri}"
        assert target["uri"] == function_uri
        token = _one(target["oidc_token"])
        assert token == {
            "service_account_email": "${google_service_account.trail_cron.email}",
            "audience": function_uri,
        }
        assert _one(scheduled["retry_config"])["retry_count"] >= 1  # every step is idempotent
    assert (
        "grace_s = local.trail_grace_seconds"
        in _one(entail[("google_cloud_scheduler_job", "trail_roots")]["http_target"])["body"]
    )
    assert "cloudscheduler.googleapis.com" in str(iac.locals_of("modules/entail")["services"])


def test_the_trail_function_signs_with_the_kms_key_and_publishes_to_the_locked_bucket(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    from entail.settings import Settings

    function = entail[("google_cloudfunctions2_function", "trail_roots")]
    assert _one(function["build_config"])["entry_point"] == "trail_roots"
    assert "def trail_roots(" in (iac.ROOT / "functions" / "trail_roots" / "main.py").read_text()
    config = _one(function["service_config"])
    assert config["service_account_email"] == "${google_service_account.trail.email}"
    assert config["max_instance_count"] == 1  # one run at a time
    env = str(config["environment_variables"])
    for name, value in (
        ("ENTAIL_AUDIT_KMS_KEY_VERSION", "data.google_kms_crypto_key_version.audit_roots.name"),
        ("ENTAIL_AUDIT_ROOTS_BUCKET", "google_storage_bucket.audit_roots.name"),
        ("ENTAIL_CANARY_SAMPLE_SIZE", "var.canary_sample_count"),
    ):
        assert re.search(rf"{name}\s*=\s*[^,]*{re.escape(value)}", env), name
        assert name.removeprefix("ENTAIL_").lower() in Settings.model_fields
    assert "local.settings_env" in env
    secrets = {s["key"] for s in config["secret_environment_variables"]}
    assert secrets == {"ENTAIL_MASK_SECRET"}  # production settings refuse the placeholder
    # the key version is the audit_roots key's (a data source, so a new version is a deliberate change)
    data = iac.terraform()["modules/entail/trail.tf"]["data"]
    version = next(
        d["google_kms_crypto_key_version"]["audit_roots"]
        for d in data
        if "google_kms_crypto_key_version" in d
    )
    assert version["crypto_key"] == "${google_kms_crypto_key.audit_roots.id}"


def test_the_trail_accounts_have_least_privilege(entail: dict[tuple[str, str], dict[str, Any]]) -> None:
    from entail.audit.schema import TABLES

    written = set(_listed(iac.locals_of("modules/entail")["trail_written_tables"]))
    # the tables the trail writes (roots, leaves, held copies, canary findings), and they exist
    assert written == {"audit_roots", "audit_leaves", "held_decisions", "canary_mismatches"} <= set(TABLES)
    table = "${google_bigquery_table.audit[each.key].table_id}"
    assert _grants(entail, "trail") == {
        (
            "google_kms_crypto_key_iam_member",
            "roles/cloudkms.signerVerifier",
            "${google_kms_crypto_key.audit_roots.id}",
        ),
        (
            "google_storage_bucket_iam_member",
            "roles/storage.objectCreator",
            "${google_storage_bucket.audit_roots.name}",
        ),
        (
            "google_storage_bucket_iam_member",
            "roles/storage.objectViewer",
            "${google_storage_bucket.audit_roots.name}",
        ),
        (
            "google_bigquery_dataset_iam_member",
            "roles/bigquery.dataViewer",
            "${google_bigquery_dataset.audit.dataset_id}",
        ),
        ("google_bigquery_table_iam_member", "roles/bigquery.dataEditor", table),
        ("google_project_iam_member", "roles/bigquery.jobUser", "${var.project_id}"),
        ("google_project_iam_member", "roles/cloudtrace.agent", "${var.project_id}"),
        (
            "google_secret_manager_secret_iam_member",
            "roles/secretmanager.secretAccessor",
            "${var.project_id}",
        ),
    } - (
        {
            (
                "google_secret_manager_secret_iam_member",
                "roles/secretmanager.secretAccessor",
                "${var.project_id}",
            )
        }
    )
    # the scheduler's identity may only invoke the function
    assert _grants(entail, "trail_cron") == {
        (
            "google_cloud_run_service_iam_member",
            "roles/run.invoker",
            "${google_cloudfunctions2_function.trail_roots.service_config[0].service}",
        )
    }
    # the mask secret comes through the module's one list of secret readers
    assert "google_service_account.trail.member" in str(iac.locals_of("modules/entail")["secret_readers"])


def test_a_failed_trail_run_alerts_the_on_call(entail: dict[tuple[str, str], dict[str, Any]]) -> None:
    metric = entail[("google_logging_metric", "trail_job_failures")]
    assert "cloud_scheduler_job" in metric["filter"]
    for job in ("trail_roots", "canary"):
        assert f"google_cloud_scheduler_job.{job}.name" in metric["filter"]
    alert = entail[("google_monitoring_alert_policy", "trail_job_failed")]
    condition = _one(_one(alert["conditions"])["condition_threshold"])
    assert "${google_logging_metric.trail_job_failures.name}" in condition["filter"]
    assert alert["notification_channels"] == "${local.notify}"


def test_the_backend_reads_the_root_keys_public_halves_and_may_not_sign(
    entail: dict[tuple[str, str], dict[str, Any]],
) -> None:
    from entail.settings import Settings

    kms = {g for g in _grants(entail, "backend") if g[0] == "google_kms_crypto_key_iam_member"}
    assert kms == {
        (
            "google_kms_crypto_key_iam_member",
            "roles/cloudkms.publicKeyViewer",
            "${google_kms_crypto_key.audit_roots.id}",
        )
    }
    env = str(iac.locals_of("modules/entail")["backend_env"])
    for name, value in (
        ("ENTAIL_AUDIT_KMS_KEY_VERSION", "data.google_kms_crypto_key_version.audit_roots.name"),
        ("ENTAIL_AUDIT_KMS_VERIFY_KEY_VERSIONS", 'join(",", var.audit_kms_verify_key_versions)'),
    ):
        assert re.search(rf"{name}\s*=\s*{re.escape(value)}", env), name
        assert name.removeprefix("ENTAIL_").lower() in Settings.model_fields
