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
    signals, network sockets, ``ctypes`` loading, and file writes, removals and renames outside
    the temporary folder, and records every refusal. Python code in the same interpreter can in
    principle get around an audit hook; it catches mistakes and plain hostility and makes them
    visible as the ``blocked`` category, while the kernel measures above do the holding. What
    libraries legitimately do is let through, each with a test that its hostile variant is
    still refused: a Unix socket pair (asyncio's event loop; connect, bind and send stay
    refused), ``os.makedirs`` meeting a folder that exists, and a package opening the shared
    library it ships (llvmlite; libc, the process's own symbols and files the sample wrote
    stay refused).

Time
    The program's imports (every module it names, also inside functions) run inside the
    sandbox before its clock starts, with a budget of their own (:attr:`Limits.import_timeout`);
    refusals met while an installed module is imported and caught by it (fsspec probes
    ``ctypes.pythonapi``) are recorded apart, in :attr:`ExecResult.import_refusals`. The
    sample's address-space and CPU limits are set after its imports.

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
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from evals import landlock
from tools.errors import InputError

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
    import_timeout : float
        Wall-clock seconds for starting the interpreter (``spawn``) and importing the modules
        the program names, before its own clock (``timeout``) starts. Imports run inside the
        sandbox, after every measure is in place; only their time is not the sample's.
    """

    timeout: float = 10.0
    memory_mb: int = 2048
    cpu_seconds: int | None = None
    max_file_mb: int = 64
    max_processes: int = 32
    network: bool = False
    drop_privileges: bool = True
    audit_hook: bool = True
    import_timeout: float = 120.0

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if not self.import_timeout > 0:
            raise ValueError(f"import_timeout must be positive, got {self.import_timeout}")
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
        Operations the audit hook refused while the program ran.
    import_refusals : list of str
        Operations it refused while installed modules were imported ahead of the program,
        which those modules caught and went on without (not held against the sample).
    """

    category: str
    detail: str = ""
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""
    enforced: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    import_refusals: list[str] = field(default_factory=list)

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

    # Until the imports are done the CPU allowance covers them too; _limit_sample() then
    # lowers it to what the sample itself may use.
    cpu = int(limits.import_timeout) + (limits.cpu_seconds or int(limits.timeout) + 2)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    file_bytes = limits.max_file_mb * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Writing past the file limit should raise an error in the sample, not kill it silently.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # The CPU limit must end the sample with SIGXCPU (reported as a timeout): a forked child
    # inherits the parent's disposition, and a host that ignores SIGXCPU would leave the hard
    # limit's SIGKILL, which reads as running out of memory.
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    return ["rlimit"]


