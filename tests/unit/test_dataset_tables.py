"""The BigQuery table of a dataset predicate (entail.reasoning.sql.dataset_tables):
one name per (tenant, dataset, predicate, arity) and never the same name for two,
so one tenant's rows cannot land in another tenant's table."""

from __future__ import annotations

import itertools
import re

import pytest

from entail.reasoning.sql.dataset_tables import bigquery_columns, bigquery_table_name


def test_plain_names_read_as_they_are() -> None:
    assert bigquery_table_name("acme", "orgchart", "manages", 2) == "ds_acme__orgchart__manages__2"


def test_names_that_a_naive_join_would_confuse_get_distinct_tables() -> None:
    parts = ["a", "b", "a_b", "b_c", "a-b", "a.b", "a__b", "a_0b", "b__c", "c"]
    seen: dict[str, tuple[str, str, str, int]] = {}
    for tenant, name, predicate in itertools.product(parts, parts, ["p", "p_q", "q"]):
        for arity in (0, 1, 2):
            table = bigquery_table_name(tenant, name, predicate, arity)
            assert re.fullmatch(r"[A-Za-z0-9_]{1,1024}", table), table
            key = (tenant, name, predicate, arity)
            assert seen.setdefault(table, key) == key, f"{key} and {seen[table]} share {table}"
    # the naive ds_<tenant>_<name>_<predicate> would give both of these ds_a_b_c_p
    assert bigquery_table_name("a_b", "c", "p", 1) != bigquery_table_name("a", "b_c", "p", 1)


def test_a_name_bigquery_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="BigQuery table name"):
        bigquery_table_name("acme", "org/chart", "p", 1)


def test_columns_are_the_parquet_layout_after_the_version() -> None:
    assert bigquery_columns(0) == [("version", "INT64"), ("u", "INT64")]
    assert bigquery_columns(2) == [
        ("version", "INT64"),
        ("i0", "INT64"),
        ("s0", "STRING"),
        ("i1", "INT64"),
        ("s1", "STRING"),
    ]
