"""A seeded random campaign of faults: "kill -9 anywhere, pull the cable anywhere".

    .venv/bin/python bench/soak_faults.py --seeds 1-200 [--kinds kill,cut] [--workers 2]
        [--minutes M] [--calibration TEXT] [--dir DIR] [--keep]

Where the fault suite kills at named failpoints and cuts at chosen bytes, each seed here
draws its fault with ``random.Random(seed)`` and runs it through the suite's scenarios
(``tests/fault_helpers.py``: Siège, A and B as real ``python -m synchro`` processes over
FTPS on loopback, real SQLite files, round 2):

- kill: the Siège's mode (``sync``/``serve``), the victim (SIEGE, A or B) and a delay over
  [0, 1.2 x] the victim's measured life in a round, after which its own process is
  SIGKILLed by PID and started again. A victim already ended is "not killed" (counted;
  its round must still converge).
- kill2: the same draw as kill, then the restarted victim killed again at a delay drawn
  over its life too, and started once more.
- kill2n: the mode, two different victims, each SIGKILLed by PID at its own delay drawn
  over its own life (both from the start of the round), each started again at once.
- cut: the mode, A's upload, download or both, each at a byte offset within the real
  transfer and 1-3 times, through the loopback cutting relay.
- cutctl: the mode, 1-3 offsets in the bytes relayed over A's control connections (both
  ways, all its connections of the round) drawn within the measured total, where the
  relay cuts the control connection in use; one seed in two also cuts A's upload or
  download as ``cut`` does. Bytes, not time: an offset lands in the middle of a command
  or a reply (RNTO sent, its answer lost), at the same step of the protocol on a slow
  machine as on a fast one; a moment would mostly fall while A waits between commands.

A process not ended 8 s after its SIGTERM (a ``serve`` stopped at the end of a scenario)
has its stacks taken by py-spy (``fault_helpers.stop_wait``); they are printed under the
seed's line and its folder kept, hang or not: where a slow stop waits is said at once.

Lives and sizes are measured first (``workers`` rounds at once per mode, as the campaign
runs them); a failure prints ``--seeds N-N --calibration ...`` to replay it at the same
place. One line per seed, then a summary; exit code 1 on any problem.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import dataclasses
import functools
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fault_helpers as fh
from fault_helpers import Outcome, World

MODES = ("sync", "serve")
LATE = 1.2  # delays are drawn over [0, LATE x the round's length]


@dataclasses.dataclass
class Calibration:
    """How long each node's process lives in an uninterrupted round (s) by "mode.node"
    (the Siège's ``serve``: the round's length), and A's upload and download (bytes)."""

    life_s: dict[str, float]
    upload: int = 399_000
    download: int = 166_000
    control: int = 12_000  # A's control bytes in a round (both ways, every connection)

    def text(self) -> str:
        """The ``--calibration`` argument that gives this calibration back."""
        lives = ",".join(f"{k}={v:.2f}" for k, v in sorted(self.life_s.items()))
        return f"{lives},upload={self.upload},download={self.download},control={self.control}"

    @classmethod
    def parse(cls, text: str) -> Calibration:
        pairs = dict(item.split("=") for item in text.split(","))
        upload, download = int(pairs.pop("upload")), int(pairs.pop("download"))
        control = int(pairs.pop("control", cls.control))  # older lines have none
        return cls({k: float(v) for k, v in pairs.items()}, upload, download, control)


@dataclasses.dataclass
class Fault:
    """What one seed drew, and what came of it."""

    seed: int
    kind: str  # "kill", "kill2", "kill2n", "cut" or "cutctl"
    mode: str
    victim: str = ""
    fraction: float = 0.0  # of the round's length
    delay: float = 0.0
    upload: tuple[int, int] | None = None  # (at byte, times)
    download: tuple[int, int] | None = None
    landed: bool = True  # the kill found its victim running
    again: float = 0.0  # kill2: the restarted victim killed after that long (s)
    again_landed: bool = False
    victim2: str = ""  # kill2n: the second victim, killed after delay2 (s)
    delay2: float = 0.0
    landed2: bool = False
    control: tuple[int, ...] = ()  # cutctl: offsets in A's control bytes
    outcome: Outcome | None = None
    slow_stops: int = 0  # processes not ended 8 s after their SIGTERM (stacks kept)

    def drawn(self) -> str:
        if self.kind == "kill2n":
            second = f"{self.victim2} at {self.delay2:.2f} s"
            return f"{self.mode:5} kill {self.victim} at {self.delay:.2f} s, {second}"
        if self.kind.startswith("kill"):
            then = f", again at {self.again:.2f} s" if self.again else ""
            at = f"at {self.fraction:.3f} ({self.delay:.2f} s)"
            return f"{self.mode:5} kill {self.victim:5} {at}{then}"
        ctl = f"control={list(self.control)} " if self.kind == "cutctl" else ""
        return f"{self.mode:5} cut  {ctl}upload={self.upload} download={self.download}"

    def problems(self) -> list[str]:
        return self.outcome.problems() if self.outcome else ["no outcome"]


