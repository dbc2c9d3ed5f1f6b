"""Hostile samples: each is contained, recorded with the right category, and harms nothing.

Every test plants files on the host outside the sample's folder and checks they are untouched
afterwards; network tests run a real TCP server and check that no connection arrived.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from evals import landlock, sandbox
from tools.errors import InputError

FAST = sandbox.Limits(timeout=5)


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    """A file on the host that no sample may change (world-writable, so only the sandbox
    protects it, not file permissions)."""
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    target.chmod(0o666)
    tmp_path.chmod(0o777)
    return target


def run(program: str, limits: sandbox.Limits = FAST, **kwargs: object) -> sandbox.ExecResult:
    return sandbox.run_program(program, limits, **kwargs)


def test_a_good_sample_passes_and_can_use_its_folder() -> None:
    result = run(
        "import numpy as np\nfrom skimage import filters\n"
        "np.save('x.npy', np.ones(3))\nassert np.load('x.npy').sum() == 3\n"
        "import tempfile\nwith tempfile.NamedTemporaryFile() as f:\n    f.write(b'ok')\n"
        "print('hello')\n"
    )
    assert result.passed, result.detail
    assert result.stdout.strip() == "hello"
    assert "audit-hook" in result.enforced and "rlimit" in result.enforced


@pytest.mark.parametrize(("program", "category"), [
    ("def f(:\n    pass\n", "syntax"),
    ("import numpy_that_does_not_exist\n", "import"),
    ("from skimage.filters import threshold_magic\n", "invented_api"),
    ("import numpy as np\nnp.segment_everything(1)\n", "invented_api"),
    ("import numpy as np\nnp.zeros(3, colour=1)\n", "invented_api"),
    ("x = np.zeros(3)\n", "import"),  # the import was forgotten
    ("x = scipy.ndimage\n", "import"),
    ("x = undefined_helper(3)\n", "crash"),
    ("assert 1 + 1 == 3\n", "assertion"),
    ("raise ValueError('bad')\n", "crash"),
    ("import sys\nsys.exit(0)\n", "exit"),
    ("import os\nos._exit(0)\n", "exit"),
])
def test_failure_categories(program: str, category: str) -> None:
    result = run(program)
    assert result.category == category, result.detail
    assert not result.passed


def test_infinite_loop_is_killed_with_its_process_group() -> None:
    result = run("while True:\n    pass\n", sandbox.Limits(timeout=1))
    assert result.category == "timeout"
    assert result.seconds < 4


def test_the_budget_is_cpu_time_with_wall_time_as_a_backstop() -> None:
    import signal

    # Whatever the host process does with SIGXCPU, the sample's CPU limit is a timeout.
    previous = signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    try:
        ignored = run("while True:\n    pass\n", sandbox.Limits(timeout=30, cpu_seconds=1))
    finally:
        signal.signal(signal.SIGXCPU, previous)
    assert ignored.category == "timeout" and "CPU" in ignored.detail
    busy = run("while True:\n    pass\n", sandbox.Limits(timeout=30, cpu_seconds=1))
    assert busy.category == "timeout" and "CPU" in busy.detail
    assert busy.seconds < 10
    idle = run("import time\ntime.sleep(60)\n", sandbox.Limits(timeout=1, cpu_seconds=30))
    assert idle.category == "timeout" and "wall" in idle.detail


def test_fork_bomb_is_refused(host_file: Path) -> None:
    result = run("import os\nwhile True:\n    os.fork()\n")
    assert result.category == "blocked"
    assert "os.fork" in result.detail
    result = run("import subprocess\nsubprocess.run(['true'])\n")
    assert result.category == "blocked"
    result = run("import os\nos.system('true')\n")
    assert result.category == "blocked"
    assert host_file.read_text() == "keep me"


def test_deleting_and_writing_outside_the_folder_is_refused(host_file: Path) -> None:
    for program in (
        f"import os\nos.remove({str(host_file)!r})\n",
        f"import shutil\nshutil.rmtree({str(host_file.parent)!r})\n",
        f"open({str(host_file)!r}, 'w').write('gone')\n",
        f"open({str(host_file.parent / 'new.txt')!r}, 'x').write('new')\n",
        f"import os\nos.rename({str(host_file)!r}, 'stolen.txt')\n",
        f"from pathlib import Path\nPath({str(host_file)!r}).write_text('gone')\n",
        "import os\nos.chdir('/')\nopen('bia_sandbox_escape.txt', 'w').write('x')\n",
    ):
        result = run(program)
        assert result.category == "blocked", (program, result.detail)
        assert result.violations
    assert host_file.read_text() == "keep me"
    assert sorted(p.name for p in host_file.parent.iterdir()) == ["precious.txt"]
    assert not Path("/bia_sandbox_escape.txt").exists()


@pytest.mark.skipif(landlock.abi_version() < 1, reason="Landlock is not available here")
def test_kernel_refuses_writes_even_without_the_audit_hook(host_file: Path) -> None:
    bare = sandbox.Limits(timeout=5, audit_hook=False)
    for program in (f"open({str(host_file)!r}, 'w').write('gone')\n",
                    f"import os\nos.remove({str(host_file)!r})\n"):
        result = run(program, bare)
        assert result.category == "blocked", result.detail
        assert "landlock-fs" in result.enforced and "audit-hook" not in result.enforced
    assert host_file.read_text() == "keep me"


class _Server:
    """A TCP server on localhost that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.thread.join()
        self.sock.close()


