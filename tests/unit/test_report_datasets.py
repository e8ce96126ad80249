"""A decision report names the dataset versions the decision read (a "Datasets" section)."""

from __future__ import annotations

import json

from test_report import loan_record

from entail import report
from entail.models import DatasetRef

ORG = DatasetRef(binding="orgchart", name="orgchart", version=3, hash="c" * 64)
RATES = DatasetRef(binding="rates", name="rate_table", version=12, hash="d" * 64)


def test_the_report_shows_each_dataset_version_the_decision_read() -> None:
    built = report.build(loan_record(datasets=[ORG, RATES]), "audit")
    assert built.content["decision"]["datasets"] == [ORG.model_dump(), RATES.model_dump()]
    json.dumps(built.content)  # plain JSON (?format=json)
    html = built.html.decode()
    section = html[html.index('<section id="datasets">') :]
    section = section[: section.index("</section>")]
    assert "<h2>Datasets</h2>" in section
    for ref in (ORG, RATES):
        assert f"<code>{ref.binding}</code>" in section and ref.hash in section
    assert "<td>rate_table</td><td>12</td>" in section
    # another version read is another report
    other = report.build(loan_record(datasets=[ORG.model_copy(update={"version": 4})]), "audit")
    assert other.sha256 != built.sha256


def test_a_decision_without_datasets_has_no_datasets_section() -> None:
    built = report.build(loan_record(), "audit")
    assert "datasets" not in built.content["decision"]
    assert 'id="datasets"' not in built.html.decode()
