"""Dataset adapters: native on-disk layouts → :class:`~osteon.data.manifest.Manifest`.

Adapters only read: they never check, split or rewrite data. Each format is a
:class:`DatasetAdapter` (``detect(path) -> bool``, ``load(path, **options) -> Manifest``) registered
in :data:`ADAPTERS` by the explicit list below. :func:`load_dataset` picks one by ``format=`` or by
trying :data:`DETECTION_ORDER` (most specific first) and validates the options against it.

Example:
    >>> from osteon.data.adapters import load_dataset
    >>> manifest = load_dataset("../shared/data/knee_kl_chen2018")  # doctest: +SKIP
    >>> manifest.frame["split"].value_counts().to_dict()  # doctest: +SKIP
    {'train': 600, 'test': 242, 'val': 125}
"""

from osteon.data.adapters import class_folder, coco, csv_table, dicom_dir, fracatlas, manifest_file, voc, yolo
from osteon.data.adapters._base import DATASET_OPTIONS, DatasetAdapter
from osteon.registry import Registry

ADAPTERS: Registry[DatasetAdapter] = Registry("dataset format")

#: Detection order, most specific first: a saved Manifest; FracAtlas (its folder also holds COCO and
#: YOLO annotations and class-like folders); a COCO JSON; YOLO images/ + labels/; Pascal VOC Annotations/*.xml
#: (before class folders, which JPEGImages/ + Annotations/ would resemble); class folders
#: (before DICOM, since label/*.dcm is a class-folder layout); a DICOM tree; a CSV of paths.
DETECTION_ORDER = (
    manifest_file.ADAPTER,
    fracatlas.ADAPTER,
    coco.ADAPTER,
    yolo.ADAPTER,
    voc.ADAPTER,
    class_folder.ADAPTER,
    dicom_dir.ADAPTER,
    csv_table.ADAPTER,
)
for _adapter in DETECTION_ORDER:
    ADAPTERS.register(_adapter.name)(_adapter)

from osteon.data.adapters._load import detect_format, load_dataset  # noqa: E402  (needs ADAPTERS above)

__all__ = ["ADAPTERS", "DATASET_OPTIONS", "DETECTION_ORDER", "DatasetAdapter", "detect_format", "load_dataset"]
