from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.data.image_writer import NibabelWriter

from monai_ag.transforms import SafeSaveImaged, restore_background


def _item(tmp_path):
    affine = torch.diag(torch.tensor([2.0, 2.0, 3.0, 1.0]))
    img = MetaTensor(torch.arange(4 * 5 * 6, dtype=torch.float32).reshape(1, 4, 5, 6), affine=affine)
    img.meta["filename_or_obj"] = str(tmp_path / "case_01.nii.gz")
    return {"pred": img}


def test_writes_atomically_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "out"
    save = SafeSaveImaged(
        "pred", output_dir=str(out), output_postfix="seg", separate_folder=False, output_dtype=np.uint8
    )
    save(_item(tmp_path))
    final = out / "case_01_seg.nii.gz"
    written = nib.load(str(final))
    assert written.shape == (4, 5, 6) and written.get_data_dtype() == np.uint8
    np.testing.assert_allclose(written.affine, np.diag([2.0, 2.0, 3.0, 1.0]))
    assert sorted(p.name for p in out.iterdir()) == ["case_01_seg.nii.gz"]
    with pytest.raises(FileExistsError, match="case_01_seg.nii.gz already exists.*overwrite"):
        save(_item(tmp_path))
    again = SafeSaveImaged("pred", output_dir=str(out), output_postfix="seg", separate_folder=False, overwrite="true")
    again(_item(tmp_path))  # the bundle passes command-line flags as strings
    assert final.is_file()


def test_interrupted_write_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    out = tmp_path / "out"

    def broken_write(self, filename, *args, **kwargs):
        with open(filename, "wb") as f:  # half a file, then the process is interrupted
            f.write(b"\x1f\x8b partial")
        raise KeyboardInterrupt("interrupted while writing")

    monkeypatch.setattr(NibabelWriter, "write", broken_write)
    save = SafeSaveImaged("pred", output_dir=str(out), output_postfix="seg", separate_folder=False)
    with pytest.raises(BaseException, match="interrupted while writing|cannot find a suitable writer"):
        save(_item(tmp_path))
    assert not (out / "case_01_seg.nii.gz").exists()
    assert list(out.iterdir()) == []


def test_bad_overwrite_flag():
    with pytest.raises(ValueError, match="overwrite must be true or false, got 'maybe'"):
        SafeSaveImaged("pred", output_dir=".", overwrite="maybe")


def test_restore_background():
    probs = torch.zeros(3, 2, 2)
    probs[:, 0, 0] = torch.tensor([0.2, 0.5, 0.3])  # inside the crop: unchanged
    out = restore_background(probs)  # outside (all zero after inverting a crop): background 1
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([0.2, 0.5, 0.3]))
    torch.testing.assert_close(out[:, 1, 1], torch.tensor([1.0, 0.0, 0.0]))
    assert probs[0, 1, 1] == 0  # the input is not modified


@pytest.mark.parametrize(
    "args,kwargs",
    [
        ((), {}),
        (
            (),
            dict(
                output_dir="o",
                output_postfix="p",
                output_ext=".nrrd",
                resample=True,
                mode="bilinear",
                scale=255,
                dtype=np.float32,
                output_dtype=np.uint8,
                squeeze_end_dims=False,
                data_root_dir="/d",
                separate_folder=False,
                print_log=False,
                savepath_in_metadict=True,
            ),
        ),
        ((None, "meta", "o2", "post", ".nii"), dict(separate_folder=False)),  # positional, as SaveImaged takes them
    ],
)
def test_saver_gets_every_saveimaged_option(args, kwargs):
    from monai.transforms import SaveImaged

    from monai_ag.transforms.io import SafeSaveImage

    ours = SafeSaveImaged("pred", *args, **kwargs).saver
    stock = SaveImaged("pred", *args, **kwargs).saver
    assert type(ours) is SafeSaveImage and ours.overwrite is False
    for attr in ("output_ext", "init_kwargs", "data_kwargs", "meta_kwargs", "write_kwargs", "savepath_in_metadict"):
        assert getattr(ours, attr) == getattr(stock, attr), attr
    assert vars(ours.folder_layout) == vars(stock.folder_layout)
    assert ours.writers == stock.writers


def test_savepath_in_metadict_names_the_final_file(tmp_path):
    save = SafeSaveImaged("pred", output_dir=str(tmp_path), output_postfix="seg", savepath_in_metadict=True)
    out = save(_item(tmp_path))
    assert out["pred"].meta["saved_to"] == str(tmp_path / "case_01" / "case_01_seg.nii.gz")
    assert sorted(p.name for p in (tmp_path / "case_01").iterdir()) == ["case_01_seg.nii.gz"]
