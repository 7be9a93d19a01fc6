"""MONAI Label 0.8.5's BundleInferTask on this bundle, as the monaibundle app builds it: labels,
and label files aligned with the input (shape and affine) for NIfTI and DICOM input."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import torch
from needs import needs_module  # noqa: E402 (tests/ is on the path)

needs_module(
    # not just "monailabel": tests/monailabel itself is a namespace package of that name
    "monailabel.tasks.infer.bundle",
    "MONAILABEL",
    "MONAI Label is not installed here; tests/monailabel runs in the environment scripts/monailabel_env.sh makes "
    "(scripts/monailabel_tests.sh)",
)

from monai.bundle import ConfigWorkflow  # noqa: E402
from monai.transforms import LoadImage  # noqa: E402
from monailabel.tasks.infer.bundle import BundleInferTask  # noqa: E402

from monai_ag.data import CLASS_NAMES, ORGAN_NAMES  # noqa: E402


def infer(root, image, **request):
    task = BundleInferTask(str(root), conf={})
    assert task.is_valid()
    label, result = task({"image": str(image), "device": "cpu", **request})
    assert isinstance(label, str), f"MONAI Label wrote no label file: {label!r}"
    return label, result


def bundle_run(root, image, out_dir) -> str:
    """What ``monai.bundle run`` with the bundle's ``configs/inference.json`` writes for ``image``: the label file."""
    wf = ConfigWorkflow(
        config_file=str(root / "configs" / "inference.json"),
        meta_file=str(root / "configs" / "metadata.json"),
        logging_file=str(root / "configs" / "logging.conf"),
        workflow_type="infer",
        bundle_root=str(root),
        input_path=str(image),
        output_dir=str(out_dir),
        device=torch.device("cpu"),
    )
    wf.initialize()
    wf.run()
    wf.finalize()
    (seg,) = out_dir.rglob("*_seg.nii.gz")
    return str(seg)


def assert_aligned(label: str, shape, affine) -> np.ndarray:
    """The label file has the input's voxel grid (shape and affine) and holds class indices."""
    seg, seg_affine = np.asarray(nib.load(label).dataobj), nib.load(label).affine
    assert seg.shape == tuple(shape)
    np.testing.assert_allclose(seg_affine, np.asarray(affine), atol=1e-3)
    assert set(np.unique(seg).tolist()) <= set(range(len(CLASS_NAMES)))
    return seg


def test_labels_from_channel_def(tmp_path, helpers):
    root = helpers.make_app_bundle(tmp_path / "app")
    # without model.pt (or model.ts) MONAI Label skips the bundle: no weights ship, train first
    assert not BundleInferTask(str(root), conf={}).is_valid()
    helpers.write_random_weights(root)
    task = BundleInferTask(str(root), conf={})
    assert task.is_valid() and task.type == "segmentation"
    assert task.labels == {"liver": 1, "spleen": 2, "kidney": 3, "pancreas": 4}
    assert task.labels == {name: i for i, name in ORGAN_NAMES.items()}


def test_synthetic_nifti_matches_bundle_run(tmp_path, helpers, tiny_phantom, caplog):
    """A NIfTI with an oblique-free but flipped, anisotropic grid: MONAI Label's label file is
    aligned with it and equals what ``monai.bundle run`` with configs/inference.json writes."""
    root = helpers.make_app_bundle(tmp_path / "app")
    helpers.write_random_weights(root)
    case = nib.load(str(tiny_phantom / "imagesTs" / "phantom_004.nii.gz"))
    affine = np.diag([-7.0, 8.0, 9.0, 1.0])
    affine[:3, 3] = [100.0, -50.0, 20.0]
    image = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(case.dataobj), affine), str(image))

    with caplog.at_level(logging.INFO):
        label, result = infer(root, image)
    seg = assert_aligned(label, case.shape, affine)
    assert "MetaSafeSpacingd" in result["latencies"]["transform"]["pre"]  # the pre-transforms ran one by one

    ref = assert_aligned(bundle_run(root, image, tmp_path / "out"), case.shape, affine)
    np.testing.assert_array_equal(seg, ref)
    assert len(np.unique(seg)) > 1, "a constant label map cannot show alignment"


