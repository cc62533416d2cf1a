"""Which studies the PACS bridge has processed: a small SQLite file, safe against restarts.

One row per (PACS URL, Study Instance UID): ``done`` (with the UIDs of the objects stored back and of the
source instances), ``failed`` (retried on the next pass, with the attempt count and the last error) or
``gave_up`` (failed ``max_attempts`` times; kept, listed, and retried only when reset).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DONE, FAILED, GAVE_UP = "done", "failed", "gave_up"


@dataclass(frozen=True)
class StudyRecord:
    study_uid: str
    status: str
    attempts: int
    last_error: str
    outputs: dict[str, Any]


class StudyState:
    """The state file of one bridge (``path``), shared by every PACS it talks to (rows are keyed by URL)."""

    def __init__(self, path: str | Path, pacs: str) -> None:
        self.path = Path(path)
        self.pacs = pacs.rstrip("/")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS studies (pacs TEXT, study_uid TEXT, status TEXT, attempts INTEGER, "
                "last_error TEXT, outputs TEXT, updated REAL, PRIMARY KEY (pacs, study_uid))"
            )

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        finally:
            db.close()

    def get(self, study_uid: str) -> StudyRecord | None:
        with self._db() as db:
            row = db.execute(
                "SELECT status, attempts, last_error, outputs FROM studies WHERE pacs = ? AND study_uid = ?",
                (self.pacs, study_uid),
            ).fetchone()
        if row is None:
            return None
        return StudyRecord(study_uid, row[0], int(row[1]), row[2] or "", json.loads(row[3] or "{}"))

    def is_done(self, study_uid: str) -> bool:
        record = self.get(study_uid)
        return record is not None and record.status in (DONE, GAVE_UP)

    def mark_done(self, study_uid: str, outputs: dict[str, Any]) -> None:
        previous = self.get(study_uid)
        self._put(study_uid, DONE, (previous.attempts if previous else 0) + 1, "", outputs)

    def mark_failed(self, study_uid: str, error: str, *, max_attempts: int) -> StudyRecord:
        previous = self.get(study_uid)
        attempts = (previous.attempts if previous else 0) + 1
        status = GAVE_UP if attempts >= max_attempts else FAILED
        self._put(study_uid, status, attempts, error, {})
        return StudyRecord(study_uid, status, attempts, error, {})

    def reset(self, study_uid: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM studies WHERE pacs = ? AND study_uid = ?", (self.pacs, study_uid))

    def records(self) -> list[StudyRecord]:
        with self._db() as db:
            rows = db.execute(
                "SELECT study_uid, status, attempts, last_error, outputs FROM studies WHERE pacs = ? ORDER BY updated",
                (self.pacs,),
            ).fetchall()
        return [StudyRecord(r[0], r[1], int(r[2]), r[3] or "", json.loads(r[4] or "{}")) for r in rows]

    def _put(self, study_uid: str, status: str, attempts: int, error: str, outputs: dict[str, Any]) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO studies VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.pacs, study_uid, status, attempts, error[:2000], json.dumps(outputs), time.time()),
            )