def test_sockets_are_refused_and_no_connection_arrives() -> None:
    server = _Server()
    try:
        program = (f"import socket\ns = socket.create_connection(('127.0.0.1', {server.port}),"
                   " timeout=2)\n")
        result = run(program)
        assert result.category == "blocked", result.detail
        if landlock.abi_version() >= 4 or "netns" in result.enforced:
            bare = run(program, sandbox.Limits(timeout=5, audit_hook=False))
            assert bare.category == "blocked", bare.detail
        # Checking the sample's own view is not enough: the server must have seen nothing.
        assert server.accepted == 0
    finally:
        server.close()


def test_huge_memory_is_refused() -> None:
    result = run("import numpy as np\nx = np.ones((200_000, 100_000))\n",
                 sandbox.Limits(timeout=10, memory_mb=512))
    assert result.category == "memory", result.detail
    result = run("x = bytearray(50 * 2**30)\n")
    assert result.category == "memory"


def test_signals_to_the_host_are_refused() -> None:
    result = run("import os\nos.kill(os.getppid(), 9)\n")
    assert result.category == "blocked"
    if landlock.abi_version() >= 6:
        bare = run("import os\nos.kill(os.getppid(), 0)\n",
                   sandbox.Limits(timeout=5, audit_hook=False))
        assert bare.category == "blocked"
    # We are still alive to assert this: the parent was not killed.
    assert os.getpid() > 0


def test_a_caught_refusal_still_fails_the_sample(host_file: Path) -> None:
    program = (f"try:\n    open({str(host_file)!r}, 'w')\nexcept Exception:\n    pass\n"
               "assert True\n")
    result = run(program)
    assert result.category == "blocked"
    assert host_file.read_text() == "keep me"


def test_data_folder_is_copied_in_and_left_unchanged(tmp_path: Path) -> None:
    data = tmp_path / "example"
    data.mkdir()
    (data / "values.txt").write_text("1 2 3")
    program = ("total = sum(map(int, open('data/values.txt').read().split()))\n"
               "assert total == 6\nopen('data/values.txt', 'w').write('changed')\n")
    result = run(program, data_dir=data)
    assert result.passed, result.detail
    assert (data / "values.txt").read_text() == "1 2 3"


def test_spawn_mode_runs_a_fresh_interpreter(host_file: Path) -> None:
    good = run("import numpy as np\nassert np.arange(4).sum() == 6\n", mode="spawn")
    assert good.passed, good.detail
    bad = run(f"import os\nos.remove({str(host_file)!r})\n", mode="spawn")
    assert bad.category == "blocked"
    assert host_file.read_text() == "keep me"


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="timeout"):
        sandbox.Limits(timeout=0)
    with pytest.raises(ValueError, match="memory_mb"):
        sandbox.Limits(memory_mb=1)


# -- faithful execution: data beside the folder, imports off the clock, what libraries do ----


def test_data_beside_the_working_folder_is_read_only(tmp_path: Path) -> None:
    data = tmp_path / "example_data"
    (data / "images").mkdir(parents=True)
    (data / "images" / "a.txt").write_text("1 2 3")
    data.chmod(0o777)
    reads = ("import os\nassert os.listdir('../example_data/images/') == ['a.txt']\n"
             "assert open('../example_data/images/a.txt').read() == '1 2 3'\n")
    assert run(reads, data_dir=data, data_at="../example_data").passed
    writes = "open('../example_data/images/a.txt', 'w').write('changed')\n"
    result = run(writes, data_dir=data, data_at="../example_data")
    assert result.category == "blocked", result.detail
    bare = run(writes, sandbox.Limits(timeout=5, audit_hook=False), data_dir=data,
               data_at="../example_data")
    if landlock.abi_version() >= 1:
        assert bare.category == "blocked", bare.detail
    assert (data / "images" / "a.txt").read_text() == "1 2 3"
    # Without the suite's layout the same test cannot find its data.
    assert run(reads, data_dir=data).category != "passed"


@pytest.mark.parametrize("place", ["/tmp/x", "../../x", "..", "", "a/../../b"])
def test_data_places_outside_the_sample_are_refused(place: str) -> None:
    with pytest.raises(InputError, match="data folder location"):
        sandbox.data_location(place)


@pytest.fixture
def slow_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed-looking module that takes 2 s to import."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "bia_slow_import_probe.py").write_text("import time\ntime.sleep(2)\nVALUE = 7\n")
    monkeypatch.syspath_prepend(str(folder))
    return "bia_slow_import_probe"


