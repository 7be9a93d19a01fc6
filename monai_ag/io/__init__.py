"""Outputs people use directly: the DICOM SEG of a label on its source series, and what a run will write.

- :mod:`~monai_ag.io.outputs`: the ``output_format`` option, output names as MONAI's ``SaveImage`` gives them,
  and the checks run before the network (inputs fit the formats; no output exists; folders are writable);
- :mod:`~monai_ag.io.dicom_series`: a DICOM series' headers, completed where UIDs are missing, and its grid;
- :mod:`~monai_ag.io.dicom_seg`: the DICOM SEG, written with highdicom (``pip install monai-ag[dicom]``);
- :mod:`~monai_ag.io.lattice`: a label moved exactly onto another indexing of the same voxel grid.

pydicom and highdicom are optional: imported when a DICOM SEG is made, not when this package is imported.

Example::

    from monai_ag.io import write_dicom_seg

    write_dicom_seg("out/PATIENT_DICOM_seg.nii.gz", "ircad01/PATIENT_DICOM", "out/PATIENT_DICOM_seg.dcm")
"""

from __future__ import annotations

from .dicom_seg import ANATOMICAL_STRUCTURE, SEGMENT_CODES, check_segment_codes, dicom_segmentation, write_dicom_seg
from .dicom_series import SourceSeries, read_series
from .lattice import on_grid
from .outputs import OUTPUT_FORMATS, check_output_request, check_outputs, output_formats, output_path

__all__ = [
    "ANATOMICAL_STRUCTURE",
    "OUTPUT_FORMATS",
    "SEGMENT_CODES",
    "SourceSeries",
    "check_output_request",
    "check_outputs",
    "check_segment_codes",
    "dicom_segmentation",
    "on_grid",
    "output_formats",
    "output_path",
    "read_series",
    "write_dicom_seg",
]
