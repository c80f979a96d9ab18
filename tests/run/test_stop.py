"""StopRequest: SIGINT (and a free SIGTERM) ask for a stop at the epoch's end; a second signal stops at once."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest

from transferlab.errors import RunInterrupted
from transferlab.run.stop import StopAtEpochEnd, StopRequest


def test_the_first_signal_asks_the_second_stops_and_handlers_come_back(capsys):
    before = signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.signum == signal.SIGINT
        assert "stopping after this epoch" in capsys.readouterr().err
        with pytest.raises(RunInterrupted) as info:
            os.kill(os.getpid(), signal.SIGINT)
        assert info.value.exit_code == 130 and "second SIGINT" in info.value.message
    assert signal.getsignal(signal.SIGINT) is before, "the previous handler is back after the run"


def test_a_sigterm_handler_of_a_launcher_stays_in_charge():
    # submitit (hydra/launcher=slurm) handles SIGTERM itself for SLURM preemption and requeue
    calls = []

    def launcher_handler(signum, frame):
        calls.append(signum)

    previous = signal.signal(signal.SIGTERM, launcher_handler)
    try:
        with StopRequest() as stop:
            assert signal.getsignal(signal.SIGTERM) is launcher_handler
            os.kill(os.getpid(), signal.SIGTERM)
            assert calls == [signal.SIGTERM] and not stop.requested
        assert signal.getsignal(signal.SIGTERM) is launcher_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_free_sigterm_is_taken_and_the_exit_code_is_143():
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with StopRequest() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.signum == signal.SIGTERM
            assert RunInterrupted(stop.signum).exit_code == 143
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_callback_ends_the_fit_after_the_epoch_of_the_request():
    stop = StopRequest()
    callback = StopAtEpochEnd(stop)
    trainer = SimpleNamespace(world_size=1, should_stop=False)
    callback.on_train_epoch_end(trainer, None)
    assert trainer.should_stop is False, "no request: the fit goes on"
    stop.signum = signal.SIGINT
    callback.on_train_epoch_end(trainer, None)
    assert trainer.should_stop is True, "set before the checkpoint callbacks run, so the epoch is written"