def _limit_sample(limits: Limits) -> None:
    """Once the imports are done: the sample's own CPU seconds and address space."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    cpu = used + (limits.cpu_seconds or int(limits.timeout) + 2)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard == resource.RLIM_INFINITY or cpu + 1 <= hard:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    # The address space of the interpreter with its imports, plus what the sample may add.
    memory = _vm_size_bytes() + limits.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def imported_modules(program: str) -> list[str]:
    """The absolute module names ``program`` imports anywhere (also inside functions).

    Returns
    -------
    list of str
        Dotted names in order of first appearance; empty when the program does not parse.

    Examples
    --------
    >>> imported_modules("import numpy as np\\ndef f():\\n    from skimage import filters\\n")
    ['numpy', 'skimage']
    """
    import ast

    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError):
        return []
    names: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names[node.module] = None
    return list(names)


def _import_ahead(program: str) -> None:
    """Import what the program will import, so that its clock starts with them loaded.

    A module that fails to import is left alone: the program's own import raises the same
    error in its own time and is classified then.
    """
    import importlib

    for name in imported_modules(program):
        with contextlib.suppress(BaseException):
            importlib.import_module(name)


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
_AF_UNIX = 1  # socket.AF_UNIX on Linux
_C_API_USED = frozenset({
    "_Py_HashSecret",  # numba hashes strings as CPython does: it reads the seed
    "PyCell_Get",  # numba's closure inlining reads a closure cell
})
_PATH_EVENTS = {
    "os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.chmod": 1, "os.chown": 1,
    "os.truncate": 1, "os.utime": 1, "os.chflags": 1, "os.lchflags": 1, "shutil.rmtree": 1,
    "os.rename": 2, "os.link": 2, "os.symlink": 2, "shutil.move": 2, "shutil.copyfile": 2,
    "shutil.copytree": 2,
}


@functools.cache
def _installed_roots() -> tuple[str, ...]:
    """The folders installed packages live in (site-packages): the sample cannot write there."""
    import site
    import sysconfig

    roots = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    with contextlib.suppress(AttributeError):
        roots.update(site.getsitepackages())
    return tuple(sorted(os.path.realpath(r) + os.sep for r in roots if os.path.isdir(r)))


def _installed_library(name: Any) -> bool:
    """Whether ``name`` is a shared library file inside an installed package."""
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not isinstance(name, str) or not os.path.isabs(name):
        return False
    real = os.path.realpath(name)
    return os.path.isfile(real) and real.startswith(_installed_roots())


class _InstalledCode:
    """Address ranges of the shared libraries of installed packages mapped into this process."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []

    def refresh(self) -> None:
        roots = _installed_roots()
        ranges = []
        with contextlib.suppress(OSError), open("/proc/self/maps") as handle:
            for line in handle:
                fields = line.split(None, 5)
                if len(fields) == 6 and "x" in fields[1]:
                    path = fields[5].strip()
                    if path.startswith(roots):
                        start, end = fields[0].split("-")
                        ranges.append((int(start, 16), int(end, 16)))
        self.ranges = ranges

    def __contains__(self, address: Any) -> bool:
        if not isinstance(address, int):
            return False
        for attempt in range(2):
            if any(start <= address < end for start, end in self.ranges):
                return True
            if attempt == 0:
                self.refresh()
        return False


def _exists(args: tuple[Any, ...]) -> bool:
    """Whether the path of an ``os.mkdir`` event (path, mode, dir_fd) already exists."""
    path = args[0] if args else None
    dir_fd = args[2] if len(args) > 2 else None
    if dir_fd not in (None, -1) or not isinstance(path, str | bytes | os.PathLike):
        return False
    return os.path.lexists(path)


