"""Run untrusted Python (a model's completion plus its tests) in a contained child process.

Each sample runs in its own process, in its own session and process group, in a fresh temporary
folder, and the whole group is killed when it overruns. What holds the sample in, strongest
first (each run records which of these were active in :attr:`ExecResult.enforced`):

Enforced by the kernel
    * ``rlimit``: address space (``RLIMIT_AS``, above the interpreter's own baseline), CPU time
      (``RLIMIT_CPU``), file size (``RLIMIT_FSIZE``), no core dumps; ``RLIMIT_NPROC`` when the
      sample runs under a user of its own.
    * ``netns``: a new, empty network namespace (``unshare(CLONE_NEWNET)``; needs root or
      unprivileged user namespaces), so no network device exists at all.
    * ``uid-nobody``: when the runner is root, the sample drops to ``nobody`` and the ordinary
      file permissions protect the host's files.
    * ``landlock-fs`` / ``landlock-tcp`` / ``landlock-signals``: Linux Landlock makes every file
      change outside the temporary folder fail, refuses TCP bind/connect and refuses signals to
      processes outside the sandbox.
    * the wall-clock timeout, enforced by the parent with ``killpg(SIGKILL)``.

Enforced inside the interpreter (``audit-hook``)
    A :func:`sys.addaudithook` hook refuses process creation (fork, exec, subprocess, system),
    signals, sockets, ``ctypes`` loading, and file writes, removals and renames outside the
    temporary folder, and records every refusal. Python code in the same interpreter can in
    principle get around an audit hook; it catches mistakes and plain hostility and makes them
    visible as the ``blocked`` category, while the kernel measures above do the holding.

Two ways to start a child: ``fork`` (default on Linux) forks from a worker that has already
imported numpy, scipy, scikit-image and pandas, so a sample costs milliseconds rather than the
second those imports take; ``spawn`` starts a fresh interpreter per sample.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from evals import landlock

CATEGORIES = (
    "passed", "syntax", "import", "invented_api", "assertion", "timeout", "memory", "blocked",
    "exit", "crash", "invalid",
)
"""Outcome of one sample. ``blocked``: the sandbox refused something the sample tried (network,
processes, writes outside its folder, signals); ``exit``: it ended the interpreter before its
tests finished; ``invalid``: the sample itself could not be run (bad record, unknown task)."""

PRELOAD = (
    "encodings.idna", "numpy", "scipy", "scipy.ndimage", "scipy.spatial", "scipy.stats",
    "scipy.optimize", "pandas", "skimage", "skimage.filters", "skimage.measure",
    "skimage.morphology", "skimage.segmentation", "skimage.feature", "skimage.util",
    "skimage.exposure", "skimage.transform", "skimage.draw", "skimage.color",
    "skimage.metrics", "skimage.io", "skimage.restoration",
)
"""Modules imported once per worker before samples are forked from it."""

Mode = Literal["fork", "spawn"]
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_NOBODY = 65534
_TAIL = 2000
_PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class Limits:
    """Resources one sample may use.

    Attributes
    ----------
    timeout : float
        Wall-clock seconds before the process group is killed.
    memory_mb : int
        Address space the sample may add to the interpreter's own (``RLIMIT_AS``).
    cpu_seconds : int or None
        CPU seconds (``RLIMIT_CPU``); ``ceil(timeout) + 1`` when None.
    max_file_mb : int
        Largest file the sample may write.
    max_processes : int
        ``RLIMIT_NPROC`` for the sample's own user (applied when it runs as ``nobody``).
    network : bool
        Allow network access (off by default).
    drop_privileges : bool
        When running as root, run the sample as ``nobody``.
    audit_hook : bool
        Install the in-interpreter audit hook (turned off only to test the kernel measures).
    """

    timeout: float = 10.0
    memory_mb: int = 2048
    cpu_seconds: int | None = None
    max_file_mb: int = 64
    max_processes: int = 32
    network: bool = False
    drop_privileges: bool = True
    audit_hook: bool = True

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.memory_mb < 64:
            raise ValueError(f"memory_mb must be at least 64, got {self.memory_mb}")


@dataclass
class ExecResult:
    """What running one program produced.

    Attributes
    ----------
    category : str
        One of :data:`CATEGORIES`.
    detail : str
        The exception or signal that ended it, in one line.
    seconds : float
        Wall time of the child.
    stdout, stderr : str
        Last characters the program printed.
    enforced : list of str
        Containment measures that were active (see the module docstring).
    violations : list of str
        Operations the audit hook refused.
    """

    category: str
    detail: str = ""
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    enforced: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether the program ran to its end without any refusal."""
        return self.category == "passed"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {**asdict(self), "passed": self.passed}


