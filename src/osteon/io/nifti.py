"""Read NIfTI-1/2 volumes (``.nii``, ``.nii.gz``) into :class:`~osteon.io.image.Image` records (nibabel).

NIfTI stores voxels as ``(i, j, k)`` = ``(x, y, z)`` index order. Osteon puts the slice axis first:
``array[d, h, w] = data[w, h, d]``, i.e. ``D = k``, ``H = j``, ``W = i``. The spacing follows the
array axes, ``(slice, row, col)`` = ``(zoom_k, zoom_j, zoom_i)`` in mm, and ``orientation`` is the
NIfTI affine with its columns permuted the same way, so ``orientation @ [d, h, w, 1]`` gives the
RAS+ position in mm of ``array[d, h, w]``. No reorientation or resampling is done.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from osteon.errors import ImageReadError, ImageTooLargeError
from osteon.io.formats import DEFAULT_MAX_PIXELS, check_declared_size, is_gzip
from osteon.io.image import Image

_UNIT_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 0.001, "unknown": 1.0}


def read_nifti(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Read a single-file NIfTI volume, gzipped or not, whatever its file name.

    Args:
        path: A ``.nii`` or ``.nii.gz`` file (recognised by content, not extension).
        max_pixels: Most voxels to load; checked against the header shape before reading data.

    Returns:
        An ``Image`` with ``array`` ``(D, H, W)`` (a 2D file gives ``D = 1``) in the stored dtype
        (float when the header sets ``scl_slope``), ``spacing`` ``(slice, row, col)`` mm,
        ``orientation`` the permuted 4×4 affine (see the module docstring) and ``extra`` with
        ``format``, ``axcodes`` (orientation of the stored i, j, k axes, e.g. ``"RAS"``) and
        ``nifti_shape``.

    Raises:
        ImageReadError: corrupt/truncated file, or a 4D+ series (one 3D volume per file is read).
        ImageTooLargeError: header shape above ``max_pixels``.

    Example:
        >>> image = read_nifti("knee.nii.gz")  # doctest: +SKIP
        >>> image.array.shape, image.spacing   # doctest: +SKIP
        ((160, 384, 384), (0.7, 0.36, 0.36))
    """
    path = Path(path)
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rb") as stream:
            version = _version(stream.read(8))
            stream.seek(0)
            klass = nib.Nifti2Image if version == 2 else nib.Nifti1Image
            nifti = klass.from_stream(stream)
            shape = tuple(int(n) for n in nifti.shape)
            check_declared_size(path, math.prod(shape), max_pixels, shape="×".join(map(str, shape)) + " voxels")
            if len(shape) > 3 and math.prod(shape[3:]) > 1:
                raise ImageReadError(
                    path,
                    f"is a {len(shape)}D NIfTI of shape {shape}; Osteon reads one 3D volume per file.",
                    "split it into 3D volumes (e.g. nibabel.funcs.four_to_three) and read those.",
                )
            data = np.asanyarray(nifti.dataobj)
            affine = np.asarray(nifti.affine, dtype=np.float64)
            zooms = tuple(float(z) for z in nifti.header.get_zooms())
            spatial_unit = nifti.header.get_xyzt_units()[0]
    except (ImageReadError, ImageTooLargeError):
        raise
    except MemoryError as err:
        raise ImageTooLargeError(path, "ran out of memory while loading.", "pass a smaller max_pixels.") from err
    except (OSError, EOFError, zlib.error, ValueError) as err:
        message = " ".join(str(err).split())
        truncated = isinstance(err, EOFError) or any(
            hint in message.lower() for hint in ("truncated", "end-of-stream", "could the file be damaged")
        )
        raise ImageReadError(
            path,
            ("is truncated" if truncated else "could not be read as NIfTI") + f" ({type(err).__name__}: {message}).",
            "re-export or re-download the file.",
        ) from err
    except Exception as err:  # nibabel's HeaderDataError, ImageFileError ...
        raise ImageReadError(
            path, f"could not be read as NIfTI ({type(err).__name__}: {err}).", "re-export it."
        ) from err

    if data.dtype.fields is not None:
        raise ImageReadError(path, f"has a structured voxel type ({data.dtype}); RGB NIfTI is not supported.")
    data = data.reshape(shape[:3] if len(shape) >= 3 else (*shape, *([1] * (3 - len(shape)))))
    array = np.ascontiguousarray(np.transpose(data, (2, 1, 0)))
    scale = _UNIT_TO_MM.get(spatial_unit, 1.0)
    zooms3 = (*zooms, 1.0, 1.0, 1.0)[:3]
    spacing = (zooms3[2] * scale, zooms3[1] * scale, zooms3[0] * scale)
    orientation = affine[:, [2, 1, 0, 3]]
    extra: dict[str, object] = {
        "format": "nifti",
        "nifti_version": version,
        "nifti_shape": shape,
        "axcodes": "".join(str(code) for code in nib.aff2axcodes(affine)),
    }
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        extra["has_non_finite"] = True
    return Image(
        array=array,
        path=path,
        spacing=spacing,
        photometric="MONOCHROME2",
        bits_stored=int(array.dtype.itemsize * 8),
        orientation=orientation,
        extra=extra,
    )


def _version(head: bytes) -> int:
    sizes = {int.from_bytes(head[:4], "little"), int.from_bytes(head[:4], "big")}
    return 2 if 540 in sizes else 1
