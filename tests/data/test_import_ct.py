from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import LoadImage
from needs import SHARED_DATA, needs_shared_data  # noqa: E402 (tests/ is on the path)

from monai_ag.data import train_val_datalists
from monai_ag.data.import_ct import find_cases, import_ct, main
from monai_ag.data.presets import PRESETS, get_preset, load_mapping

AFFINE = np.diag([2.0, 2.0, 3.0, 1.0])
SHAPE = (40, 36, 20)

# the label value of each organ in each preset's source numbering (read off the cited sources); values absent
# here map to background. Kidney lists both sides where the dataset separates them.
EXPECTED = {
    "monai_ag": {"liver": [1], "spleen": [2], "kidney": [3], "pancreas": [4]},
    "totalsegmentator_v2": {"liver": [5], "spleen": [1], "kidney": [2, 3], "pancreas": [7]},
    "totalsegmentator_v1": {"liver": [5], "spleen": [1], "kidney": [2, 3], "pancreas": [10]},
    "btcv": {"liver": [6], "spleen": [1], "kidney": [2, 3], "pancreas": [11]},
    "amos": {"liver": [6], "spleen": [1], "kidney": [2, 3], "pancreas": [10]},
    "flare22": {"liver": [1], "spleen": [3], "kidney": [2, 13], "pancreas": [4]},
    "word": {"liver": [1], "spleen": [2], "kidney": [3, 4], "pancreas": [8]},
    "kits": {"kidney": [1, 2, 3]},
    "msd_task03_liver": {"liver": [1, 2]},
    "msd_task07_pancreas": {"pancreas": [1, 2]},
    "msd_task09_spleen": {"spleen": [1]},
}
CLASS = {"liver": 1, "spleen": 2, "kidney": 3, "pancreas": 4}


def _save(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return str(path)


def _ct(path: Path) -> str:
    """A CT-like volume in HU: air around a soft-tissue body (40 HU) where every test organ lies."""
    ct = np.full(SHAPE, -1000, np.int16)
    ct[2:38, 2:34, :] = 40
    return _save(path, ct)


def _block(index: int) -> tuple[slice, ...]:
    """The index-th small block inside the body (up to 18 blocks)."""
    i, j = divmod(index, 6)
    return slice(3 + 6 * j, 7 + 6 * j), slice(3 + 10 * i, 9 + 10 * i), slice(4, 10)


def _dataset(path: Path) -> dict:
    return json.loads((path / "dataset.json").read_text())


def _label(path: Path, case: str) -> np.ndarray:
    return np.asanyarray(nib.load(str(path / "labelsTr" / f"{case}.nii.gz")).dataobj)


# --- presets ------------------------------------------------------------------------------------------------------


def test_every_preset_is_tested():
    assert set(EXPECTED) == set(PRESETS) - {"ircad"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_maps_label_values(name, tmp_path):
    preset = get_preset(name)
    top = preset.max_label
    label = np.zeros(SHAPE, np.uint8)
    for value in range(1, min(top, 17) + 1):
        label[_block(value - 1)] = value
    if top > 17:  # the largest value of the big numberings as well
        label[_block(17)] = top
    pair = (_ct(tmp_path / "ct.nii.gz"), _save(tmp_path / "seg.nii.gz", label))
    import_ct(pairs=[pair], output=tmp_path / "out", preset=name, verbose=False)
    out = _label(tmp_path / "out", "ct")
    expected = {v: CLASS[organ] for organ, values in EXPECTED[name].items() for v in values}
    for value in range(1, min(top, 17) + 1):
        got = np.unique(out[_block(value - 1)])
        assert got.tolist() == [expected.get(value, 0)], f"{name}: source label {value} -> {got}"
    (item,) = _dataset(tmp_path / "out")["training"]
    assert item["annotated"] == sorted({CLASS[o] for o in EXPECTED[name]})


def test_preset_refuses_values_of_another_numbering(tmp_path):
    label = np.zeros(SHAPE, np.uint8)
    label[_block(0)] = 14  # BTCV has 13 labels
    pair = (_ct(tmp_path / "ct.nii.gz"), _save(tmp_path / "seg.nii.gz", label))
    with pytest.raises(ValueError, match=r"seg.nii.gz holds values \[14\] above preset 'btcv'"):
        import_ct(pairs=[pair], output=tmp_path / "out", preset="btcv", verbose=False)
    with pytest.raises(ValueError, match="needs a label convention"):
        import_ct(pairs=[pair], output=tmp_path / "out", verbose=False)
    with pytest.raises(KeyError, match="unknown label preset 'nope'"):
        get_preset("nope")


def test_user_mapping(tmp_path):
    label = np.zeros(SHAPE, np.uint8)
    for value in (1, 2, 5):
        label[_block(value)] = value
    pair = (_ct(tmp_path / "ct.nii.gz"), _save(tmp_path / "seg.nii.gz", label))
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps({"labels": {"1": "liver", "2": 1, "5": "pancreas"}, "annotated": ["liver", "pancreas"]})
    )
    import_ct(pairs=[pair], output=tmp_path / "out", mapping=mapping, verbose=False)
    out = _label(tmp_path / "out", "ct")
    assert [int(np.unique(out[_block(v)])[0]) for v in (1, 2, 5)] == [1, 1, 4]
    assert _dataset(tmp_path / "out")["training"][0]["annotated"] == [1, 4]
    flat = load_mapping({"3": "kidney", "leber": "liver"})
    assert dict(flat.labels) == {3: 3} and dict(flat.masks) == {"leber": 1} and flat.annotated == (1, 3)
    with pytest.raises(ValueError, match="label 7: unknown class 'lung'"):
        load_mapping({"7": "lung"})
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match=r"mapping .*bad.json is not valid JSON"):
        load_mapping(bad)


