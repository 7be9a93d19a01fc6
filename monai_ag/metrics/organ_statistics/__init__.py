"""Per-organ statistics of a CT and its label map: volume, HU distribution, components, position.

For every organ of the classes (label value > 0), computed on the image's own voxel grid from the label as
given (the bundle passes the label as written, after any clean-up, on the input's original grid):

.. list-table::
   :header-rows: 1

   * - field
     - unit
     - meaning
   * - ``voxels``
     - count
     - voxels with the organ's label value
   * - ``volume_ml``
     - mL
     - ``voxels`` times the voxel volume (``|det|`` of the affine's 3x3 part / 1000)
   * - ``hu_mean``, ``hu_median``, ``hu_std``
     - HU
     - mean, median and standard deviation (population, ``ddof=0``) of the image inside the organ
   * - ``hu_p05``, ``hu_p95``
     - HU
     - 5th and 95th percentile (numpy's default linear interpolation)
   * - ``components``
     - count
     - connected components of the organ (26-connectivity in 3D, as MONAI's ``KeepLargestConnectedComponent``)
   * - ``centroid_{x,y,z}_mm``
     - mm, RAS
     - mean world position of the organ's voxel centres
   * - ``bbox_min_{x,y,z}_mm``, ``bbox_max_{x,y,z}_mm``
     - mm, RAS
     - axis-aligned world box enclosing the organ's voxel centres (the world box of the corners of its
       voxel-index box: for an oblique grid, larger than the organ's tight box)

World coordinates are MONAI's and NIfTI's **RAS+** (+x towards the patient's right, +y anterior, +z superior),
in mm. DICOM's patient coordinates are **LPS+** (+x left, +y posterior, +z superior): a DICOM viewer shows the
same point with x and y negated.
HU is the image's value as read (DICOM rescale applied); for an image that is not CT the ``hu_`` fields are
its intensities. An organ without voxels has ``voxels`` 0, ``volume_ml`` 0, ``components`` 0 and every other
field empty (``null`` in JSON, an empty CSV cell).

Files (:func:`write_statistics`): ``<case>_statistics.json`` (the image, label, grid and one entry per organ)
and ``<case>_statistics.csv`` (one row per organ, the columns of :data:`CSV_COLUMNS`), written together
atomically; :class:`StatisticsTable` combines the per-case files of a run into one CSV.

Command line (``__main__.py``), for any image + label pair (e.g. a reference segmentation)::

    python -m monai_ag.metrics.organ_statistics --image ct.nii.gz --label ref.nii.gz --output_dir stats

Example::

    from monai_ag.metrics.organ_statistics import organ_statistics

    stats = organ_statistics("ct.nii.gz", "ct_seg.nii.gz")
    stats["organs"]["liver"]["volume_ml"], stats["organs"]["liver"]["hu_mean"]
"""

from __future__ import annotations

from .table import (
    CSV_COLUMNS,
    ORGAN_FIELDS,
    STATISTICS_FORMAT,
    STATISTICS_POSTFIX,
    StatisticsTable,
    main,
    organ_rows,
    organ_statistics,
    organ_volumes,
    statistics_files,
    write_statistics,
)

__all__ = [
    "CSV_COLUMNS",
    "ORGAN_FIELDS",
    "STATISTICS_FORMAT",
    "STATISTICS_POSTFIX",
    "StatisticsTable",
    "main",
    "organ_rows",
    "organ_statistics",
    "organ_volumes",
    "statistics_files",
    "write_statistics",
]
