from __future__ import annotations

import pytest
import torch
from monai.losses import DeepSupervisionLoss, DiceCELoss

from monai_ag.losses import PartialLabelLoss, encode_annotated, split_target
from monai_ag.transforms import AnnotatedClassesd

C = 5


def _plain(**kw):
    return DiceCELoss(to_onehot_y=True, softmax=True, **kw)


def _case(annotated, shape=(12, 10, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    label = torch.zeros(1, *shape)
    present = [c for c in (annotated if annotated is not None else range(1, C)) if c]
    for i, c in enumerate(present):  # a block of each annotated class
        label[:, 2 * i : 2 * i + 3, 2:6, 1:5] = c
    logits = torch.randn(C, *shape, generator=g)
    return logits, label


@pytest.mark.parametrize("batch", [True, False])
def test_fully_annotated_equals_plain_loss(batch):
    logits, label = _case(None)
    pred = logits[None].clone().requires_grad_(True)
    ref = logits[None].clone().requires_grad_(True)
    got = PartialLabelLoss(_plain(batch=batch), C)(pred, encode_annotated(label, None, C)[None])
    want = _plain(batch=batch)(ref, label[None])
    assert torch.equal(got, want)
    got.backward(), want.backward()
    assert torch.equal(pred.grad, ref.grad)
    # the explicit list of every class and a plain one-channel label are the same
    assert torch.equal(
        PartialLabelLoss(_plain(batch=batch), C)(ref, encode_annotated(label, [1, 2, 3, 4], C)[None]), want
    )
    assert torch.equal(PartialLabelLoss(_plain(batch=batch), C)(ref, label[None]), want)


@pytest.mark.parametrize("batch", [True, False])
def test_unannotated_classes_get_zero_gradient_annotated_the_plain_one(batch):
    annotated = [1, 3]
    logits, label = _case(annotated)
    pred = logits[None].clone().requires_grad_(True)
    loss = PartialLabelLoss(_plain(batch=batch), C)(pred, encode_annotated(label, annotated, C)[None])
    loss.backward()
    for c in (2, 4):
        assert torch.count_nonzero(pred.grad[:, c]) == 0, f"class {c} is not annotated but got a gradient"
    # the annotated classes: the plain loss on the restricted problem (background, liver, kidney -> 0, 1, 2)
    keep = [0, 1, 3]
    ref = logits[None][:, keep].clone().requires_grad_(True)
    renumbered = torch.zeros_like(label)
    renumbered[label == 1], renumbered[label == 3] = 1, 2
    want = _plain(batch=batch)(ref, renumbered[None])
    want.backward()
    torch.testing.assert_close(loss, want, rtol=0, atol=0)
    torch.testing.assert_close(pred.grad[:, keep], ref.grad, rtol=0, atol=0)
    assert torch.count_nonzero(pred.grad[:, keep]) > 0
    # and it is not the plain loss, which teaches background where the spleen might be
    assert not torch.allclose(loss, _plain(batch=batch)(logits[None], label[None]))


def test_mixed_batch_is_the_size_weighted_mean_of_groups():
    (l0, y0), (l1, y1), (l2, y2) = _case(None, seed=1), _case([1], seed=2), _case([1], seed=3)
    target = torch.stack([encode_annotated(y0, None, C), encode_annotated(y1, [1], C), encode_annotated(y2, [1], C)])
    pred = torch.stack([l0, l1, l2])
    got = PartialLabelLoss(_plain(batch=True), C)(pred, target)
    full = _plain(batch=True)(l0[None], y0[None])
    liver_only = _plain(batch=True)(torch.stack([l1, l2])[:, [0, 1]], torch.stack([y1, y2]))
    torch.testing.assert_close(got, full / 3 + liver_only * 2 / 3)


def test_deep_supervision_resizes_the_flags_with_the_label():
    annotated = [2]
    logits, label = _case(annotated, shape=(16, 16, 8))
    target = encode_annotated(label, annotated, C)[None]
    coarse = torch.randn(1, C, 8, 8, 4, requires_grad=True)
    full = logits[None].clone().requires_grad_(True)
    loss = DeepSupervisionLoss(PartialLabelLoss(_plain(batch=True), C))([full, coarse], target)
    loss.backward()
    for grad in (full.grad, coarse.grad):
        assert torch.count_nonzero(grad[:, [1, 3, 4]]) == 0
        assert torch.count_nonzero(grad[:, [0, 2]]) > 0


def test_label_of_an_unannotated_class_is_an_error():
    logits, label = _case([1, 3])
    with pytest.raises(ValueError, match=r"class\(es\) \[3.0\] that its case marks as not annotated"):
        PartialLabelLoss(_plain(), C)(logits[None], encode_annotated(label, [1], C)[None])


def test_bad_shapes_and_classes():
    logits, label = _case(None)
    with pytest.raises(ValueError, match="expected 1 .* or 1 \\+ num_classes = 6"):
        PartialLabelLoss(_plain(), C)(logits[None], torch.zeros(1, 3, *label.shape[1:]))
    with pytest.raises(ValueError, match="input has 5 channels, expected num_classes=4"):
        PartialLabelLoss(_plain(), 4)(logits[None], label[None])
    with pytest.raises(ValueError, match=r"annotated class 7 is outside \[0, 5\)"):
        encode_annotated(label, [7], C)


def test_transform_encodes_and_drops_the_list():
    label = torch.zeros(1, 4, 4, 4)
    out = AnnotatedClassesd("label", num_classes=C)({"label": label, "annotated": [1, 3]})
    assert "annotated" not in out
    assert out["label"].shape == (1 + C, 4, 4, 4)
    assert out["label"][1:, 0, 0, 0].tolist() == [1, 1, 0, 1, 0]
    _, annotated = split_target(out["label"][None], C)
    assert annotated.tolist() == [[True, True, False, True, False]]
    full = AnnotatedClassesd("label", num_classes=C)({"label": label})
    assert full["label"][1:].amin() == 1
