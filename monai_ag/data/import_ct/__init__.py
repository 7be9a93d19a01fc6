"""Import real abdominal CT into a dataset the bundle trains on: NIfTI image + label map in the bundle's classes.

Run ``python -m monai_ag.data.import_ct --help`` (``__main__.py`` calls
:py:func:`~monai_ag.data.import_ct.dataset.main`). Each source case becomes ``DIR/imagesTr/<case>.nii.gz`` (the CT,
on its original grid) and ``DIR/labelsTr/<case>.nii.gz`` (uint8: 0 background, 1 liver, 2 spleen, 3 kidney,
4 pancreas), listed in an MSD-style ``DIR/dataset.json`` that ``--dataset_dir DIR`` reads directly. Every item
records the classes its source annotates (``"annotated": [1, 2, 3]``): training ignores the others
(:py:mod:`monai_ag.losses.partial`), evaluation reports them as not annotated.

Sources (a folder of such case folders works too, one level deep):

- an IRCAD-layout case folder: ``PATIENT_DICOM/`` + ``MASKS_DICOM/<organ>/`` (one DICOM mask series per organ,
  values {0, 255}; organs outside the preset's names are ignored);
- a TotalSegmentator-dataset-layout folder: ``ct.nii.gz`` + ``segmentations/<organ>.nii.gz`` binary masks;
- an image + label-map pair (``--pair IMAGE LABEL``; NIfTI files or DICOM series folders), an MSD-style folder with
  a ``dataset.json`` "training" list, or an nnU-Net-style folder with ``imagesTr/`` + ``labelsTr/``: label values
  are mapped with ``--preset`` (see :py:mod:`monai_ag.data.presets`) or ``--mapping JSON``.

Geometry: a mask or label map whose grid differs from the image's is resampled onto the image grid by physical
position (MONAI ``ResampleToMatch``, nearest neighbour), never overlaid by array index. Checks, each failing
with the file named: a mask that is not binary, masks of different organs that overlap, label values beyond the
preset's range, a mask that lies mostly outside the image, and (for CT in HU) an organ whose voxels are largely
fat or air, which is what a flipped or shifted mask looks like (``check_alignment=False`` to skip).
"""

from __future__ import annotations

from .case import ALIGNMENT_MAX_FAT_FRACTION, FAT_HU, import_case
from .dataset import import_ct, main
from .sources import CaseSource, find_cases

__all__ = ["ALIGNMENT_MAX_FAT_FRACTION", "FAT_HU", "CaseSource", "find_cases", "import_case", "import_ct", "main"]
