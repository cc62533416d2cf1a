"""Prediction streams the inputs in chunks: same table as one chunk, errors kept in place, bounded decoding."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

from osteon.engine import Predictor, streaming


@pytest.fixture(scope="module")
def inputs(phantom_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """23 phantom images with a corrupt file in the middle and two images of the same name in two folders."""
    folder = tmp_path_factory.mktemp("stream")
    images = sorted((phantom_dataset.parent / "images").glob("*.png"))[:22]
    paths = list(images[:11])
    bad = folder / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    paths.append(bad)
    paths += images[11:]
    twin = folder / "twin" / images[0].name
    twin.parent.mkdir()
    shutil.copy(images[0], twin)
    return [*paths, twin]


def test_chunks_give_the_same_table_with_errors_in_place(trained_classifier: Path, inputs: list[Path]) -> None:
    predictor = Predictor.from_run(trained_classifier)
    whole = predictor.predict_paths(inputs, progress=False)
    chunked = predictor.predict_manifest(_manifest(inputs), chunk_size=5, progress=False)
    pd.testing.assert_frame_equal(chunked, whole)
    assert list(whole["image"]) == [str(p.resolve()) for p in inputs]
    assert whole.loc[11, "error"] != "" and pd.isna(whole.loc[11, "prob_1"])
    assert (whole.drop(index=11)["error"] == "").all()


def test_decoding_runs_ahead_by_at_most_one_chunk(
    trained_classifier: Path, inputs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, int]] = []
    lock = threading.Lock()
    decode, predict = streaming.decode_images, streaming.predict_decoded

    def logged_decode(paths: list[Path], *args: object, **kwargs: object) -> object:
        with lock:
            events.append(("decode", len(paths)))
        return decode(paths, *args, **kwargs)

    def logged_predict(*args: object, **kwargs: object) -> pd.DataFrame:
        with lock:
            events.append(("predict", 0))
        return predict(*args, **kwargs)

    monkeypatch.setattr(streaming, "decode_images", logged_decode)
    monkeypatch.setattr(streaming, "predict_decoded", logged_predict)
    predictor = Predictor.from_run(trained_classifier)
    table = predictor.predict_manifest(_manifest(inputs), chunk_size=4, progress=False)
    assert len(table) == len(inputs)
    decodes = [n for kind, n in events if kind == "decode"]
    assert decodes == [4, 4, 4, 4, 4, 4] and sum(decodes) == len(inputs)
    ahead = 0
    for kind, _ in events:  # decoded but not yet predicted chunks: never more than two in memory
        ahead += 1 if kind == "decode" else -1
        assert ahead <= 2


def test_unique_mask_names_across_chunks(tmp_path: Path) -> None:
    import numpy as np

    from osteon.engine.outputs import MaskFileWriter

    writer = streaming.UniqueStemWriter(MaskFileWriter(tmp_path))
    first = writer.save_mask("masks", "a", np.zeros((4, 4), np.uint8))
    second = writer.save_mask("masks", "a", np.ones((4, 4), np.uint8))
    assert first != second and Path(first).is_file() and Path(second).is_file()


def _manifest(paths: list[Path]) -> object:
    import warnings

    from osteon.data.manifest import Manifest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Manifest(pd.DataFrame({"image": [str(p.resolve()) for p in paths]}), root="/", name="inputs")
