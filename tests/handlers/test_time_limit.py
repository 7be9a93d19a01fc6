from __future__ import annotations

import pytest
from ignite.engine import Engine, Events, State

import monai_ag.handlers.time_limit as time_limit
from monai_ag.handlers import TrainingTimeLimit


class _Clock:
    """A fake ``time.perf_counter`` that advances one minute per training iteration."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Validator:
    def __init__(self) -> None:
        self.state = State()
        self.state.epoch = 0
        self.runs: list[int] = []

    def run(self, epoch: int) -> None:
        self.runs.append(epoch)
        self.state.epoch = epoch


def _trainer(clock: _Clock) -> Engine:
    engine = Engine(lambda e, b: None)

    @engine.on(Events.ITERATION_COMPLETED)
    def _tick(_):
        clock.now += 60.0

    return engine


@pytest.fixture
def clock(monkeypatch):
    c = _Clock()
    monkeypatch.setattr(time_limit.time, "perf_counter", c)
    return c


def test_stops_at_the_first_epoch_end_past_the_budget_and_validates(clock):
    trainer = _trainer(clock)
    validator = _Validator()
    handler = TrainingTimeLimit(minutes=3, validator=validator)
    handler.attach(trainer)
    trainer.run(range(2), max_epochs=10)
    # 2 minutes per epoch: 2 < 3 after epoch 1, 4 >= 3 after epoch 2
    assert trainer.state.epoch == 2 and trainer.state.iteration == 4
    assert validator.runs == [2]
    assert handler.elapsed_minutes() == pytest.approx(4.0)


def test_an_epoch_already_validated_is_not_validated_again(clock):
    trainer = _trainer(clock)
    validator = _Validator()

    @trainer.on(Events.EPOCH_COMPLETED)
    def _validation_handler(engine):  # attached first, like the bundle's ValidationHandler
        validator.run(engine.state.epoch)

    TrainingTimeLimit(minutes=1, validator=validator).attach(trainer)
    trainer.run(range(2), max_epochs=10)
    assert trainer.state.epoch == 1
    assert validator.runs == [1]


@pytest.mark.parametrize("minutes", [None, 0])
def test_no_budget_runs_every_epoch_and_validates_the_last(clock, minutes):
    """A short round (5 epochs, validation every 10) still ends with its final weights validated."""
    trainer = _trainer(clock)
    validator = _Validator()
    TrainingTimeLimit(minutes=minutes, validator=validator).attach(trainer)
    trainer.run(range(2), max_epochs=5)
    assert trainer.state.epoch == 5 and validator.runs == [5]


def test_last_epoch_already_validated_is_not_validated_again(clock):
    trainer = _trainer(clock)
    validator = _Validator()

    @trainer.on(Events.EPOCH_COMPLETED(every=2))
    def _validation_handler(engine):  # val_interval 2, max_epochs 4: the last epoch is a validation epoch
        validator.run(engine.state.epoch)

    TrainingTimeLimit(validator=validator).attach(trainer)
    trainer.run(range(2), max_epochs=4)
    assert validator.runs == [2, 4]


def test_last_epoch_validation_can_be_switched_off(clock):
    trainer = _trainer(clock)
    validator = _Validator()
    TrainingTimeLimit(validator=validator, validate_last_epoch=False).attach(trainer)
    trainer.run(range(2), max_epochs=3)
    assert trainer.state.epoch == 3 and validator.runs == []


def test_negative_budget_is_refused():
    with pytest.raises(ValueError, match="minutes must be None or >= 0, got -1"):
        TrainingTimeLimit(minutes=-1)