def test_real_nifti_ct(tmp_path, helpers, shared_data):
    """The TotalSegmentator example CT (int32, 3 mm): the NIfTI input that crashed in Spacingd."""
    root = helpers.make_app_bundle(tmp_path / "app")
    helpers.write_random_weights(root)
    image = shared_data / "totalseg" / "example_ct.nii.gz"
    ref = nib.load(str(image))
    label, _ = infer(root, image)
    assert_aligned(label, ref.shape, ref.affine)


def test_dicom_series(tmp_path, helpers, tiny_phantom):
    """A synthetic CT DICOM series (a folder, as MONAI Label hands a downloaded series over): the
    label file has the series' grid as ITK reads it."""
    root = helpers.make_app_bundle(tmp_path / "app")
    helpers.write_random_weights(root)
    volume = np.asarray(nib.load(str(tiny_phantom / "imagesTs" / "phantom_004.nii.gz")).dataobj)
    series = helpers.write_dicom_series(volume, (8.0, 7.0, 9.0), tmp_path / "series")
    ref = LoadImage(reader="ITKReader", image_only=True)(str(series))
    assert tuple(ref.shape) == volume.shape
    # a folder has no extension to copy, so the client names one (3D Slicer and OHIF do)
    label, _ = infer(root, series, result_extension=".nii.gz")
    seg = assert_aligned(label, ref.shape, ref.affine)
    assert len(np.unique(seg)) > 1
    # voxel for voxel what monai.bundle run writes for the same series
    np.testing.assert_array_equal(
        seg, assert_aligned(bundle_run(root, series, tmp_path / "out"), ref.shape, ref.affine)
    )


def test_model_trained_with_another_recipe_segments_as_the_bundle_does(tmp_path, helpers, tiny_phantom):
    """A model trained with non-default spacing, patch and width (the bundle's configs untouched, the settings
    given at training only): MONAI Label, which reads inference.json and nothing else, segments as
    ``monai.bundle run`` does with inference.json alone, and with the training settings repeated."""
    root = helpers.make_app_bundle(tmp_path / "app")
    settings = {
        "spacing": [8.0, 8.0, 8.0],
        "patch_size": [32, 32, 24],
        "recipe_defaults#network#channels": helpers.TINY_CHANNELS,
    }
    common = dict(
        meta_file=str(root / "configs" / "metadata.json"),
        logging_file=str(root / "configs" / "logging.conf"),
        bundle_root=str(root),
        device=torch.device("cpu"),
    )
    train = ConfigWorkflow(
        config_file=str(root / "configs" / "train.json"),
        workflow_type="train",
        dataset_dir=str(tiny_phantom),
        max_epochs=2,
        val_interval=1,
        num_samples=1,
        **settings,
        **common,
    )
    train.initialize()
    train.run()
    train.finalize()
    image = tiny_phantom / "imagesTs" / "phantom_004.nii.gz"
    label, _ = infer(root, image)
    seg = np.asarray(nib.load(label).dataobj)
    for name, overrides in {"alone": {}, "with the training settings": settings}.items():
        wf = ConfigWorkflow(
            config_file=str(root / "configs" / "inference.json"),
            workflow_type="infer",
            input_path=str(image),
            output_dir=str(tmp_path / name),
            **overrides,
            **common,
        )
        wf.initialize()
        wf.run()
        wf.finalize()
        (bundle_seg,) = (tmp_path / name).rglob("*_seg.nii.gz")
        np.testing.assert_array_equal(seg, np.asarray(nib.load(str(bundle_seg)).dataobj), err_msg=name)
    assert (seg > 0).any() and (seg == 0).any(), "a constant label map cannot show agreement"
