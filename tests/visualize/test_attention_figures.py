from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")
from monai_ag.visualize.attention import attention_figure, figure_to_array, main, split_levels  # noqa: E402

SHAPE = (32, 28, 20)
AFFINE = np.diag([2.0, 2.0, 3.0, 1.0])


def _write(path, array):
    nib.save(nib.Nifti1Image(array, AFFINE), str(path))
    return str(path)


def _case(tmp_path, attention):
    ct = np.full(SHAPE, -1000, np.int16)
    ct[3:29, 4:24] = 40
    label = np.zeros(SHAPE, np.uint8)
    label[8:16, 8:16, 6:14] = 1
    label[20:24, 10:14, 8:12] = 3
    return (
        _write(tmp_path / "ct.nii.gz", ct),
        _write(tmp_path / "label.nii.gz", label),
        _write(tmp_path / "att.nii.gz", attention),
    )


def _png_pixels(path):
    import matplotlib.image

    return matplotlib.image.imread(str(path))[..., :3]


def test_command_writes_a_png_whose_overlay_follows_the_attention(tmp_path):
    x = np.linspace(0, 1, SHAPE[0], dtype=np.float32)[:, None, None] * np.ones(SHAPE, np.float32)
    ramps = np.stack([x, x, 1 - x, 1 - x, x * 0.5, x * 0.5], -1)  # 3 levels x 2 heads
    paths = []
    for name, att in (("a", ramps), ("b", np.zeros_like(ramps)), ("c", np.ones_like(ramps))):
        (tmp_path / name).mkdir()
        ct, label, att_path = _case(tmp_path / name, att)
        out = tmp_path / name / "fig.png"
        assert main(["--image", ct, "--attention", att_path, "--label", label, "--output", str(out)]) == 0
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        paths.append(out)
    a, b, c = (_png_pixels(p) for p in paths)
    assert a.shape == b.shape == c.shape
    # everything but the overlay is the same; the overlay changes the picture where attention differs
    assert np.abs(b - c).mean() > 0.02 and np.abs(a - b).mean() > 0.01 and np.abs(a - c).mean() > 0.01
    # rendering the same values twice gives the same picture
    ct, label, att_path = _case(tmp_path, np.zeros_like(ramps))
    assert (
        main(["--image", ct, "--attention", att_path, "--label", label, "--output", str(tmp_path / "again.png")]) == 0
    )
    assert np.array_equal(_png_pixels(tmp_path / "again.png"), b)


def test_figure_rows_levels_and_checks():
    image = np.zeros(SHAPE, np.float32)
    maps = [np.full(SHAPE, v, np.float32) for v in (0.1, 0.5, 0.9)]
    fig = attention_figure(image, maps, window=(0, 1))
    assert [ax.get_title() for ax in fig.axes[:2]] == ["level 2, axial (z=10)", "level 2, coronal (y=14)"]
    assert len(fig.axes) == 7  # 3 levels x (axial, coronal) + the colour bar
    picture = figure_to_array(fig)
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    with pytest.raises(ValueError, match=r"attention map 1 has shape \(2, 2, 2\)"):
        attention_figure(image, [maps[0], np.zeros((2, 2, 2))])
    with pytest.raises(ValueError, match="do not split into levels of 2 head"):
        split_levels(np.zeros((*SHAPE, 3)), heads=2)
    assert [float(m.mean()) for m in split_levels(np.stack([m for m in maps for _ in (0, 1)], -1), 2)] == pytest.approx(
        [0.1, 0.5, 0.9]
    )


def test_handler_logs_an_image_per_validation(tmp_path):
    from ignite.engine import Engine
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from monai_ag.handlers import AttentionImageHandler
    from monai_ag.networks.nets import GridAttentionUNet

    net = GridAttentionUNet(3, 1, 5, channels=(4, 8, 16, 32, 64), strides=(2, 2, 2, 2))
    image = torch.rand(1, 1, 40, 36, 28)
    label = torch.zeros(1, 1, 40, 36, 28)
    label[:, :, 10:20, 10:20, 10:20] = 1
    evaluator = Engine(lambda engine, batch: None)
    handler = AttentionImageHandler(net, log_dir=str(tmp_path / "tb"), roi_size=(32, 32, 16))
    handler.attach(evaluator)
    net.train()
    for epoch in (1, 2):
        evaluator.state.epoch = epoch - 1  # what monai's Evaluator.run(global_epoch) does
        evaluator.run([{"image": image, "label": label}] * 2, max_epochs=epoch)
    assert net.training  # the network's mode is restored
    handler.close()
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"images": 0})
    events.Reload()
    images = events.Images("attention")
    assert [i.step for i in images] == [1, 2]  # one picture per validation, at the trainer's epoch
    assert images[0].width > 300 and images[0].height > 300


def test_handler_does_nothing_for_a_network_without_attention_maps(tmp_path, caplog):
    from ignite.engine import Engine
    from monai.networks.nets import UNet

    from monai_ag.handlers import AttentionImageHandler

    evaluator = Engine(lambda engine, batch: None)
    net = UNet(3, 1, 5, channels=(4, 8), strides=(2,))
    AttentionImageHandler(net, log_dir=str(tmp_path / "tb")).attach(evaluator)
    evaluator.run([{"image": torch.rand(1, 1, 8, 8, 8)}], max_epochs=2)
    assert "has no attention_maps()" in caplog.text and not (tmp_path / "tb").exists()
