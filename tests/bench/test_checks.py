from __future__ import annotations

import pytest
import torch

from monai_ag.bench.checks import compare_logits


def test_identical_logits_agree_everywhere():
    b = torch.randn(2, 3, 4, 5)
    c = compare_logits(b.clone(), b)
    assert c["max_abs_diff"] == 0.0 and c["argmax_mismatches"] == 0 and c["argmax_agreement"] == 1.0
    assert c["largest_top2_gap_at_mismatches"] is None and c["voxels"] == 2 * 4 * 5


def test_a_mismatch_reports_the_reference_top2_gap():
    b = torch.zeros(1, 2, 2, 1)
    b[0, 0] = torch.tensor([[1.0], [0.3]])  # class 0 wins by 1.0 and by 0.3
    a = b.clone()
    a[0, 1, 1, 0] = 0.5  # flips the argmax of the near-tie voxel
    c = compare_logits(a, b)
    assert c["argmax_mismatches"] == 1 and c["argmax_agreement"] == pytest.approx(0.5)
    assert c["largest_top2_gap_at_mismatches"] == pytest.approx(0.3)
    assert c["max_abs_diff"] == pytest.approx(0.5) and c["max_abs_logit"] == pytest.approx(1.0)
