"""WeightAveraging: the equal average of the weights after the start point, batch-norm statistics recomputed."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine

from monai_ag.handlers import WeightAveraging
from monai_ag.optimizers import WarmupCosineFactor


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(1, 2, 1), torch.nn.BatchNorm3d(2))


def _trainer(net: torch.nn.Module, snapshots: list) -> Engine:
    """Each iteration adds 1 to every parameter and records them (the average is then known exactly)."""

    def step(engine, batch):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(1.0)
            net.train()
            net(batch["image"])  # moves the live batch-norm statistics
        snapshots.append([p.detach().clone() for p in net.parameters()])

    return Engine(step)


def _data(n: int = 3) -> list[dict]:
    torch.manual_seed(1)
    return [{"image": torch.randn(2, 1, 4, 4, 4) * 3 + 5} for _ in range(n)]


def test_average_of_the_late_iterations_with_recomputed_batch_norm():
    net, snapshots = _net(), []
    trainer = _trainer(net, snapshots)
    averaging = WeightAveraging(net, start_fraction=0.5, bn_batches=6)
    averaging.attach(trainer)
    data = _data()
    trainer.run(data, max_epochs=4)  # 12 iterations: averaged after iteration 6
    late = snapshots[6:]
    for i, p in enumerate(averaging.averaged_network.parameters()):
        torch.testing.assert_close(p, torch.stack([s[i] for s in late]).mean(0))
    assert int(averaging.averaged.n_averaged) == 6
    # the statistics of the averaged network: the inputs' moments through its own convolution, 6 batches (2 passes)
    bn = averaging.averaged_network[1]
    conv = averaging.averaged_network[0]
    with torch.no_grad():
        out = torch.cat([conv(d["image"]) for d in data + data])
    torch.testing.assert_close(bn.running_mean, out.mean(dim=(0, 2, 3, 4)), rtol=1e-4, atol=1e-5)
    assert bn.momentum == 0.1  # restored after the cumulative average


def test_start_follows_the_schedule_length_and_state_round_trips():
    net, snapshots = _net(), []
    trainer = _trainer(net, snapshots)
    schedule = WarmupCosineFactor(warmup_iterations=0, total_iterations=4)
    averaging = WeightAveraging(net, start_fraction=0.5, schedule=schedule)
    assert averaging.start_iteration(type("E", (), {"state": None})()) == 2
    averaging.attach(trainer)
    trainer.run(_data(), max_epochs=2)  # 6 iterations; averaged after iteration 2 (half of the schedule's 4)
    assert int(averaging.averaged.n_averaged) == 4
    other = WeightAveraging(_net(), start_fraction=0.5)
    other.load_state_dict(averaging.state_dict())
    for a, b in zip(other.averaged_network.state_dict().values(), averaging.averaged_network.state_dict().values()):
        assert torch.equal(a, b)


def test_disabled_is_a_no_op_and_gives_the_live_network():
    net, snapshots = _net(), []
    trainer = _trainer(net, snapshots)
    averaging = WeightAveraging(net, enabled="false")
    averaging.attach(trainer)
    trainer.run(_data(), max_epochs=1)
    assert averaging.averaged is None and averaging.averaged_network is net and averaging.state_dict() == {}


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"start_fraction must be in \[0, 1\), got 1"):
        WeightAveraging(_net(), start_fraction=1)
    with pytest.raises(ValueError, match="weight_averaging must be true or false"):
        WeightAveraging(_net(), enabled="sometimes")