def _install_audit_hook(workdir: str, violations: list[str], network: bool,
                        phase: dict[str, Any] | None = None) -> None:
    """Refuse what the module docstring lists; record each refusal.

    While ``phase["importing"]`` is true (installed modules being imported ahead of the
    program, see :func:`_import_ahead`) a refusal is still a refusal, but it goes to
    ``phase["refusals"]`` instead of ``violations``: a library that catches it and carries on
    (fsspec looks up a C-API function through ``ctypes.pythonapi`` and falls back to plain
    slicing when it cannot) is not the sample's doing. A library that does not catch it fails
    its import, and the program's own import then meets the refusal again, as a violation.
    """
    root = os.path.realpath(workdir)
    allowed_files = {"/dev/null"}
    installed_code = _InstalledCode()
    _installed_roots()  # computed before the hook exists: sysconfig reads files
    phase = phase if phase is not None else {"importing": False, "refusals": []}

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
        (phase["refusals"] if phase["importing"] else violations).append(message)
        raise SandboxViolationError(errno.EPERM, message)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = [*args, None, None, 0][:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and not inside(path):
                refuse(event, args)
        elif event == "os.mkdir" and _exists(args):
            # Nothing is made: the kernel answers EEXIST, which os.makedirs(exist_ok=True)
            # expects (zarr opens a store that way). A real new folder outside the working
            # folder is refused below, and by Landlock should the path vanish meanwhile.
            return
        elif event in _PATH_EVENTS:
            # For a symbolic link, the link is what gets written, not its target.
            targets = args[1:2] if event == "os.symlink" else args[: _PATH_EVENTS[event]]
            if not all(inside(p) for p in targets):
                refuse(event, args)
        elif event == "ctypes.dlopen" and args and _installed_library(args[0]):
            # A package loading its own shared library (llvmlite, under numba and umap).
            # Loading libc, the process itself, or a file the sample wrote stays refused.
            return
        elif event == "ctypes.dlsym" and len(args) > 1 and (
                _installed_library(getattr(args[0], "_name", None))
                or (args[0] is ctypes.pythonapi and args[1] in _C_API_USED)):
            # Symbols of those libraries, and the few C-API names numba reads. Every other
            # name looked up through the process's own handle (ctypes.pythonapi: the C API,
            # and libc behind it) stays refused: Python 3.11 audits no ctypes call, so a
            # symbol found is a function the sample can call.
            return
        elif event == "ctypes.call_function" and args and args[0] in installed_code:
            # Only into code of those libraries.
            return
        elif event == "socket.__new__" and len(args) > 1 and args[1] == _AF_UNIX:
            # A local socket pair is how asyncio wakes its own event loop (zarr runs one).
            # Creating a Unix socket reaches nothing: connect, bind and send stay refused.
            return
        elif event in _ALWAYS_BLOCKED and not (network and event.startswith("socket.")):
            refuse(event, args)

    sys.addaudithook(hook)


_MODULE_ALIASES = frozenset({"np", "pd", "plt", "ndi", "cle", "sitk", "sns", "tf", "da", "xr",
                             "cv2", "torch"})
"""Names the scientific Python world binds to modules by convention (``import numpy as np``)."""


def _is_module_name(name: str | None) -> bool:
    """Whether a name that was not defined is a module (or a module's usual alias)."""
    if not name:
        return False
    if name in _MODULE_ALIASES:
        return True
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


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
    if isinstance(exc, NameError) and _is_module_name(getattr(exc, "name", None)):
        return "import"  # ``np.zeros`` without ``import numpy as np``: a missing import
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
                       **{v: "1" for v in _THREAD_VARS},
                       # numba: its cache in the sample's folder (not site-packages), and its
                       # own thread pool rather than probing the system for TBB or OpenMP.
                       "NUMBA_CACHE_DIR": os.path.join(workdir, ".numba"),
                       "NUMBA_THREADING_LAYER": "workqueue"})
    tempfile.tempdir = workdir
    sys.dont_write_bytecode = True

    enforced: list[str] = []
    if not limits.network and _unshare_network():
        enforced.append("netns")
    enforced += _set_limits(limits, workdir)
    enforced += _drop_privileges(limits, workdir)
    enforced += landlock.restrict_writes([workdir, os.devnull], block_tcp=not limits.network)
    violations: list[str] = []
    phase: dict[str, Any] = {"importing": True, "refusals": []}
    if limits.audit_hook:
        _install_audit_hook(workdir, violations, limits.network, phase)
        enforced.append("audit-hook")
    _import_ahead(program)
    phase["importing"] = False
    _limit_sample(limits)
    # The parent starts the sample's clock when this line arrives.
    os.write(result_fd, (json.dumps({"ready": True}) + "\n").encode())

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
              "violations": violations[:20], "import_refusals": phase["refusals"][:20]}
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


def _wait_ready(pid: int, read_fd: int, timeout: float) -> tuple[bytes, bool]:
    """Read what the child writes until its "ready" line, its exit, or ``timeout`` seconds.

    Returns the bytes read and whether the child said it is ready (its imports are done).
    """
    deadline = time.monotonic() + timeout
    buffer = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return buffer, False
        ready, _, _ = select.select([read_fd], [], [], min(remaining, 0.5))
        if ready:
            chunk = os.read(read_fd, 65536)
            if not chunk:  # every writer closed: the child has ended
                return buffer, False
            buffer += chunk
            if b'{"ready": true}\n' in buffer:
                return buffer, True
        elif os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
            return buffer, False


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


def data_location(data_at: str) -> PurePosixPath:
    """Check where, relative to the sample's working folder, its data folder goes.

    ``data`` (bia's tasks) puts a copy inside the working folder; ``../example_data``
    (human-eval-bia's layout) puts the data beside it, where the sample can read but not write.

    Raises
    ------
    InputError
        When the place is absolute, empty, or more than one folder above the working folder.

    Examples
    --------
    >>> str(data_location("../example_data"))
    '../example_data'
    """
    place = PurePosixPath(data_at)
    parts = [part for part in place.parts if part != "."]
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    if (place.is_absolute() or not parts or ups > 1 or ups == len(parts)
            or ".." in parts[ups:]):
        raise InputError(
            f"data folder location {data_at!r}: give a relative folder name such as 'data' "
            "(inside the working folder) or '../example_data' (beside it)"
        )
    return PurePosixPath(*parts)


