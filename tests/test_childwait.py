"""ecotrain.childwait: the wrapper's wait for its child lets a signal reach its handler
whichever thread the kernel gave it to (CI once hung 30 s on a SIGTERM a helper thread took)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from ecotrain.childwait import wait_child

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _signal_taken_by_another_thread(wait) -> tuple[float, list[int], int]:  # noqa: ANN001
    """The main thread blocks SIGUSR1, so the kernel must give it to a helper thread (as it
    does when a helper unblocks signals after a spawn); the handler stops the child."""
    child = subprocess.Popen(["sleep", "20"])
    got: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        got.append(signum)
        child.terminate()

    old = signal.signal(signal.SIGUSR1, handler)
    ready = threading.Event()

    def helper() -> None:  # created before the main thread blocks SIGUSR1: it takes it
        ready.wait()
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGUSR1)

    thread = threading.Thread(target=helper, daemon=True)
    thread.start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        ready.set()
        t0 = time.monotonic()
        status, _ = wait(child.pid)
        return time.monotonic() - t0, got, status
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        signal.signal(signal.SIGUSR1, old)
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_signal_another_thread_took_still_runs_the_handler_and_ends_the_wait() -> None:
    elapsed, got, status = _signal_taken_by_another_thread(wait_child)
    assert got == [signal.SIGUSR1]
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    assert elapsed < 10  # a plain os.wait4 sleeps until the child's 20 s are over


def test_status_and_rusage_as_wait4_gives_them() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sum(range(10**6)); sys.exit(3)"])
    status, rusage = wait_child(child.pid)
    child.returncode = os.WEXITSTATUS(status)  # reaped here, not by Popen
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3
    assert rusage.ru_utime + rusage.ru_stime > 0


def test_the_wakeup_fd_is_given_back() -> None:
    r, w = os.pipe()
    os.set_blocking(w, False)
    previous = signal.set_wakeup_fd(w)
    try:
        child = subprocess.Popen(["true"])
        wait_child(child.pid)
        child.returncode = 0
        assert signal.set_wakeup_fd(w) == w
    finally:
        signal.set_wakeup_fd(previous)
        os.close(r)
        os.close(w)


def test_waits_with_fds_past_select_limit() -> None:
    """A wrapper started with over 1024 fds open (a leaky parent) still waits."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip("fd limit below 1200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        child = subprocess.Popen(["sh", "-c", "exit 4"])
        status, _ = wait_child(child.pid)
        child.returncode = os.WEXITSTATUS(status)
        assert child.returncode == 4
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_without_a_pidfd_the_childs_end_still_wakes_the_wait(monkeypatch) -> None:
    """Kernels before 5.3 have no pidfd: SIGCHLD through the wakeup fd ends the wait, not a
    timer (with the idle bound at 60 s, a wait that only polled would take a minute)."""
    from ecotrain import childwait

    monkeypatch.setattr(childwait, "_pidfd", lambda pid: None)
    monkeypatch.setattr(childwait, "IDLE_S", 60.0)
    before = signal.getsignal(signal.SIGCHLD)
    child = subprocess.Popen(["sh", "-c", "sleep 0.3; exit 5"])
    t0 = time.monotonic()
    status, _ = childwait.wait_child(child.pid)
    child.returncode = os.WEXITSTATUS(status)
    assert child.returncode == 5 and time.monotonic() - t0 < 30
    assert signal.getsignal(signal.SIGCHLD) == before  # given back
