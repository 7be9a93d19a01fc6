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


# --- a schedule that ends where the budget ends ----------------------------------------------------------------

from monai_ag.optimizers import WarmupCosineFactor  # noqa: E402


def test_budget_becomes_an_iteration_count_and_the_run_stops_there(clock, caplog):
    """One minute per iteration (the fake clock), a 30-minute budget: the timed iterations 3-6 give 1 min each, so
    the schedule ends at iteration 6 + 24 = 30; with 4 iterations per epoch the run stops after epoch 8."""
    trainer = Engine(lambda e, b: None)

    @trainer.on(Events.ITERATION_COMPLETED)
    def _tick(_):
        clock.now += 60.0

    validator = _Validator()
    schedule = WarmupCosineFactor(warmup_iterations=2, floor=0.0)
    handler = TrainingTimeLimit(
        minutes=30.5, validator=validator, schedule=schedule, skip_iterations=2, calibration_iterations=4
    )
    handler.attach(trainer)
    with caplog.at_level("INFO", logger="monai_ag.handlers.time_limit"):
        trainer.run(range(4), max_epochs=100)
    assert schedule.total_iterations == handler.total_iterations == 30
    assert trainer.state.iteration == 32 and trainer.state.epoch == 8 and validator.runs == [8]
    assert "the schedule ends at iteration 30" in caplog.text
    assert schedule(30) == pytest.approx(0.0) and schedule(2) == pytest.approx(1.0)


def test_a_restored_schedule_length_is_kept_and_the_clock_stays_a_ceiling(clock, caplog):
    """A resumed run continues to the length saved with its scheduler (no new timing); the wall clock still stops a
    run that has not reached it, with a warning."""
    trainer = _trainer(clock)  # one minute per iteration
    schedule = WarmupCosineFactor(warmup_iterations=0, total_iterations=1000)
    TrainingTimeLimit(minutes=3, schedule=schedule).attach(trainer)
    with caplog.at_level("WARNING", logger="monai_ag.handlers.time_limit"):
        trainer.run(range(2), max_epochs=100)
    assert schedule.total_iterations == 1000 and trainer.state.iteration == 4
    assert "before the schedule's end (1000): the learning rate did not reach its floor" in caplog.text


def test_without_a_budget_the_schedule_spans_max_epochs(clock):
    trainer = _trainer(clock)
    schedule = WarmupCosineFactor(warmup_iterations=1)
    TrainingTimeLimit(schedule=schedule).attach(trainer)
    trainer.run(range(3), max_epochs=5)
    assert schedule.total_iterations == 15 and trainer.state.epoch == 5


def test_the_timed_length_is_rank_0s_under_torchrun(clock, monkeypatch):
    monkeypatch.setattr(time_limit.dist, "is_available", lambda: True)
    monkeypatch.setattr(time_limit.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(time_limit.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(time_limit.dist, "broadcast_object_list", lambda box, src: box.__setitem__(0, 12))
    trainer = _trainer(clock)
    schedule = WarmupCosineFactor(warmup_iterations=0)
    TrainingTimeLimit(minutes=50, schedule=schedule, skip_iterations=1, calibration_iterations=1).attach(trainer)
    trainer.run(range(2), max_epochs=100)
    assert schedule.total_iterations == 12 and trainer.state.iteration == 12


def test_bad_timing_arguments_are_refused():
    with pytest.raises(ValueError, match="calibration_iterations >= 1, got 5 and 0"):
        TrainingTimeLimit(minutes=1, skip_iterations=5, calibration_iterations=0)
