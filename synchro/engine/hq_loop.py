"""The Siège's round loop between two steps: what waits in its command queue, as steps.

The loop (``HQService.run``) gets ``sync`` (MANUELLE), ``stop`` (ARRETER), ``raz`` (RAZ) from
the tray, the CLI and the service, and ``wake`` from the FTP server after every upload.
"""

from __future__ import annotations

import queue

# the loop's words -> step()'s ("scheduled": the hour came while the node could not open)
COMMANDS = {
    "sync": "open",
    "take-back": "open-take-back",  # MANUELLE after a restore: the group's data taken back
    "send": "open-send",  # or Envoyer: the restored database sent as it is
    "scheduled": "open-scheduled",
    "stop": "stop",
    "raz": "raz",
}
TICK_S = 1.0
"""A step with nothing in the queue, for what only time brings (*Temps maximum de
réception* run out, acks overdue, *Heure de départ*). Uploads and commands wake the loop at
once. A step looks at every establishment (4 ms at 200): at 0.2 s, 356 steps in a round of
200 cost the Siège 1.5 s of CPU, growing as sites × round length."""


def next_steps(commands: queue.Queue[str], tick_s: float) -> list[str]:
    """The steps to make for what waits in ``commands`` (one plain step after ``tick_s``
    of nothing). Every upload wakes the loop; uploads that came during a long step (an
    apply, a publication) make one step, not one each: a step looks at every establishment,
    so one per upload cost the Siège sites² work in a round. Named commands keep their
    order and each makes its own step, after the plain one of the wakes before it."""
    try:
        got = [commands.get(timeout=tick_s)]
    except queue.Empty:
        return [""]
    while True:
        try:
            got.append(commands.get_nowait())
        except queue.Empty:
            break
    words: list[str] = []
    for command in got:
        word = COMMANDS.get(command, "")
        if word or not words or words[-1] != "":
            words.append(word)
    return words
