"""What MONAI Label 0.8.5 returns with a label of this bundle besides the label file: the organ volumes, in the
result's parameters (what 3D Slicer's MONAI Label module and OHIF receive as the result JSON); and none of the
bundle's optional writers (DICOM SEG, statistics, preview) runs inside MONAI Label."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from needs import needs_module  # noqa: E402 (tests/ is on the path)

needs_module(
    "monailabel.tasks.infer.bundle",
    "MONAILABEL",
    "MONAI Label is not installed here; tests/monailabel runs in the environment scripts/monailabel_env.sh makes "
    "(scripts/monailabel_tests.sh)",
)

from monailabel.tasks.infer.bundle import BundleInferTask  # noqa: E402

from monai_ag.data import ORGAN_NAMES  # noqa: E402


def test_result_carries_the_organ_volumes(tmp_path, helpers, tiny_phantom):
    root = helpers.make_app_bundle(tmp_path / "app")
    helpers.write_random_weights(root)
    task = BundleInferTask(str(root), conf={})
    post = [type(t).__name__ for t in task.post_transforms({"device": "cpu"})]
    assert "OrganVolumesd" in post
    assert not {"SaveDicomSegd", "SaveOrganStatisticsd", "SavePreviewd", "SourceImaged"} & set(post)
    image = tiny_phantom / "imagesTs" / "phantom_004.nii.gz"
    label_file, result = task({"image": str(image), "device": "cpu"})
    volumes = result["organ_volumes_ml"]
    label = nib.load(label_file)
    seg = np.asarray(label.dataobj)
    voxel_ml = abs(np.linalg.det(label.affine[:3, :3])) / 1000
    assert list(volumes) == list(ORGAN_NAMES.values())
    assert volumes == {name: round(float((seg == value).sum() * voxel_ml), 2) for value, name in ORGAN_NAMES.items()}
    assert sum(v > 0 for v in volumes.values()) >= 2, "an untrained model's constant label shows little"