def _prepare_workdir(data_dir: str | os.PathLike[str] | None, limits: Limits,
                     data_at: str = "data") -> tuple[str, str]:
    """A fresh folder for one sample: ``(folder to remove afterwards, working folder)``."""
    place = data_location(data_at)
    container = tempfile.mkdtemp(prefix="bia-sample-")
    workdir = os.path.join(container, "work")
    os.mkdir(workdir)
    if data_dir is not None:
        source = Path(data_dir).resolve()
        if not source.is_dir():
            shutil.rmtree(container, ignore_errors=True)
            raise InputError(f"data folder {str(data_dir)!r} does not exist")
        target = os.path.normpath(os.path.join(workdir, str(place)))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if target.startswith(workdir + os.sep):
            # Inside the working folder the sample may change its copy.
            shutil.copytree(source, target, symlinks=False)
        else:
            # Beside it the data is only read (the sandbox refuses writes outside the working
            # folder), so a link to the original does: no copy of a large folder per sample.
            os.symlink(source, target, target_is_directory=True)
    if os.geteuid() == 0 and limits.drop_privileges and _others_can_import():
        for base, dirs, files in os.walk(container):
            for name in [base, *(os.path.join(base, n) for n in dirs + files)]:
                os.chown(name, _NOBODY, _NOBODY, follow_symlinks=False)
    return container, workdir


def run_program(
    program: str,
    limits: Limits | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    data_at: str = "data",
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
        A folder the program reads, placed at ``data_at``.
    data_at : str
        Where the data folder goes, relative to the working folder: ``data`` (a copy inside
        it, the default) or a folder beside it such as ``../example_data`` (read-only).
    mode : {"fork", "spawn"}, optional
        ``fork`` (default where available) forks from this process, which should have run
        :func:`preload`; ``spawn`` starts a fresh interpreter.

    Returns
    -------
    ExecResult
        Category, detail, output tails and the containment measures that were active. The
        time and the timeout count from the end of the program's imports (see
        :attr:`Limits.import_timeout`).

    Examples
    --------
    >>> run_program("assert sum([1, 2]) == 3").category
    'passed'
    """
    limits = limits or Limits()
    mode = mode or ("fork" if hasattr(os, "fork") else "spawn")
    container, workdir = _prepare_workdir(data_dir, limits, data_at)
    read_fd, write_fd = os.pipe()
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
        os.close(write_fd)
        write_fd = -1
        # Interpreter start and imports are not the sample's time: its clock starts when the
        # child says its imports are done.
        early, ready = _wait_ready(pid, read_fd, limits.import_timeout)
        start = time.monotonic()
        if ready:
            status, timed_out = _wait(pid, limits.timeout)
        else:
            alive = not os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            status, timed_out = _wait(pid, 0.0 if alive else 1.0)
            timed_out = alive
        if mode == "spawn":
            proc.returncode = status
        seconds = time.monotonic() - start
        raw = early + _read_all(read_fd)
        result = _interpret(raw, status, timed_out, limits, in_imports=not ready)
        result.seconds = round(seconds, 4)
        result.stdout = _tail(Path(workdir) / ".stdout")
        result.stderr = _tail(Path(workdir) / ".stderr")
        return result
    finally:
        if write_fd >= 0:
            os.close(write_fd)
        os.close(read_fd)
        shutil.rmtree(container, ignore_errors=True)


def _interpret(raw: bytes, status: int | None, timed_out: bool, limits: Limits, *,
               in_imports: bool = False) -> ExecResult:
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
        detail = (f"its imports did not finish in {limits.import_timeout:g} s" if in_imports
                  else f"killed after {limits.timeout:g} s wall time")
        return ExecResult("timeout", detail, enforced=(record or {}).get("enforced", []))
    if record is not None:
        return ExecResult(record["category"], record.get("detail", ""),
                          enforced=record.get("enforced", []),
                          violations=record.get("violations", []),
                          import_refusals=record.get("import_refusals", []))
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return ExecResult("timeout", "CPU time limit reached")
        if sig == signal.SIGKILL:
            return ExecResult("memory", "killed (SIGKILL), most likely out of memory")
        return ExecResult("crash", f"killed by signal {signal.Signals(sig).name}")
    code = os.WEXITSTATUS(status) if status is not None else -1
    return ExecResult("exit", f"the interpreter exited (status {code}) before the tests ended")