# --- mask folders ---------------------------------------------------------------------------------------------------


def _totalseg_case(root: Path, masks: dict[str, np.ndarray]) -> Path:
    _ct(root / "ct.nii.gz")
    for name, mask in masks.items():
        _save(root / "segmentations" / f"{name}.nii.gz", mask)
    return root


def test_totalsegmentator_layout_with_partial_masks(tmp_path):
    liver, kidney_left = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    liver[_block(0)], kidney_left[_block(3)] = 1, 1
    aorta = np.zeros(SHAPE, np.uint8)
    aorta[_block(0)] = 1  # overlaps the liver but is not one of our organs: ignored
    case = _totalseg_case(tmp_path / "s0001", {"liver": liver, "kidney_left": kidney_left, "aorta": aorta})
    assert [c.layout for c in find_cases(tmp_path)] == ["totalsegmentator"]  # a folder of case folders
    import_ct([tmp_path], tmp_path / "out", verbose=False)
    out = _label(tmp_path / "out", "s0001")
    assert (
        (out == 1).sum() == liver.sum() and (out == 3).sum() == kidney_left.sum() and set(np.unique(out)) == {0, 1, 3}
    )
    data = _dataset(tmp_path / "out")
    assert data["training"][0]["annotated"] == [1, 3]
    assert data["import_summary"]["s0001"]["organs"]["spleen"] == {
        "annotated": False,
        "volume_ml": 0.0,
        "mean_hu": None,
        "fat_fraction": None,
    }
    assert case.exists()


def test_non_binary_and_overlapping_masks_name_the_file(tmp_path):
    liver, spleen = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    liver[_block(0)], spleen[_block(0)] = 1, 1
    _totalseg_case(tmp_path / "a", {"liver": liver, "spleen": spleen})
    with pytest.raises(ValueError, match=r"mask .*a/segmentations/spleen.nii.gz \(spleen\) overlaps the liver mask"):
        import_ct([tmp_path / "a"], tmp_path / "out", verbose=False)
    liver[_block(1)] = 2
    _totalseg_case(tmp_path / "b", {"liver": liver})
    with pytest.raises(ValueError, match=r"mask .*b/segmentations/liver.nii.gz is not binary: besides 0 and 2"):
        import_ct([tmp_path / "b"], tmp_path / "out2", verbose=False)