class SandboxViolationError(PermissionError):
    """Raised inside the sample when it tries something the sandbox refuses."""


# -- preparing a worker ---------------------------------------------------------------------


def preload(modules: tuple[str, ...] = PRELOAD) -> None:
    """Import the scientific stack once, single-threaded, so forked samples start warm.

    Call it first thing in a fresh worker process (it is the process pool's initializer).
    """
    for var in _THREAD_VARS:
        os.environ.setdefault(var, "1")
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            continue


# -- inside the child -----------------------------------------------------------------------


def _unshare_network() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNET) == 0:
            return True
        return libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0
    except (OSError, AttributeError):
        return False


def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _set_limits(limits: Limits, workdir: str) -> list[str]:
    import resource

    cpu = limits.cpu_seconds or int(limits.timeout) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    file_bytes = limits.max_file_mb * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Writing past the file limit should raise an error in the sample, not kill it silently.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    memory = _vm_size_bytes() + limits.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    return ["rlimit"]


@functools.cache
def _others_can_import() -> bool:
    """Whether a user other than the owner can read every folder Python imports from."""
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if not path.exists():
            continue
        for folder in [path, *path.parents]:
            if not folder.is_dir():
                continue
            mode = folder.stat().st_mode
            if not (mode & stat.S_IXOTH and (folder != path or mode & stat.S_IROTH)):
                return False
    return True


def _drop_privileges(limits: Limits, workdir: str) -> list[str]:
    # Under nobody the sample could not import what it needs when, e.g., Python lives in /root.
    if os.geteuid() != 0 or not limits.drop_privileges or not _others_can_import():
        return []
    import resource

    os.setgroups([])
    os.setgid(_NOBODY)
    os.setuid(_NOBODY)
    # Counted per user: nobody owns next to nothing else, so a small cap stops fork bombs.
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
    return ["uid-nobody"]


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_ALWAYS_BLOCKED = frozenset({
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
    "subprocess.Popen", "os.kill", "os.killpg", "os.startfile", "pty.spawn",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.call_function",
    "socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
    "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
    "socket.gethostbyname_ex", "urllib.Request", "http.client.connect", "webbrowser.open",
})
_PATH_EVENTS = {
    "os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.chmod": 1, "os.chown": 1,
    "os.truncate": 1, "os.utime": 1, "os.chflags": 1, "os.lchflags": 1, "shutil.rmtree": 1,
    "os.rename": 2, "os.link": 2, "os.symlink": 2, "shutil.move": 2, "shutil.copyfile": 2,
    "shutil.copytree": 2,
}


def _install_audit_hook(workdir: str, violations: list[str], network: bool) -> None:
    root = os.path.realpath(workdir)
    allowed_files = {"/dev/null"}

    def inside(path: Any) -> bool:
        if isinstance(path, int):
            return True  # an already open descriptor
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str | os.PathLike):
            return False
        real = os.path.realpath(os.fspath(path))
        return real == root or real.startswith(root + os.sep) or real in allowed_files

    def refuse(event: str, args: tuple[Any, ...]) -> None:
        shown = ", ".join(repr(a)[:80] for a in args[:2])
        message = f"sandbox refused {event}({shown})"
        violations.append(message)
        raise SandboxViolationError(errno.EPERM, message)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = [*args, None, None, 0][:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and not inside(path):
                refuse(event, args)
        elif event in _PATH_EVENTS:
            # For a symbolic link, the link is what gets written, not its target.
            targets = args[1:2] if event == "os.symlink" else args[: _PATH_EVENTS[event]]
            if not all(inside(p) for p in targets):
                refuse(event, args)
        elif event in _ALWAYS_BLOCKED and not (network and event.startswith("socket.")):
            refuse(event, args)

    sys.addaudithook(hook)


def _classify(exc: BaseException) -> str:
    if isinstance(exc, SandboxViolationError):
        return "blocked"
    if isinstance(exc, SystemExit):
        return "exit"
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, AssertionError):
        return "assertion"
    if isinstance(exc, ModuleNotFoundError):
        return "import"
    if isinstance(exc, ImportError):
        # "cannot import name X from Y": the module exists, the function does not.
        return "invented_api" if "cannot import name" in str(exc) else "import"
    if isinstance(exc, AttributeError):
        return "invented_api"
    if isinstance(exc, TypeError) and re.search(
        r"unexpected keyword argument|positional argument|takes \d+ positional|"
        r"got multiple values", str(exc)
    ):
        return "invented_api"
    if isinstance(exc, OSError) and exc.errno in (
        errno.EACCES, errno.EPERM, errno.EROFS, errno.ENETUNREACH, errno.EAFNOSUPPORT
    ):
        return "blocked"
    return "crash"


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = next((f"line {f.lineno}" for f in reversed(frames) if f.filename == "<sample>"), "")
    text = f"{type(exc).__name__}: {exc}"[:300]
    return f"{text} ({where})" if where else text


