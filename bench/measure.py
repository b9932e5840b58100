"""Run one command as a subprocess and measure it: wall seconds and peak memory.

Memory is sampled by polling the process tree (the command and every
descendant) with psutil every ``interval`` seconds; the peak of the summed
resident set size and the peak of each process are kept. Processes that are
not descendants but work for the command (PostgreSQL backends serving its
database) can be included with ``also``: a predicate on a process's command
line. The kernel's own figure for the command and its waited-for children
(``ru_maxrss`` from ``wait4``) is recorded too: it is exact for the largest
single process, where polling can miss a short spike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class Measurement:
    name: str
    command: str
    status: str  # ok | failed | timeout
    returncode: int | None
    wall_s: float
    peak_tree_rss_mb: float
    maxrss_mb: float  # wait4 ru_maxrss: the largest single process of the tree
    peak_by_process: dict[str, float] = field(default_factory=dict)  # label -> MB
    load_avg_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _label(proc: psutil.Process) -> str:
    try:
        cmd = proc.cmdline()
    except (psutil.Error, OSError):
        return f"pid {proc.pid}"
    if not cmd:
        return f"pid {proc.pid}"
    exe = Path(cmd[0]).name
    if exe.startswith("python") and len(cmd) > 1:
        # python -m module / python script: name it by what it runs
        rest = cmd[1:]
        if rest[0] == "-m" and len(rest) > 1:
            return f"python -m {rest[1]}"
        return f"python {Path(rest[0]).name}"
    if exe == "postgres" or cmd[0].startswith("postgres:"):
        return "postgres backend"
    return exe


def run_measured(
    name: str,
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    timeout_s: float | None = None,
    cwd: Path | None = None,
    also: Callable[[list[str]], bool] | None = None,
    interval: float = 0.25,
) -> Measurement:
    """Run ``command``, poll its memory, stop it (SIGTERM, then SIGKILL) after ``timeout_s``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    peak_sum = 0.0
    peaks: dict[tuple[int, str], float] = {}
    status = "ok"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout stops the whole tree
        )
        root = psutil.Process(proc.pid)
        rusage = None
        returncode: int | None = None
        next_extra = 0.0
        extra: list[psutil.Process] = []
        while True:
            try:
                pid, wstatus, ru = os.wait4(proc.pid, os.WNOHANG)
            except BaseException:
                _stop(proc.pid)
                raise
            if pid:
                rusage, returncode = ru, os.waitstatus_to_exitcode(wstatus)
                proc.returncode = returncode
                break
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                procs = [root]
            now = time.monotonic()
            if also is not None and now >= next_extra:
                extra = []
                for p in psutil.process_iter(["cmdline"]):
                    try:
                        if also(p.info["cmdline"] or []):
                            extra.append(p)
                    except psutil.Error:
                        continue
                next_extra = now + 1.0
            total = 0.0
            for p in procs + extra:
                try:
                    rss = p.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                total += rss
                key = (p.pid, _label(p))
                peaks[key] = max(peaks.get(key, 0.0), rss)
            peak_sum = max(peak_sum, total)
            if timeout_s is not None and now - started > timeout_s:
                status = "timeout"
                wstatus, rusage = _stop(proc.pid)
                returncode = os.waitstatus_to_exitcode(wstatus)
                proc.returncode = returncode
                break
            try:
                time.sleep(interval)
            except BaseException:  # interrupted (SIGTERM, Ctrl-C): stop the whole tree
                _stop(proc.pid)
                raise
    wall = time.monotonic() - started
    if status == "ok" and returncode != 0:
        status = "failed"
    by_label: dict[str, float] = {}
    for (_, label), mb in peaks.items():
        by_label[label] = max(by_label.get(label, 0.0), mb)
    return Measurement(
        name=name,
        command=" ".join(_short(c) for c in command),
        status=status,
        returncode=returncode,
        wall_s=round(wall, 1),
        peak_tree_rss_mb=round(peak_sum, 0),
        maxrss_mb=round((rusage.ru_maxrss if rusage else 0) / 1024, 0),
        peak_by_process={
            k: round(v, 0) for k, v in sorted(by_label.items(), key=lambda kv: -kv[1])
        },
        load_avg_end=tuple(round(x, 2) for x in os.getloadavg()),
        log=str(log_path),
    )


def _short(arg: str) -> str:
    """Command arguments without machine paths (results are committed)."""
    if "/" in arg and Path(arg).is_absolute():
        try:
            return str(Path(arg).relative_to(Path.cwd()))
        except ValueError:
            return Path(arg).name
    return arg


def _stop(pid: int):
    """SIGTERM the process group, SIGKILL it after 20 s; returns wait4's (status, rusage)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, wstatus, rusage = os.wait4(pid, os.WNOHANG)
        if done:
            return wstatus, rusage
        time.sleep(0.5)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _, wstatus, rusage = os.wait4(pid, 0)
    return wstatus, rusage