class NotLanded(Exception):
    """The victim had ended before its kill came."""


def draw(seed: int, kind: str, cal: Calibration) -> Fault:
    rng = random.Random(seed)
    mode = rng.choice(MODES)
    if kind == "kill2n":
        first, second = rng.sample(fh.NODES, 2)
        delays = [rng.uniform(0, LATE) * cal.life_s[f"{mode}.{v}"] for v in (first, second)]
        return Fault(seed, kind, mode, first, delay=delays[0], victim2=second, delay2=delays[1])
    if kind == "cutctl":
        control = tuple(sorted(rng.randint(1, cal.control) for _ in range(rng.randint(1, 3))))
        data = rng.choice((None, None, "upload", "download"))
        at = max(1, int(rng.random() * (cal.upload if data == "upload" else cal.download)))
        cut = (at, rng.randint(1, 3))
        up, down = (cut if data == "upload" else None), (cut if data == "download" else None)
        return Fault(seed, kind, mode, upload=up, download=down, control=control)
    if kind in ("kill", "kill2"):
        victim = rng.choice(fh.NODES)
        fraction = rng.uniform(0, LATE)
        life = cal.life_s[f"{mode}.{victim}"]
        again = rng.uniform(0, LATE) * life if kind == "kill2" else 0.0
        return Fault(seed, kind, mode, victim, fraction, fraction * life, again=again)
    which = rng.choice(("upload", "download", "both"))
    up = (max(1, int(rng.random() * cal.upload)), rng.randint(1, 3))
    down = (max(1, int(rng.random() * cal.download)), rng.randint(1, 3))
    up_or_none = up if which != "download" else None
    return Fault(seed, kind, mode, upload=up_or_none, download=down if which != "upload" else None)


def kill_after(fault: Fault) -> fh.Trigger:
    """The scenario's trigger: SIGKILL the victim's process (``python -m synchro`` itself,
    started without a wrapper) ``fault.delay`` seconds after every node has started.
    Whether it landed is its exit status: a victim may end on its own between ``poll``
    and ``kill`` (this thread waits for the GIL meanwhile; seed 2085 of the columnar
    campaign: the Siège's ``sync`` ended OK, killed=False)."""

    def trigger(world: World, procs: dict[str, fh.Proc]) -> None:
        time.sleep(fault.delay)
        if not fh.sigkill(procs[fault.victim].popen):
            raise NotLanded

    return trigger


def kill_again(fault: Fault) -> Callable[[fh.Proc], bool]:
    """``scenario``'s ``again``: SIGKILL the restarted victim ``fault.again`` seconds after
    its start; True when the kill landed (its exit status says so)."""

    def again(proc: fh.Proc) -> bool:
        time.sleep(fault.again)
        fault.again_landed = fh.sigkill(proc.popen)
        return fault.again_landed

    return again


def finish_unkilled(world: World, template: Path, name: str) -> Outcome:
    """The kill came too late: the round (not interrupted) must end OK and converge."""
    out = Outcome(name, killed=True, restarted_ok=True)
    codes = {}
    service = [p for p in world.procs if p.node == "SIEGE" and p.args[0] == "serve"]
    for proc in list(world.procs):  # the runs first: the Siège's service serves them
        if proc not in service and proc.args[0] in ("sync", "serve"):
            codes[proc.node] = proc.wait()
    for proc in service:  # then stopped (seed 3394: stopped first, B's ack found no one)
        codes[proc.node] = world.stop(proc)
    out.others_ok = all(c == 0 for c in codes.values())
    if not out.others_ok:
        out.notes.append(f"return codes {codes}")
    out.lost, out.extra, out.differ = world.differences(fh.expected_after(world, template, 2))
    out.recovered_in = 0 if out.differ else 1
    out.left_running = [f"{n}#{i}" for n in fh.NODES for i, _k in world.running_rows(n)]
    return out