def _child(program: str, workdir: str, limits: Limits, result_fd: int, setsid: bool) -> None:
    """Contain this process, run ``program``, write the outcome to ``result_fd``."""
    if setsid:
        os.setsid()
    os.chdir(workdir)
    out = os.open(os.path.join(workdir, ".stdout"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(os.path.join(workdir, ".stderr"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    for fd in (null, out, err):
        os.close(fd)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    keep = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    os.environ.clear()
    os.environ.update({**keep, "HOME": workdir, "TMPDIR": workdir,
                       **{v: "1" for v in _THREAD_VARS}})
    tempfile.tempdir = workdir
    sys.dont_write_bytecode = True

    enforced: list[str] = []
    if not limits.network and _unshare_network():
        enforced.append("netns")
    enforced += _set_limits(limits, workdir)
    enforced += _drop_privileges(limits, workdir)
    enforced += landlock.restrict_writes([workdir, os.devnull], block_tcp=not limits.network)
    violations: list[str] = []
    if limits.audit_hook:
        _install_audit_hook(workdir, violations, limits.network)
        enforced.append("audit-hook")

    category, detail = "passed", ""
    try:
        code = compile(program, "<sample>", "exec")
    except (SyntaxError, ValueError) as exc:
        category, detail = "syntax", _describe(exc)
    else:
        try:
            exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
        except BaseException as exc:  # the sample's own failure, whatever it is
            category, detail = _classify(exc), _describe(exc)
    if violations:
        first = violations[0]
        category = "blocked"
        if detail and "SandboxViolationError" not in detail:
            first = f"{first}; then {detail}"
        detail = first
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    record = {"category": category, "detail": detail, "enforced": enforced,
              "violations": violations[:20]}
    os.write(result_fd, (json.dumps(record) + "\n").encode())


def _spawned_child() -> None:
    """Entry point of a ``spawn``-mode child: read the job from stdin, then run it."""
    job = json.loads(sys.stdin.buffer.read())
    for var in _THREAD_VARS:  # imports happen on demand, inside the limits
        os.environ[var] = "1"
    code = 1
    try:
        _child(job["program"], job["workdir"], Limits(**job["limits"]), job["result_fd"],
               setsid=False)
        code = 0
    finally:
        os._exit(code)


# -- the parent -----------------------------------------------------------------------------


def _wait(pid: int, timeout: float) -> tuple[int | None, bool]:
    """Wait for ``pid`` up to ``timeout`` seconds; kill its group after. (status, timed_out)."""
    deadline = time.monotonic() + timeout
    timed_out = False
    pidfd = None
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if pidfd is not None:
                ready, _, _ = select.select([pidfd], [], [], remaining)
                if ready:
                    break
            else:
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                    break
                time.sleep(min(0.005, remaining))
    finally:
        if pidfd is not None:
            os.close(pidfd)
    # The child is a zombie or still running: its pid cannot be reused yet, so the group is
    # still the sample's. Kill every process the sample left behind, then reap it.
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            target()
    _, status = os.waitpid(pid, 0)
    return status, timed_out


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        if sum(map(len, chunks)) > 1_000_000:
            break
    return b"".join(chunks)


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _prepare_workdir(data_dir: str | os.PathLike[str] | None, limits: Limits) -> str:
    workdir = tempfile.mkdtemp(prefix="bia-sample-")
    if data_dir is not None:
        shutil.copytree(data_dir, os.path.join(workdir, "data"), symlinks=False)
    if os.geteuid() == 0 and limits.drop_privileges and _others_can_import():
        for base, dirs, files in os.walk(workdir):
            for name in [base, *(os.path.join(base, n) for n in dirs + files)]:
                os.chown(name, _NOBODY, _NOBODY)
    return workdir


def run_program(
    program: str,
    limits: Limits | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    mode: Mode | None = None,
) -> ExecResult:
    """Run ``program`` to its end in a contained child process and say how it ended.

    Parameters
    ----------
    program : str
        Python source; it passes when it runs to its end without an exception or a refusal.
    limits : Limits, optional
        Resources; :class:`Limits` defaults when None.
    data_dir : path-like, optional
        A folder copied to ``data/`` inside the sample's temporary folder.
    mode : {"fork", "spawn"}, optional
        ``fork`` (default where available) forks from this process, which should have run
        :func:`preload`; ``spawn`` starts a fresh interpreter.

    Returns
    -------
    ExecResult
        Category, detail, output tails and the containment measures that were active.
    """
    limits = limits or Limits()
    mode = mode or ("fork" if hasattr(os, "fork") else "spawn")
    workdir = _prepare_workdir(data_dir, limits)
    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    try:
        if mode == "fork":
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            pid = os.fork()
            if pid == 0:  # the child never returns into the caller's code
                code = 1
                try:
                    os.close(read_fd)
                    _child(program, workdir, limits, write_fd, setsid=True)
                    code = 0
                finally:
                    os._exit(code)
        else:
            job = {"program": program, "workdir": workdir, "limits": asdict(limits),
                   "result_fd": write_fd}
            bootstrap = (f"import sys; sys.path.insert(0, {_PROJECT_ROOT!r}); "
                         "from evals.sandbox import _spawned_child; _spawned_child()")
            env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": workdir,
                   **{v: "1" for v in _THREAD_VARS}}
            proc = subprocess.Popen(
                [sys.executable, "-B", "-s", "-c", bootstrap], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_fd,),
                cwd=workdir, env=env, start_new_session=True,
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
            pid = proc.pid
            # Interpreter start and imports are not the sample's time.
            limits = Limits(**{**asdict(limits), "timeout": limits.timeout + 30})
        os.close(write_fd)
        write_fd = -1
        status, timed_out = _wait(pid, limits.timeout)
        if mode == "spawn":
            proc.returncode = status
        seconds = time.monotonic() - start
        raw = _read_all(read_fd)
        result = _interpret(raw, status, timed_out, limits)
        result.seconds = round(seconds, 4)
        result.stdout = _tail(Path(workdir) / ".stdout")
        result.stderr = _tail(Path(workdir) / ".stderr")
        return result
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        os.close(read_fd)
        shutil.rmtree(workdir, ignore_errors=True)


def _interpret(raw: bytes, status: int | None, timed_out: bool, limits: Limits) -> ExecResult:
    record: dict[str, Any] | None = None
    for line in reversed(raw.decode("utf-8", "replace").splitlines()):
        try:
            candidate = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(candidate, dict) and candidate.get("category") in CATEGORIES:
            record = candidate
            break
    if timed_out:
        return ExecResult("timeout", f"killed after {limits.timeout:g} s wall time",
                          enforced=(record or {}).get("enforced", []))
    if record is not None:
        return ExecResult(record["category"], record.get("detail", ""),
                          enforced=record.get("enforced", []),
                          violations=record.get("violations", []))
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return ExecResult("timeout", "CPU time limit reached")
        if sig == signal.SIGKILL:
            return ExecResult("memory", "killed (SIGKILL), most likely out of memory")
        return ExecResult("crash", f"killed by signal {signal.Signals(sig).name}")
    code = os.WEXITSTATUS(status) if status is not None else -1
    return ExecResult("exit", f"the interpreter exited (status {code}) before the tests ended")
