"""find_images: images found by content, symbolic-link loops walked once, every skipped file with its reason."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.data.adapters.conftest import write_dicom

from osteon.io import discover
from osteon.io.discover import find_images

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """a.png, a DICOM named by its UID (numeric suffix), one without suffix, notes.txt, a loop, a broken link."""
    root = tmp_path / "study"
    (root / "series").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "a.png")
    write_dicom(root / "series" / "1.2.840.113619.2.55.3")
    write_dicom(root / "series" / "IM0001")
    (root / "notes.txt").write_text("reader notes\n")
    (root / "series" / "back").symlink_to(root, target_is_directory=True)  # loop to an ancestor
    (root / "self").symlink_to(root / "self")  # a link to itself
    (root / "gone.png").symlink_to(root / "nowhere.png")  # broken
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(16))
    (root / "broken.png").write_bytes(b"not a png at all")
    return root


def test_images_found_by_content_and_loops_do_not_crash(study: Path) -> None:
    scan = find_images([study])
    names = sorted(p.name for p in scan.files)
    # before: the UID-named DICOM was dropped for its suffix ".3", and rglob raised on the loop
    assert names == ["1.2.840.113619.2.55.3", "IM0001", "a.png", "broken.png"]
    reasons = {s.path.name: s.reason for s in scan.skipped}
    assert reasons == {
        "notes.txt": discover.NOT_AN_IMAGE,
        "back": discover.LINK_LOOP,
        "self": discover.LINK_LOOP,
        "gone.png": discover.BROKEN_LINK,
        ".DS_Store": discover.HIDDEN,
        "clip.mp4": discover.VIDEO,
    }
    assert scan.summary().startswith("6 skipped: ")
    assert "notes.txt" in scan.summary(examples=5)


def test_second_link_to_a_folder_is_walked_once(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(real / "a.png")
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    scan = find_images([tmp_path])
    assert len(scan.files) == 1
    assert [s.reason for s in scan.skipped] == [discover.SEEN_FOLDER]


def test_files_given_explicitly_are_kept(tmp_path: Path) -> None:
    missing = tmp_path / "missing.dcm"
    text = tmp_path / "t.txt"
    text.write_text("x")
    scan = find_images([missing, text])
    assert scan.files == [missing, text] and scan.skipped == []


def test_explicit_link_loop_is_skipped_not_passed_on(tmp_path: Path) -> None:
    loop = tmp_path / "loop.dcm"
    loop.symlink_to(loop)
    # before: passed on to the predictor, whose Path.resolve() raised RuntimeError("Symlink loop ...") (3.11)
    scan = find_images([loop])
    assert scan.files == [] and [s.reason for s in scan.skipped] == [discover.LINK_LOOP]