def test_mask_on_another_grid_is_resampled_by_position(tmp_path):
    """A mask stored with its y axis flipped (a different affine) lands on the same physical voxels."""
    liver = np.zeros(SHAPE, np.uint8)
    liver[_block(1)] = 1
    flip = np.diag([1, -1, 1, 1]).astype(float)
    flip[1, 3] = SHAPE[1] - 1
    flipped_affine = AFFINE @ flip  # voxel j of the flipped array is voxel SHAPE[1]-1-j of the image
    root = tmp_path / "case"
    _ct(root / "ct.nii.gz")
    _save(root / "segmentations" / "liver.nii.gz", liver[:, ::-1].copy(), flipped_affine)
    import_ct([root], tmp_path / "out", verbose=False)
    assert np.array_equal(_label(tmp_path / "out", "case") == 1, liver == 1)
    # the same array on the image's affine (an overlay by index) puts the liver in the air: rejected
    (root / "segmentations" / "liver.nii.gz").unlink()
    shifted = np.zeros(SHAPE, np.uint8)
    shifted[0:2, 0:2, :] = 1  # outside the body
    shifted[_block(1)] = 1
    _save(root / "segmentations" / "liver.nii.gz", shifted)
    with pytest.raises(ValueError, match=r"case case: .* of the liver voxels \(liver\) are below -30 HU"):
        import_ct([root], tmp_path / "out2", verbose=False)
    import_ct([root], tmp_path / "out3", verbose=False, check_alignment=False)  # the switch for non-CT images


def test_mask_outside_the_image_is_refused(tmp_path):
    liver = np.zeros(SHAPE, np.uint8)
    liver[_block(1)] = 1
    far = AFFINE.copy()
    far[:3, 3] = 1000.0  # a metre away from the image
    root = tmp_path / "case"
    _ct(root / "ct.nii.gz")
    _save(root / "segmentations" / "liver.nii.gz", liver, far)
    with pytest.raises(ValueError, match=r"mask .*liver.nii.gz lies mostly outside the image"):
        import_ct([root], tmp_path / "out", verbose=False)


