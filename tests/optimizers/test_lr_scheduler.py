from __future__ import annotations

import math

import pytest
import torch

from monai_ag.optimizers import WarmupCosineFactor


def test_warmup_then_cosine_to_the_floor():
    f = WarmupCosineFactor(warmup_iterations=10, floor=0.1, warmup_start=0.0, total_iterations=110)
    assert [f(i) for i in (0, 5, 10)] == pytest.approx([0.0, 0.5, 1.0])
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)


def test_length_set_later_and_kept_in_the_scheduler_state():
    f = WarmupCosineFactor(warmup_iterations=2, floor=0.0)
    assert f(50) == 1.0  # length unknown: no decay yet
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, f)
    f.total_iterations = 12
    state = scheduler.state_dict()
    g = WarmupCosineFactor(warmup_iterations=2, floor=0.0)
    torch.optim.lr_scheduler.LambdaLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), g).load_state_dict(
        state
    )
    assert g.total_iterations == 12 and g(12) == pytest.approx(0.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="warmup_iterations must be >= 0"):
        WarmupCosineFactor(warmup_iterations=-1)
    with pytest.raises(ValueError, match="floor and warmup_start must be in"):
        WarmupCosineFactor(floor=2.0)
