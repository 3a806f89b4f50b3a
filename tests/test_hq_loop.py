"""The Siège's round loop turns what waits in its command queue into steps
(``engine.hq_loop.next_steps``): a burst of upload wakes is one step, named commands keep
their order."""

from __future__ import annotations

import queue
import time

from synchro.engine.hq_loop import next_steps


def _queue(*items: str) -> queue.Queue[str]:
    commands: queue.Queue[str] = queue.Queue()
    for item in items:
        commands.put(item)
    return commands


def test_uploads_that_came_during_a_long_step_make_one_step() -> None:
    commands = _queue(*["wake"] * 200)
    assert next_steps(commands, 0.01) == [""]
    assert commands.empty()


def test_named_commands_keep_their_order_and_the_wakes_around_them_a_step_each() -> None:
    commands = _queue("wake", "wake", "sync", "wake", "wake", "stop", "raz")
    assert next_steps(commands, 0.01) == ["", "open", "", "stop", "raz"]


def test_nothing_waiting_is_one_plain_step_after_the_tick() -> None:
    began = time.monotonic()
    assert next_steps(_queue(), 0.05) == [""]
    assert time.monotonic() - began >= 0.04


def test_a_command_alone_is_its_own_step() -> None:
    assert next_steps(_queue("sync"), 0.01) == ["open"]