def test_no_silent_overwrite_and_the_command(tmp_path, capsys):
    liver = np.zeros(SHAPE, np.uint8)
    liver[_block(1)] = 1
    root = _totalseg_case(tmp_path / "src" / "case1", {"liver": liver})
    assert main([str(root), "--output", str(tmp_path / "out")]) == 0
    assert "[1/1] case1: 40x36x20 voxels of 2x2x3 mm; liver" in capsys.readouterr().out
    assert main([str(root), "--output", str(tmp_path / "out")]) == 1
    assert "dataset.json already exists" in capsys.readouterr().err
    assert main([str(root), "--output", str(tmp_path / "out"), "--overwrite"]) == 0
    assert main([str(tmp_path / "nothing"), "--output", str(tmp_path / "o2")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_validation_cases_and_bundle_datalist(tmp_path):
    liver = np.zeros(SHAPE, np.uint8)
    liver[_block(1)] = 1
    for name in ("c1", "c2"):
        _totalseg_case(tmp_path / "src" / name, {"liver": liver})
    import_ct([tmp_path / "src"], tmp_path / "out", validation=["c2"], verbose=False)
    train, val = train_val_datalists(tmp_path / "out", num_classes=5)
    assert [Path(i["image"]).name for i in train] == ["c1.nii.gz"] and val[0]["annotated"] == [1]
    with pytest.raises(ValueError, match=r"validation case\(s\) \['c3'\] are not among"):
        import_ct([tmp_path / "src"], tmp_path / "o2", validation=["c3"], verbose=False)


# --- real data (../shared/data; skipped when absent) -----------------------------------------------------------------


def _organ_counts(label: np.ndarray) -> dict[int, int]:
    return {v: int((label == v).sum()) for v in range(1, 5)}


def test_real_totalsegmentator_layout(shared_data, tmp_path):
    """The TotalSegmentator example split into a TotalSegmentator-dataset folder: per-organ counts survive."""
    src = shared_data / "totalseg"
    seg = nib.load(str(src / "example_ct_seg_v2.nii.gz"))
    values = np.asanyarray(seg.dataobj)
    case = tmp_path / "s0001"
    (case / "segmentations").mkdir(parents=True)
    shutil.copy(src / "example_ct.nii.gz", case / "ct.nii.gz")
    for name, value in {
        "spleen": 1,
        "kidney_right": 2,
        "kidney_left": 3,
        "liver": 5,
        "pancreas": 7,
        "stomach": 6,
    }.items():
        nib.save(
            nib.Nifti1Image((values == value).astype(np.uint8), seg.affine),
            str(case / "segmentations" / f"{name}.nii.gz"),
        )
    import_ct([case], tmp_path / "out", verbose=False)
    out = _label(tmp_path / "out", "s0001")
    want = {
        1: (values == 5).sum(),
        2: (values == 1).sum(),
        3: ((values == 2) | (values == 3)).sum(),
        4: (values == 7).sum(),
    }
    assert _organ_counts(out) == want and want[4] > 500
    assert _dataset(tmp_path / "out")["training"][0]["annotated"] == [1, 2, 3, 4]
    # a flipped liver mask (left-right) is the control the alignment check must reject
    flipped = (values == 5)[::-1] & ~np.isin(values, [1, 2, 3, 7])  # not overlapping the other organs' masks
    nib.save(nib.Nifti1Image(flipped.astype(np.uint8), seg.affine), str(case / "segmentations" / "liver.nii.gz"))
    with pytest.raises(ValueError, match="of the liver voxels .* looks misaligned"):
        import_ct([case], tmp_path / "out2", verbose=False)


def test_real_dicom_with_flipped_segmentation_is_resampled(shared_data, tmp_path):
    """example_seg_dicom.nii.gz has its y axis flipped relative to the DICOM series: the import resamples it by
    position (organ voxel counts kept, organs in soft tissue), while the same array overlaid by index is refused."""
    series, seg_path = (
        shared_data / "totalseg" / "example_ct_dicom",
        shared_data / "totalseg" / "example_seg_dicom.nii.gz",
    )
    seg = np.asanyarray(nib.load(str(seg_path)).dataobj)
    import_ct(pairs=[(series, seg_path)], output=tmp_path / "out", preset="totalsegmentator_v2", verbose=False)
    out = _label(tmp_path / "out", "example_ct_dicom")
    assert _organ_counts(out) == {1: (seg == 5).sum(), 2: (seg == 1).sum(), 3: 0, 4: (seg == 7).sum()}
    summary = _dataset(tmp_path / "out")["import_summary"]["example_ct_dicom"]
    assert summary["shape"] == [512, 512, 20] and summary["spacing_mm"] == pytest.approx(
        [0.9766, 0.9766, 2.0], abs=1e-3
    )
    assert 60 < summary["organs"]["liver"]["mean_hu"] < 120 and "resampled" in summary["notes"][0]
    image = LoadImage(image_only=True)(str(tmp_path / "out" / "imagesTr" / "example_ct_dicom.nii.gz"))
    by_index = tmp_path / "by_index.nii.gz"
    nib.save(nib.Nifti1Image(seg, np.asarray(image.affine)), str(by_index))
    with pytest.raises(ValueError, match="voxels .* are below -30 HU"):
        import_ct(pairs=[(series, by_index)], output=tmp_path / "out2", preset="totalsegmentator_v2", verbose=False)


@pytest.fixture(scope="module")
def ircad(tmp_path_factory):
    needs_shared_data()
    root = tmp_path_factory.mktemp("ircad")
    for case in ("ircad01", "ircad17"):
        with tarfile.open(SHARED_DATA / f"{case}.tar.gz") as tar:
            tar.extractall(root / "src", filter="data")
    out = root / "dataset"
    import_ct([root / "src"], out, verbose=False)
    return root, out


@pytest.mark.slow
def test_real_ircad_round_trip(ircad):
    root, out = ircad
    data = _dataset(out)
    assert {i["case_id"]: i["annotated"] for i in data["training"]} == {"ircad01": [1, 2, 3], "ircad17": [1]}
    load = LoadImage(image_only=True)
    image = load(str(out / "imagesTr" / "ircad01.nii.gz"))
    label = np.asarray(load(str(out / "labelsTr" / "ircad01.nii.gz")))
    assert image.shape == (512, 512, 129) and np.allclose(image.pixdim[:3], [0.57, 0.57, 1.6], atol=1e-4)
    assert set(np.unique(label)) == {0, 1, 2, 3}
    masks = root / "src" / "ircad01" / "MASKS_DICOM"
    counts = {
        organ: int((np.asarray(load(str(masks / organ))) > 0).sum())
        for organ in ("liver", "spleen", "leftkidney", "rightkidney")
    }
    assert _organ_counts(label) == {
        1: counts["liver"],
        2: counts["spleen"],
        3: counts["leftkidney"] + counts["rightkidney"],
        4: 0,
    }
    liver = data["import_summary"]["ircad01"]["organs"]["liver"]
    assert liver["volume_ml"] == pytest.approx(1490, abs=15) and liver["mean_hu"] == pytest.approx(111, abs=3)
    assert data["import_summary"]["ircad01"]["organs"]["pancreas"]["annotated"] is False
    dicom = load(str(root / "src" / "ircad01" / "PATIENT_DICOM"))
    assert np.array_equal(np.asarray(image), np.asarray(dicom)) and np.allclose(image.affine, dicom.affine)
    assert set(np.unique(_label(out, "ircad17"))) == {0, 1}


@pytest.mark.slow
def test_real_ircad_flipped_mask_is_rejected(ircad, tmp_path):
    root, out = ircad
    label = _label(out, "ircad01").copy()
    liver = label == 1
    label[liver] = 0
    label[liver[::-1]] = 1  # the liver mirrored left-right
    label[(label == 1) & (_label(out, "ircad01") > 1)] = 0  # keep it from overlapping the others
    flipped = _save(tmp_path / "flipped.nii.gz", label, nib.load(str(out / "labelsTr" / "ircad01.nii.gz")).affine)
    with pytest.raises(ValueError, match=r"case PATIENT_DICOM: \d+% of the liver voxels"):
        import_ct(
            pairs=[(root / "src" / "ircad01" / "PATIENT_DICOM", flipped)],
            output=tmp_path / "o",
            preset="monai_ag",
            verbose=False,
        )


@pytest.mark.slow
def test_bundle_trains_on_an_imported_partially_labelled_dataset(tmp_path):
    """--dataset_dir on the importer's output: a fully labelled case for validation, a liver-only one in training.
    The bundle's own training pre-processing carries the liver-only case's annotated classes to the loss, which
    then differs from the loss that treats the case as fully labelled."""
    from monai.bundle import ConfigWorkflow

    full, liver_only = {}, {}
    for i, name in enumerate(("liver", "spleen", "kidney_left", "pancreas")):
        full[name] = np.zeros(SHAPE, np.uint8)
        full[name][_block(i)] = 1
    liver_only["liver"] = full["liver"]
    _totalseg_case(tmp_path / "src" / "full", full)
    _totalseg_case(tmp_path / "src" / "liver_only", liver_only)
    import_ct([tmp_path / "src"], tmp_path / "data", validation=["full"], verbose=False)
    bundle = tmp_path / "bundle"
    shutil.copytree(Path(__file__).resolve().parents[2] / "bundle" / "configs", bundle / "configs")
    wf = ConfigWorkflow(
        config_file=str(bundle / "configs" / "train.json"),
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=str(bundle / "configs" / "logging.conf"),
        workflow_type="train",
        bundle_root=str(bundle),
        dataset_dir=str(tmp_path / "data"),
        spacing=[4.0, 4.0, 4.0],
        patch_size=[16, 16, 16],
        max_epochs=1,
        val_interval=1,
        num_samples=2,
        **{"recipe_defaults#network#channels": [4, 8, 16, 32, 64]},
    )
    wf.initialize()
    parser = wf.parser
    (item,) = parser.get_parsed_content("train#dataset#data")
    assert Path(item["image"]).name.startswith("liver_only") and item["annotated"] == [1]

    samples = parser.get_parsed_content("train#preprocessing")(dict(item))  # the bundle's own training transforms
    target = torch.stack([s["label"] for s in samples]).float()
    assert target.shape[1] == 1 + 5  # the label, then one flag per class
    assert target[:, 1:].amax(dim=(2, 3, 4)).tolist() == [[1, 1, 0, 0, 0]] * len(samples)
    assert target[:, 1:].amin(dim=(2, 3, 4)).tolist() == [[1, 1, 0, 0, 0]] * len(samples)
    network, loss = parser.get_parsed_content("network").train(), parser.get_parsed_content("loss")
    image = torch.stack([s["image"] for s in samples]).float()
    torch.manual_seed(0)
    with torch.no_grad():
        logits = network(image)
        partial = float(loss(logits, target))
        as_if_full = float(loss(logits, target[:, :1]))  # the flags dropped: spleen etc. taught as background
    assert np.isfinite(partial) and abs(partial - as_if_full) > 1e-3

    wf.run()
    trainer = parser.get_parsed_content("train#trainer")
    assert np.isfinite(float(trainer.state.output[0]["loss"]))
    assert (bundle / "models" / "model.pt").is_file()
    wf.finalize()