def run_fault(fault: Fault, template: Path, folder: Path, deadline: float) -> Fault:
    """Run the seed's scenario in ``folder`` (a failed scenario says so in its Outcome),
    unless ``deadline`` (monotonic) has passed (no outcome then)."""
    if time.monotonic() > deadline:
        return fault
    name = f"seed {fault.seed} {fault.kind}"
    if fault.kind.startswith("cut"):
        cut = fh.cut_job(
            template, fault.mode, fault.upload, fault.download, name, control=fault.control
        )
        fault.outcome = fh.run_all({name: cut}, folder, 1)[name]
        return fault
    if fault.kind == "kill2n":
        fault.outcome = fh.run_all(
            {name: functools.partial(two_kills, fault, template)}, folder, 1
        )[name]
        return fault

    def job(root: Path) -> Outcome:
        with World.copy(template, root) as world:
            try:
                trigger = kill_after(fault)
                again = kill_again(fault) if fault.again else None
                return fh.scenario(
                    world, template, fault.mode, fault.victim, trigger=trigger, again=again
                )
            except NotLanded:
                fault.landed = False
                return finish_unkilled(world, template, name)

    fault.outcome = fh.run_all({name: job}, folder, 1)[name]
    return fault


def two_kills(fault: Fault, template: Path, root: Path) -> Outcome:
    """A kill2n seed's scenario: both victims killed, each at its own delay."""
    landed: dict[str, bool] = {}
    delays = {fault.victim: fault.delay, fault.victim2: fault.delay2}
    with World.copy(template, root) as world:
        out = fh.two_kills_scenario(world, template, fault.mode, delays, landed, name=fault.kind)
    fault.landed, fault.landed2 = landed.get(fault.victim, False), landed.get(fault.victim2, False)
    return out


def calibrate(template: Path, root: Path, workers: int) -> Calibration:
    """``workers`` uninterrupted rounds at once per mode, A through the untouched relay:
    each node's median life, A's upload (the largest transfer) and download (the next)."""
    lives: dict[str, list[float]] = collections.defaultdict(list)
    sizes: list[int] = []
    control: list[int] = []

    def job(folder: Path, mode: str) -> Outcome:
        with World.copy(template, folder) as world:
            proxy = fh.proxied(world)
            try:
                out = fh.cut_scenario(world, template, mode, proxy, name=f"calibrate {mode}")
            finally:
                proxy.stop()
                sizes.extend(proxy.data_bytes)
                control.append(proxy.control_bytes)
            for proc in world.procs:  # its log's last write: when it ended; ``serve`` is
                life = proc.log.stat().st_mtime - proc.started  # stopped after the round
                lives[f"{mode}.{proc.node}"].append(
                    out.recovery_s if proc.args[0] == "serve" else life
                )
            return out

    for mode in MODES:
        jobs: dict[str, fh.Job] = {
            f"{n}": functools.partial(job, mode=mode) for n in range(workers)
        }
        bad = [p for o in fh.run_all(jobs, root / mode, workers).values() for p in o.problems()]
        if bad:
            raise SystemExit("a round without faults failed:\n" + "\n".join(bad))
    big = sorted(set(sizes), reverse=True)
    medians = {k: statistics.median(v) for k, v in lives.items()}
    down = next(s for s in big if s < big[0] * 0.6)
    return Calibration(medians, big[0], down, int(statistics.median(control)))


def slow_stops(folder: Path) -> list[Path]:
    """The stacks ``fault_helpers.stop_wait`` kept of a process not ended 8 s after its
    SIGTERM (``<log>.stacks.txt``): a hang, or a stop too slow for a service manager."""
    return sorted(folder.rglob("*.stacks.txt"))


def report(fault: Fault) -> str:
    o = fault.outcome
    assert o is not None
    problems = fault.problems()
    state = "ok" if not problems else "FAIL: " + problems[0].splitlines()[0][:90]
    landed = "" if fault.kind.startswith("cut") else ("landed " if fault.landed else "not killed ")
    landed += "twice " if fault.again_landed else ""
    landed += ("& landed " if fault.landed2 else "& not killed ") if fault.victim2 else ""
    extra = f"cuts={o.cuts} " if fault.kind.startswith("cut") else ""
    extra += f"ctl={o.control_cuts} " if fault.kind == "cutctl" else ""
    return f"{fault.seed:6} {fault.drawn():52} {landed}{extra}{o.recovery_s:5.1f} s  {state}"


