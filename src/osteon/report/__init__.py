"""The study report: one self-contained HTML file and a model card, built from a run directory only.

Example:
    >>> from osteon.report import write_report
    >>> write_report("runs/fa-smoke", readers="readers.csv")  # doctest: +SKIP
    PosixPath('runs/fa-smoke/report.html')
"""

from osteon.report.builder import ReportOptions, write_report
from osteon.report.claim import CLAIM_ITEMS, ClaimItem, fill_claim
from osteon.report.compare import compare_runs, matched_cases
from osteon.report.kinds import REPORT_KINDS, ReportKind, adapter_for
from osteon.report.readers import ReaderCalls, read_readers
from osteon.report.rundata import RunData
from osteon.report.subgroups import ShortcutWarning, shortcut_warnings, subgroup_table

__all__ = [
    "CLAIM_ITEMS",
    "REPORT_KINDS",
    "ClaimItem",
    "ReaderCalls",
    "ReportKind",
    "ReportOptions",
    "RunData",
    "ShortcutWarning",
    "adapter_for",
    "compare_runs",
    "fill_claim",
    "matched_cases",
    "read_readers",
    "shortcut_warnings",
    "subgroup_table",
    "write_report",
]
