"""When the actor pool restarts a dead actor and when it stops the run: a restart cures a
crash mid-run, not an actor that dies at start-up the same way on every start."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from types import SimpleNamespace
from typing import Any

import pytest

from launch.impala.actor_pool import ActorFailure, ActorPool, ActorStartupFailure, PollResult, _Actor
from launch.impala.config import TrainConfig


def error(summary: str, bad_input: bool = False) -> tuple:
    """The message an actor sends before exiting on an exception."""
    return ("error", summary, f"Traceback (most recent call last):\n{summary}\n", bad_input)


UNROLL = ("unroll", 0, [])


class DeadProcess:
    """An actor process that has exited: its sentinel is readable at once."""

    def __init__(self, pid: int, exitcode: int) -> None:
        self.pid = pid
        self.exitcode = exitcode
        self.sentinel, write_end = os.pipe()
        os.close(write_end)

    def join(self, timeout: float | None = None) -> None:
        pass

    def kill(self) -> None:
        raise AssertionError("the pool killed an actor that had exited")

    def close(self) -> None:
        os.close(self.sentinel)


class OneActorPool:
    """An ``ActorPool`` of one actor whose starts are recorded instead of spawned; ``die``
    plays one start of the actor: the messages it sent, then its death."""

    def __init__(self, max_actor_restarts: int = 20) -> None:
        self.lines: list[str] = []
        self.starts: list[int] = []
        config = TrainConfig(num_actors=1, max_actor_restarts=max_actor_restarts)
        self.pool = ActorPool(None, config, SimpleNamespace(num_buffers=2), None, per_actor=2, log=self.lines.append)
        self.pool._spawn = self.starts.append  # type: ignore[method-assign]

    def die(self, *messages: tuple, exitcode: int = 1) -> PollResult:
        learner_end, actor_end = multiprocessing.Pipe()
        for message in messages:
            actor_end.send(message)
        actor_end.close()
        process = DeadProcess(pid=1000 + len(self.starts), exitcode=exitcode)
        self.pool.actors[0] = _Actor(0, process, learner_end, time.monotonic())
        try:
            return self.pool.poll(timeout=5.0)
        finally:
            process.close()


@pytest.mark.parametrize("bad_input", [False, True])
def test_the_same_error_before_the_first_unroll_twice_stops_at_once(bad_input: bool) -> None:
    actors = OneActorPool()
    assert actors.die(error("TypeError: reset(): incompatible function arguments", bad_input)).replaced == 1
    assert actors.starts == [0]
    with pytest.raises(ActorStartupFailure) as caught:
        actors.die(error("TypeError: reset(): incompatible function arguments", bad_input))
    assert caught.value.actor == 0
    assert caught.value.error == "TypeError: reset(): incompatible function arguments"
    assert caught.value.bad_input is bad_input
    assert str(caught.value).endswith("cannot help: TypeError: reset(): incompatible function arguments")
    assert actors.starts == [0] and actors.pool.restarts == 1  # not started a third time
    assert "not replacing it" in actors.lines[-1]


def test_an_actor_that_worked_or_failed_differently_is_restarted() -> None:
    actors = OneActorPool()
    actors.die(error("RuntimeError: first"))
    actors.die(error("RuntimeError: second"))  # another error: it may be transient
    actors.die(UNROLL, error("RuntimeError: second"))  # it worked, then crashed
    actors.die(error("RuntimeError: second"))  # the start before had worked
    assert actors.starts == [0, 0, 0, 0] and actors.pool.restarts == 4
    with pytest.raises(ActorStartupFailure, match="RuntimeError: second"):
        actors.die(error("RuntimeError: second"))


def test_sigkill_is_restarted_and_a_repeated_crash_by_signal_stops() -> None:
    actors = OneActorPool()
    actors.die(exitcode=-signal.SIGKILL)  # the pool's hang check or the OOM killer: not the env's fault
    actors.die(exitcode=-signal.SIGKILL)
    actors.die(exitcode=-signal.SIGSEGV)
    assert actors.pool.restarts == 3
    with pytest.raises(ActorStartupFailure) as caught:
        actors.die(exitcode=-signal.SIGSEGV)
    assert caught.value.error == "the actor process was killed by SIGSEGV"
    assert caught.value.bad_input is False


def test_max_actor_restarts_still_bounds_failures_that_differ() -> None:
    actors = OneActorPool(max_actor_restarts=2)
    actors.die(error("RuntimeError: 1"))
    actors.die(UNROLL, error("RuntimeError: 1"))
    with pytest.raises(ActorFailure, match="actors died 3 times") as caught:
        actors.die(error("RuntimeError: 1"))
    assert not isinstance(caught.value, ActorStartupFailure)


class TestRayActorPoolStartup:
    """The Ray pool's rule is the local pool's: the same start-up error twice in a row stops
    the run with the actor's error; anything else is restarted."""

    @staticmethod
    def pool() -> tuple[Any, list[str]]:
        from launch.impala.ray_pool import RayActorPool

        lines: list[str] = []
        config = TrainConfig(backend="ray", num_actors=2, max_actor_restarts=20)
        pool = RayActorPool(config, SimpleNamespace(num_buffers=2), {}, log=lines.append)
        pool.ray = SimpleNamespace(kill=lambda *args, **kwargs: None)
        return pool, lines

    @staticmethod
    def member(index: int) -> Any:
        from launch.impala.ray_pool import _Member

        return _Member(index, handle=None, placement_ref=None)

    def test_the_same_startup_error_twice_stops_the_run(self) -> None:
        pool, lines = self.pool()
        error = "EnvConfigError: unknown env id 'nope'"
        pool._remove(self.member(0), f"raised an exception: {error}", None, PollResult(), error)
        assert pool.restarts == 1 and pool.members[0] is None
        with pytest.raises(ActorStartupFailure) as failure:
            pool._remove(self.member(0), f"raised an exception: {error}", None, PollResult(), error)
        assert failure.value.bad_input and "unknown env id 'nope'" in str(failure.value)
        assert "not replacing it" in lines[-1]

    def test_other_failures_are_restarted(self) -> None:
        pool, _ = self.pool()
        pool._remove(self.member(0), "raised an exception: RuntimeError: a", None, PollResult(), "RuntimeError: a")
        pool._remove(self.member(0), "raised an exception: RuntimeError: b", None, PollResult(), "RuntimeError: b")
        pool._remove(self.member(0), "died after its first unroll", None, PollResult(), None)
        pool._remove(self.member(0), "raised an exception: RuntimeError: b", None, PollResult(), "RuntimeError: b")
        pool._remove(self.member(1), "raised an exception: RuntimeError: b", None, PollResult(), "RuntimeError: b")
        assert pool.restarts == 5