def summary(faults: list[Fault]) -> str:
    kills = [f for f in faults if f.kind.startswith("kill")]
    cuts = [f for f in faults if f.kind.startswith("cut")]
    outs = [f.outcome for f in faults if f.outcome]
    recovery = sorted(o.recovery_s for f in kills if f.landed or f.landed2 if (o := f.outcome))
    two = [f for f in kills if f.victim2]
    rows = [
        ("kill seeds", f"{len(kills)} ({sum(f.landed for f in kills)} kills landed)"),
        ("second kills landed", str(sum(f.again_landed for f in kills))),
        ("kill2n: both kills landed", f"{sum(f.landed and f.landed2 for f in two)} of {len(two)}"),
        ("cut seeds", f"{len(cuts)} ({sum(o.cuts for f in cuts if (o := f.outcome))} cuts)"),
        ("control cuts", str(sum(o.control_cuts for f in cuts if (o := f.outcome)))),
        ("rows lost", str(sum(o.lost for o in outs))),
        ("rows extra", str(sum(o.extra for o in outs))),
        ("scenarios with nodes differing", str(sum(1 for o in outs if o.differ))),
        ("killed runs not closed", str(sum(1 for o in outs if not o.interrupted_closed))),
        ("runs left « En cours »", str(sum(len(o.left_running) for o in outs))),
        ("recovery after a kill: median", f"{statistics.median(recovery or [0]):.1f} s"),
        (
            "recovery after a kill: p95",
            f"{recovery[int(0.95 * (len(recovery) - 1))] if recovery else 0:.1f} s",
        ),
        ("worst recovery time", f"{max((o.recovery_s for o in outs), default=0):.1f} s"),
        ("stops > 8 s (stacks kept)", str(sum(f.slow_stops for f in faults))),
        ("seeds with a problem", str(sum(1 for f in faults if f.problems()))),
    ]
    return "\n".join(f"| {k:<30} | {v} |" for k, v in rows)


def campaign(
    wanted: list[tuple[int, str]],
    workers: int,
    base: Path,
    cal: Calibration | None = None,
    minutes: float = 0,
    keep: bool = False,
) -> tuple[list[Fault], Calibration]:
    """Every (seed, kind) wanted through its scenario, ``workers`` at a time; a line is
    printed as each ends. A failed scenario's folder is kept (every one with ``keep``).
    With ``minutes``, no scenario starts after that long (those left are not run)."""
    deadline = time.monotonic() + minutes * 60 if minutes else float("inf")
    template = fh.build_template(base / "template")
    cal = cal or calibrate(template, base / "calibration", workers)
    print(f"calibration: {cal.text()}", flush=True)
    faults = [draw(seed, kind, cal) for seed, kind in wanted]
    done: list[Fault] = []
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        futures = [
            pool.submit(run_fault, f, template, base / f"{f.kind}-{f.seed}", deadline)
            for f in faults
        ]
        for future in concurrent.futures.as_completed(futures):
            fault = future.result()
            if fault.outcome is None:
                continue  # not started: past the deadline
            done.append(fault)
            print(report(fault), flush=True)
            slow = slow_stops(base / f"{fault.kind}-{fault.seed}")
            fault.slow_stops = len(slow)
            for dump in slow:  # a stop that took over 8 s: where it waited, said at once
                print(
                    f"  slow stop, its stacks ({dump}):\n    "
                    + "\n    ".join(dump.read_text(encoding="utf-8").splitlines()),
                    flush=True,
                )
            if not fault.problems() and not slow and not keep:
                shutil.rmtree(base / f"{fault.kind}-{fault.seed}", ignore_errors=True)
    return sorted(done, key=lambda f: (f.seed, f.kind)), cal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1-20", help="A-B, both included")
    parser.add_argument("--kinds", default="kill,cut")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--calibration", default="", help="as a run prints it (no measuring then)")
    parser.add_argument("--minutes", type=float, default=0, help="start no seed after that")
    parser.add_argument("--dir", help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    low, _, high = args.seeds.partition("-")
    seeds = range(int(low), int(high or low) + 1)
    kinds = [k for k in args.kinds.split(",") if k]
    cal = Calibration.parse(args.calibration) if args.calibration else None
    base = Path(args.dir or tempfile.mkdtemp(prefix="soak-faults-"))
    base.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    faults, cal = campaign(
        [(s, k) for s in seeds for k in kinds], args.workers, base, cal, args.minutes, args.keep
    )
    failed = [f for f in faults if f.problems()]
    print()
    print(summary(faults))
    print(f"\n(total {time.monotonic() - started:.0f} s, {args.workers} at a time)")
    for f in failed:
        print(f"\nFAILED seed {f.seed} {f.kind}: {f.drawn()} (folder {base}/{f.kind}-{f.seed})")
        print(f"  replay: --seeds {f.seed}-{f.seed} --kinds {f.kind} --calibration {cal.text()}")
        print("  " + "\n  ".join("\n".join(f.problems()).splitlines()[:40]))
    if not args.keep and not failed:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