def test_slow_imports_are_not_the_samples_time(slow_module: str) -> None:
    program = (f"def f():\n    import {slow_module}\n    return {slow_module}.VALUE\n"
               "assert f() == 7\n")
    result = run(program, sandbox.Limits(timeout=1))
    assert result.passed, result.detail
    assert result.seconds < 1
    # The import budget itself is enforced.
    late = run(program, sandbox.Limits(timeout=1, import_timeout=0.5))
    assert late.category == "timeout" and "imports" in late.detail


def test_a_library_that_catches_a_refusal_while_imported_is_not_blamed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host_file: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    # Like fsspec, which looks up a C-API function through ctypes and falls back without it.
    (folder / "bia_careful_probe.py").write_text(
        "try:\n    import ctypes\n    FAST = ctypes.PyDLL(None).PyBytes_FromStringAndSize\n"
        "except Exception:\n    FAST = None\n"
        f"try:\n    open({str(host_file)!r}, 'w').write('gone')\nexcept OSError:\n    pass\n")
    monkeypatch.syspath_prepend(str(folder))
    result = run("import bia_careful_probe\nassert bia_careful_probe.FAST is None\n")
    assert result.passed, result.detail
    assert any("ctypes.dlopen" in r for r in result.import_refusals)
    assert host_file.read_text() == "keep me"  # refused all the same
    # The same operations done by the sample itself are violations.
    for program in ("import ctypes\nctypes.PyDLL(None).PyBytes_FromStringAndSize\n",
                    "import ctypes\nctypes.CDLL(None).getpid()\n",
                    f"open({str(host_file)!r}, 'w').write('gone')\n"):
        result = run(program)
        assert result.category == "blocked", (program, result.detail)
    assert host_file.read_text() == "keep me"


def test_fsspec_imports_and_zarr_reads_a_store_beside_the_folder(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("fsspec")
    data = tmp_path / "example_data"
    data.mkdir()
    data.chmod(0o777)
    zarr.save_array(str(data / "values.zarr"), np.arange(3) + 1)
    program = ("import fsspec, zarr\nimport numpy as np\n"
               "z = zarr.open('../example_data/values.zarr')\n"
               "assert np.asarray(z[:]).tolist() == [1, 2, 3]\n")
    result = run(program, data_dir=data, data_at="../example_data")
    assert result.passed, (result.detail, result.violations)


def test_a_local_socket_pair_works_but_unix_sockets_reach_nothing(tmp_path: Path) -> None:
    program = ("import asyncio\nasync def f():\n    return 3\nassert asyncio.run(f()) == 3\n"
               "import socket\na, b = socket.socketpair()\na.send(b'x')\n"
               "assert b.recv(1) == b'x'\n")
    result = run(program)
    assert result.passed, result.detail
    path = tmp_path / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    server.settimeout(0.5)
    path.chmod(0o777)
    try:
        result = run("import socket\ns = socket.socket(socket.AF_UNIX)\n"
                     f"s.connect({str(path)!r})\n")
        assert result.category == "blocked", result.detail
        assert "socket.connect" in result.detail
        with pytest.raises(TimeoutError):
            server.accept()
        result = run("import socket\nsocket.socket(socket.AF_INET)\n")
        assert result.category == "blocked", result.detail
    finally:
        server.close()


def test_making_an_existing_folder_is_allowed_a_new_one_is_not(tmp_path: Path) -> None:
    outside = tmp_path / "existing"
    outside.mkdir()
    tmp_path.chmod(0o777)
    ok = run(f"import os\nos.makedirs({str(outside)!r}, exist_ok=True)\n")
    assert ok.passed, ok.detail
    new = tmp_path / "new_folder"
    bad = run(f"import os\nos.makedirs({str(new)!r}, exist_ok=True)\n")
    assert bad.category == "blocked", bad.detail
    assert not new.exists()


def test_a_package_may_load_its_own_library_and_nothing_else() -> None:
    binding = pytest.importorskip("llvmlite.binding")
    library = Path(binding.ffi.__file__).with_name("libllvmlite.so")
    if not library.exists():
        pytest.skip("llvmlite without its bundled library")
    # llvmlite (under numba, under umap) opens its bundled library through ctypes and calls it.
    ok = run("import llvmlite.binding as llvm\nassert llvm.llvm_version_info[0] >= 10\n"
             "import ctypes\nctypes.pythonapi.PyCell_Get\n"
             "ctypes.c_uint64.in_dll(ctypes.pythonapi, '_Py_HashSecret')\n",
             sandbox.Limits(timeout=20))
    assert ok.passed, (ok.detail, ok.violations)
    for program in (
        # the same library, copied into the sample's folder first: a file the sample wrote
        f"import ctypes, shutil\nshutil.copy({str(library)!r}, 'mine.so')\n"
        "ctypes.CDLL('./mine.so')\n",
        "import ctypes\nctypes.CDLL('libc.so.6')\n",
        # the rest of the C API, and libc, through the process's own handle
        "import ctypes\nctypes.pythonapi.Py_GetRecursionLimit()\n",
        "import ctypes\nctypes.pythonapi.system\n",
    ):
        result = run(program)
        assert result.category == "blocked", (program, result.detail)
