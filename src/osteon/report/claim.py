"""The CLAIM 2024 checklist, filled from the run where the run can answer.

Checklist for Artificial Intelligence in Medical Imaging (CLAIM): 2024 Update. Tejani AS, Klontzas ME,
Gatti AA, Mongan JT, Moy L, Park SH, Kahn CE Jr. Radiology: Artificial Intelligence 2024;6(4):e240300.
doi:10.1148/ryai.240300. Its 44 items are listed here in their order and sections; the item texts are
short paraphrases (the official wording is in the article), so authors should fill the journal's own
form from the answers below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from osteon.report.tables import Table

AUTHORS = "To be completed by the authors."
CITATION = (
    "Tejani AS, Klontzas ME, Gatti AA, et al. Checklist for Artificial Intelligence in Medical Imaging (CLAIM): "
    "2024 Update. Radiol Artif Intell 2024;6(4):e240300. doi:10.1148/ryai.240300"
)

#: (number, section, topic, paraphrased item)
CLAIM_ITEMS: tuple[tuple[int, str, str, str], ...] = (
    (
        1,
        "Title and abstract",
        "Title",
        "Identify the study as using AI methods and name the category of technology (e.g. deep learning).",
    ),
    (
        2,
        "Title and abstract",
        "Abstract",
        "Structured summary of design, methods, results and conclusions, incl. population, data partitions, "
        "design, statistics and availability of resources.",
    ),
    (
        3,
        "Introduction",
        "Background",
        "Scientific and clinical background, current practice, intended use and clinical role of the AI approach.",
    ),
    (4, "Introduction", "Objectives", "Study aims, objectives and hypotheses."),
    (5, "Methods — study design", "Study design", "Prospective or retrospective study."),
    (
        6,
        "Methods — study design",
        "Study goal",
        "Study goal (model creation, exploratory, feasibility, non-inferiority ...) and intended use.",
    ),
    (7, "Methods — data", "Data sources", "State the data sources; link to public data sets."),
    (8, "Methods — data", "Eligibility criteria", "Inclusion and exclusion criteria and how the data were selected."),
    (9, "Methods — data", "Preprocessing", "Data preprocessing steps (normalisation, resampling, window/level ...)."),
    (10, "Methods — data", "Data subsets", "Selection of data subsets, if applicable, and the personnel involved."),
    (11, "Methods — data", "De-identification", "De-identification methods."),
    (12, "Methods — data", "Missing data", "How missing data were handled."),
    (13, "Methods — data", "Image acquisition", "Image acquisition protocol (manufacturer, sequence, resolution ...)."),
    (
        14,
        "Methods — reference standard",
        "Reference standard definition",
        "Definition of the reference standard, in enough detail to replicate.",
    ),
    (
        15,
        "Methods — reference standard",
        "Rationale",
        "Rationale for choosing the reference standard over alternatives.",
    ),
    (16, "Methods — reference standard", "Annotators", "Source, qualifications and training of the annotators."),
    (
        17,
        "Methods — reference standard",
        "Annotation procedure",
        "How the reference standard was annotated (tools, software versions, automated steps).",
    ),
    (
        18,
        "Methods — reference standard",
        "Variability",
        "Inter- and intra-rater variability and how discrepancies were resolved.",
    ),
    (
        19,
        "Methods — data partitions",
        "Partition assignment",
        "How data were assigned to partitions, their proportions, and class-imbalance handling.",
    ),
    (
        20,
        "Methods — data partitions",
        "Partition disjointness",
        "Level at which partitions are disjoint (patient, series, image).",
    ),
    (
        21,
        "Methods — testing data",
        "Test set size",
        "Intended size of the testing set and how it was determined (e.g. power calculation).",
    ),
    (22, "Methods — model", "Architecture", "Detailed model description: inputs, outputs, layers, connections."),
    (23, "Methods — model", "Software", "Software libraries, frameworks and packages, with versions."),
    (
        24,
        "Methods — model",
        "Initialisation",
        "Initialisation of parameters (random, transfer learning and its source).",
    ),
    (
        25,
        "Methods — training",
        "Training details",
        "Training procedure: augmentation, hyperparameters, convergence monitoring, stopping.",
    ),
    (26, "Methods — training", "Model selection", "Method and metric for selecting the final model."),
    (27, "Methods — training", "Ensembling", "If an ensemble is used, its members and how outputs are combined."),
    (
        28,
        "Methods — evaluation",
        "Metrics",
        "Performance metrics and their rationale; comparison with published models.",
    ),
    (
        29,
        "Methods — evaluation",
        "Statistics",
        "Uncertainty (confidence intervals) and statistical tests of significance.",
    ),
    (30, "Methods — evaluation", "Robustness", "Robustness or sensitivity analysis."),
    (
        31,
        "Methods — evaluation",
        "Explainability",
        "Methods for explainability or interpretability (e.g. saliency maps) and how they were validated.",
    ),
    (
        32,
        "Methods — evaluation",
        "Internal testing",
        "Evaluation on internal data; consistency between training and test performance.",
    ),
    (33, "Methods — evaluation", "External testing", "Evaluation on external data, or why it was not done."),
    (34, "Methods — evaluation", "Trial registration", "If applicable, registration of a clinical trial."),
    (
        35,
        "Results — data",
        "Participant flow",
        "Numbers of patients/examinations included and excluded, with a flow diagram.",
    ),
    (
        36,
        "Results — data",
        "Characteristics",
        "Demographic and clinical characteristics of each partition; potential sources of bias.",
    ),
    (
        37,
        "Results — model performance",
        "Performance",
        "Final model performance against the reference standard, across partitions and subgroups.",
    ),
    (
        38,
        "Results — model performance",
        "Accuracy estimates",
        "Estimates of diagnostic accuracy with 95% confidence intervals (ROC analysis where applicable).",
    ),
    (
        39,
        "Results — model performance",
        "Failure analysis",
        "Failure analysis of incorrectly classified cases (confusion matrix, examples).",
    ),
    (40, "Discussion", "Limitations", "Limitations: methods, materials, biases, generalisability."),
    (41, "Discussion", "Implications", "Implications for practice, intended use, and barriers to translation."),
    (42, "Other information", "Protocol", "Where the full study protocol can be accessed."),
    (43, "Other information", "Availability", "Availability of software, model and data, and access conditions."),
    (44, "Other information", "Funding", "Sources of funding and the role of funders."),
)


@dataclass
class ClaimAnswer:
    """An item's answer: ``status`` is ``filled`` (from the run), ``partial`` (authors must add) or ``authors``."""

    answer: str
    source: str
    status: str = "filled"


