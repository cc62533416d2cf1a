"""Helpers of the server tests: uploads of every kind (good and bad), stub services, a live uvicorn server."""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from osteon.tasks.predictions import BoxPrediction, MaskPrediction


def dicom_bytes(
    array: np.ndarray, *, patient_id: str = "PAT-SECRET-123", window: tuple[float, float] | None = None
) -> bytes:
    """A MONOCHROME2 16-bit DICOM (explicit VR little endian) of ``array`` with patient identifiers in it."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName = patient_id, "Doe^Jane"
    ds.Modality = "CR"
    ds.Rows, ds.Columns = array.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = array.astype("<u2").tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).convert("L").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def bomb_png(side: int = 60_000) -> bytes:
    """A tiny PNG whose header declares ``side × side`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 4)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


class StubService:
    """A service whose predictions are fixed (boxes or a mask), for the drawing and JSON paths without training."""

    operating_point = None

    def __init__(self, prediction: Any) -> None:
        self.prediction = prediction
        self.seen: list[Path] = []

    def predict(self, path: Path) -> Any:
        self.seen.append(path)
        return self.prediction

    def explain(self, path: Path) -> Any:
        from osteon.errors import ConfigError

        raise ConfigError("no CAM for this stub")

    def card(self) -> dict[str, Any]:
        return {"name": "stub", "task": "stub", "classes": ["fracture"], "metrics": {}, "version": {"osteon": "test"}}


def box_prediction() -> BoxPrediction:
    return BoxPrediction(np.array([[8.0, 10.0, 40.0, 50.0]]), np.array([0.9]), ("fracture",), ("fracture",))


def mask_prediction(shape: tuple[int, int] = (64, 64)) -> MaskPrediction:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[20:30, 5:45] = 1
    probs = np.stack([1.0 - mask, mask]).astype(np.float32)
    return MaskPrediction(
        mask, probs, ("background", "bone"), None, {"bone": {"area_px": 400, "area_mm2": float("nan")}}
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn on loopback in a thread (stopped at exit)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
