"""A real Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) on a free loopback port, with temporary storage.

``scripts/ensure_orthanc.sh`` installs it; without it the PACS tests skip and say so.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("dicomweb_client", reason="extra `pacs` (dicomweb-client, highdicom) is not installed")
pytest.importorskip("highdicom", reason="extra `pacs` (dicomweb-client, highdicom) is not installed")

PLUGIN_DIRS = [Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc")]
HINT = "run `bash scripts/ensure_orthanc.sh` (apt-get install orthanc orthanc-dicomweb) to enable the PACS tests"


def _plugin() -> Path | None:
    for folder in PLUGIN_DIRS:
        for path in sorted(folder.glob("libOrthancDicomWeb.so*")) if folder.is_dir() else []:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Orthanc:
    """A running Orthanc: ``rest`` (its REST API) and ``dicomweb`` (its DICOMweb root)."""

    def __init__(self, port: int) -> None:
        self.rest = f"http://127.0.0.1:{port}"
        self.dicomweb = f"{self.rest}/dicom-web"

    def upload(self, path: Path) -> dict:
        import requests

        response = requests.post(f"{self.rest}/instances", data=path.read_bytes(), timeout=30)
        response.raise_for_status()
        return response.json()

    def get(self, route: str) -> object:
        import requests

        response = requests.get(f"{self.rest}{route}", timeout=30)
        response.raise_for_status()
        return response.json()

    def clear(self) -> None:
        import requests

        for patient in self.get("/patients"):
            requests.delete(f"{self.rest}/patients/{patient}", timeout=30).raise_for_status()


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    binary, plugin = shutil.which("Orthanc"), _plugin()
    if binary is None or plugin is None:
        pytest.skip(f"Orthanc or its DICOMweb plugin is not installed: {HINT}")
    folder = tmp_path_factory.mktemp("orthanc")
    port = _free_port()
    config = {
        "Name": "osteon-test",
        "StorageDirectory": str(folder / "db"),
        "IndexDirectory": str(folder / "db"),
        "HttpPort": port,
        "HttpBindAddress": "127.0.0.1",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Host": "127.0.0.1"},
        "StableAge": 1,
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = (folder / "orthanc.log").open("w")
    process = subprocess.Popen([binary, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    server = Orthanc(port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server.get("/system")
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.skip(f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-500:]}")
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
