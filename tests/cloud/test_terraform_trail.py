"""Invariants of terraform/modules/entail/trail.tf, read with python-hcl2: the
roots are signed by an HSM-backed asymmetric Cloud KMS key that Terraform
never destroys, published to a bucket whose seven-year retention is locked,
and a canary mismatch reaches the on-call through a log metric and an alert."""

from __future__ import annotations

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
