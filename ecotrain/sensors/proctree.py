"""The child's process tree: CPU seconds and resident memory, read cheaply once per tick.

Shared by the CPU model (cpu_model.py) and the RAM model (memory.py): both hold the same
:class:`ProcessTree` and call :meth:`ProcessTree.update` with the tick's ``now``; the second
call in a tick is free, so the tree is read once per tick, not twice.

Cost, which is the point of this module:

- Each tick reads one small file per known process (``/proc/PID/stat`` gives utime, stime
  and rss at once) instead of psutil's several reads and object overhead.
- Finding new descendants is the expensive part (psutil's ``children(recursive=True)``
  reads every process in /proc), so it runs on a back-off schedule: 0.5 s, 1, 2, 4, then
  every ``rescan_s`` (5 s). On Linux it walks ``/proc/PID/task/TID/children`` from the
  known processes only, which touches a handful of files rather than all of /proc.
- A descendant that starts and exits between two scans is never seen; its CPU time is
  lost to the sampled total. The monitor's final ``rusage`` of the child (which includes
  all waited-for descendants) covers that: see ``CPUModelSensor.finish``.

Off Linux the same class falls back to psutil for everything (imported lazily: it costs
~20 ms to import, which the run path does not pay on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class ProcessTree:
    """A root process and the descendants seen so far.

    ``cpu_seconds`` is user+system time of every process seen, counted from each process's
    birth; processes that exited keep the last value seen. ``rss_bytes`` is the sum of the
    live processes' resident sets (shared pages are counted once per process).
    """

    def __init__(self, pid: int, *, rescan_s: float = 5.0, proc: Path = Path("/proc")) -> None:
        self.pid = pid
        self.rescan_s = rescan_s
        self.proc = proc
        self.linux = (proc / "self" / "stat").exists() or (proc / str(pid) / "stat").exists()
        # key (pid, start ticks) so a recycled pid is not taken for the process we knew
        self._live: dict[int, tuple[int, float]] = {}  # pid -> (starttime, cpu_s)
        self._psutil: dict[int, object] = {}
        self._paths: dict[int, str] = {}
        self._dead_cpu_s = 0.0
        self.cpu_seconds = 0.0
        self.rss_bytes = 0
        self.max_rss_bytes = 0
        self.processes_seen = 0
        self.root_alive = True
        self._last_now: float | None = None
        self._next_scan: float | None = None
        self._scan_gap = 0.5
        self._add(pid)

    # -- public ------------------------------------------------------------------------

    def update(self, now: float) -> None:
        """Read the tree at ``now``; a second call with the same ``now`` does nothing."""
        if now == self._last_now:
            return
        self._last_now = now
        if self._next_scan is None:
            self._next_scan = now + self._scan_gap
        elif now >= self._next_scan:
            self.rescan()
            self._scan_gap = min(self._scan_gap * 2, self.rescan_s)
            self._next_scan = now + self._scan_gap
        self._read_all()

    def rescan(self) -> None:
        """Look for descendants not seen yet (the expensive step; see the module doc)."""
        if not self._live:
            return
        found: list[int] = []
        if self.linux:
            stack = list(self._live)
            seen = set(stack)
            while stack:
                for child in self._children_linux(stack.pop()):
                    if child not in seen:
                        seen.add(child)
                        stack.append(child)
                        found.append(child)
        else:
            found = self._children_psutil()
        for pid in found:
            if pid not in self._live:
                self._add(pid)

    @property
    def live_pids(self) -> list[int]:
        """The processes of the tree known to be alive at the last update."""
        return list(self._live)

    # -- reading -----------------------------------------------------------------------

    def _add(self, pid: int) -> None:
        stat = self._read_stat(pid) if self.linux else self._read_psutil_new(pid)
        if stat is None:
            return
        self._live[pid] = (stat[0], stat[1])
        self.processes_seen += 1

    def _read_all(self) -> None:
        cpu = 0.0
        rss = 0
        for pid, (start, last_cpu) in list(self._live.items()):
            stat = self._read_stat(pid) if self.linux else self._read_psutil(pid)
            if stat is None or stat[0] != start:
                # exited (or the pid was recycled): keep what it had used when last seen
                self._dead_cpu_s += last_cpu
                del self._live[pid]
                self._psutil.pop(pid, None)
                self._paths.pop(pid, None)
                if pid == self.pid:
                    self.root_alive = False
                continue
            self._live[pid] = (start, stat[1])
            cpu += stat[1]
            rss += stat[2]
        # max() because a value read mid-exit can dip; the total must never go backwards
        self.cpu_seconds = max(self.cpu_seconds, self._dead_cpu_s + cpu)
        self.rss_bytes = rss
        self.max_rss_bytes = max(self.max_rss_bytes, rss)

    def _read_stat(self, pid: int) -> tuple[int, float, int] | None:
        """(start ticks, cpu seconds, rss bytes) from /proc/PID/stat, or None if gone."""
        path = self._paths.get(pid)
        if path is None:
            path = self._paths[pid] = f"{self.proc}/{pid}/stat"
        try:
            # os.open/read: a third of the cost of open() with its buffered reader
            fd = os.open(path, os.O_RDONLY)
            try:
                data = os.read(fd, 4096)
            finally:
                os.close(fd)
        except OSError:
            return None
        # the command name may hold spaces and parentheses: split after the last ')'
        fields = data[data.rfind(b")") + 2 :].split()
        try:
            if fields[0] in (b"Z", b"X"):
                return None  # a zombie's times are final; it is treated as exited
            cpu = (int(fields[11]) + int(fields[12])) / _CLK_TCK
            return int(fields[19]), cpu, int(fields[21]) * _PAGE
        except (IndexError, ValueError):
            return None

    def _children_linux(self, pid: int) -> list[int]:
        out: list[int] = []
        try:
            tasks = os.listdir(self.proc / str(pid) / "task")
        except OSError:
            return out
        for tid in tasks:
            try:
                with open(self.proc / str(pid) / "task" / tid / "children", "rb") as f:
                    out.extend(int(c) for c in f.read().split())
            except (OSError, ValueError):
                continue
        return out

    # -- psutil fallback (not Linux) ----------------------------------------------------

    def _read_psutil_new(self, pid: int) -> tuple[int, float, int] | None:
        import psutil

        try:
            self._psutil[pid] = psutil.Process(pid)
        except psutil.Error:
            return None
        return self._read_psutil(pid)

    def _read_psutil(self, pid: int) -> tuple[int, float, int] | None:
        import psutil

        p = self._psutil.get(pid)
        if p is None:
            return None
        try:
            with p.oneshot():  # type: ignore[attr-defined]
                times = p.cpu_times()  # type: ignore[attr-defined]
                rss = p.memory_info().rss  # type: ignore[attr-defined]
                start = int(p.create_time() * 1000)  # type: ignore[attr-defined]
        except psutil.Error:
            return None
        return start, times.user + times.system, rss

    def _children_psutil(self) -> list[int]:
        import psutil

        root = self._psutil.get(self.pid)
        if root is None:
            return []
        try:
            return [c.pid for c in root.children(recursive=True)]  # type: ignore[attr-defined]
        except psutil.Error:
            return []
