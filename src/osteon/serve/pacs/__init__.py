"""osteon.serve.pacs: the DICOMweb bridge (extra ``pacs``): studies from a PACS in, SR / SEG / overlays out.

See :mod:`osteon.serve.pacs.bridge` (the loop), :mod:`osteon.serve.pacs.dicom_out` (the DICOM objects) and
:mod:`osteon.serve.pacs.state` (studies already processed).
"""
