#!/usr/bin/env bash
# Install Debian's Orthanc (a DICOM server) and its DICOMweb plugin when they are missing: the PACS bridge
# tests (tests/serve/pacs/) start their own Orthanc on a free loopback port with a temporary configuration
# and storage, and stop it at the end. Needs root (apt-get); without root or apt it says what to run and
# exits 0, and those tests skip with the same hint. Nothing is started here (Debian's service stays off).
set -euo pipefail

plugin_present() {
  ls /usr/share/orthanc/plugins/libOrthancDicomWeb.so* /usr/lib/orthanc/libOrthancDicomWeb.so* >/dev/null 2>&1
}

if command -v Orthanc >/dev/null 2>&1 && plugin_present; then
  echo "ensure_orthanc: $(command -v Orthanc) and its DICOMweb plugin present"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_orthanc: no Orthanc and no apt-get; install Orthanc and its DICOMweb plugin to run the PACS tests" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure_orthanc: no Orthanc; run as root: apt-get update && apt-get install -y orthanc orthanc-dicomweb" >&2
  exit 0
fi

echo "ensure_orthanc: installing Debian's orthanc and orthanc-dicomweb packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d may refuse to start the service in a container: that is fine, the tests start their own
apt-get install -y -qq orthanc orthanc-dicomweb >/dev/null || true
if command -v Orthanc >/dev/null 2>&1 && plugin_present; then
  echo "ensure_orthanc: $(Orthanc --version 2>/dev/null | head -1 || echo Orthanc) installed"
else
  echo "ensure_orthanc: installation failed; the PACS tests will skip" >&2
fi