@dataclass
class ClaimItem:
    number: int
    section: str
    topic: str
    item: str
    answer: str = AUTHORS
    source: str = ""
    status: str = "authors"


@dataclass
class ReportFacts:
    """What the report computed, handed to the checklist (every field is optional)."""

    answers: dict[int, ClaimAnswer] = field(default_factory=dict)

    def set(self, number: int, answer: str, source: str, *, partial: bool = False) -> None:
        self.answers[number] = ClaimAnswer(answer, source, "partial" if partial else "filled")


def fill_claim(facts: ReportFacts) -> list[ClaimItem]:
    """All 44 items in order, with the run's answers where it has them."""
    items = []
    for number, section, topic, text in CLAIM_ITEMS:
        item = ClaimItem(number, section, topic, text)
        answer = facts.answers.get(number)
        if answer is not None:
            item.answer = answer.answer + (f" {AUTHORS}" if answer.status == "partial" else "")
            item.source, item.status = answer.source, answer.status
        items.append(item)
    return items


def claim_table(items: list[ClaimItem]) -> Table:
    """The checklist as a table (one row per item)."""
    rows = [[str(i.number), i.section, i.topic, i.item, i.answer, i.source or "—"] for i in items]
    flags = [{"filled": "ok", "partial": "partial", "authors": ""}[i.status] for i in items]
    filled = sum(i.status == "filled" for i in items)
    partial = sum(i.status == "partial" for i in items)
    rest = len(items) - filled - partial
    note = f"{filled} items answered from the run, {partial} partly, {rest} left to the authors. {CITATION}."
    return Table(
        "CLAIM 2024 checklist",
        ["#", "section", "topic", "item (paraphrased)", "answer", "source"],
        rows,
        note=note,
        kind="checklist",
        flags=flags,
    )


def claim_summary(items: list[ClaimItem]) -> dict[str, Any]:
    return {
        "filled": sum(i.status == "filled" for i in items),
        "partial": sum(i.status == "partial" for i in items),
        "authors": sum(i.status == "authors" for i in items),
        "total": len(items),
    }
