"""The CLAIM 2024 checklist: all 44 items in order, answers with sources, the rest left to the authors."""

from __future__ import annotations

from osteon.report import CLAIM_ITEMS, RunData, fill_claim
from osteon.report.claim import AUTHORS, ReportFacts, claim_table
from osteon.report.claim_answers import Findings, claim_facts
from osteon.report.dataset_card import flow_counts


def test_forty_four_items_in_their_sections():
    assert [n for n, *_ in CLAIM_ITEMS] == list(range(1, 45))
    sections = {n: s for n, s, *_ in CLAIM_ITEMS}
    assert (
        sections[1].startswith("Title")
        and sections[7] == "Methods — data"
        and sections[14].endswith("reference standard")
    )
    assert (
        sections[21] == "Methods — testing data"
        and sections[35] == "Results — data"
        and sections[44] == "Other information"
    )
    assert {s for _, s, *_ in CLAIM_ITEMS} >= {"Discussion", "Methods — training", "Methods — evaluation"}


def test_unanswered_items_are_left_to_the_authors():
    facts = ReportFacts()
    facts.set(9, "letterboxed", "state.json")
    facts.set(21, "80 images", "metrics.json", partial=True)
    items = fill_claim(facts)
    assert items[8].answer == "letterboxed" and items[8].status == "filled" and items[8].source == "state.json"
    assert items[20].answer == f"80 images {AUTHORS}" and items[20].status == "partial"
    assert items[0].answer == AUTHORS and items[0].status == "authors"
    table = claim_table(items)
    assert len(table.rows) == 44 and table.flags[8] == "ok" and table.flags[20] == "partial"


def test_run_answers_come_with_sources(classify_run):
    data = RunData.load(classify_run)
    items = fill_claim(claim_facts(data, Findings(flow=flow_counts(data), subgroup_columns=["body_part"])))
    answered = {i.number: i for i in items if i.status != "authors"}
    assert {9, 19, 20, 22, 25, 26, 29, 35, 38, 39} <= set(answered)
    assert all(i.source for i in answered.values())
    assert "Patient level" in answered[20].answer and "no patient is in two splits" in answered[20].answer
    assert "60" in answered[19].answer and "80" in answered[19].answer
    assert answered[29].answer.startswith("95% percentile bootstrap")
    assert {1, 2, 3, 4, 5, 11, 14, 16, 40, 44}.isdisjoint(answered)  # only the authors know these
