"""Surfaces: marching-cubes area and sphericity against exact spheres, anisotropy, mesh files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tools.errors import InputError
from tools.surface import export_surface_meshes, label_mesh, measure_surfaces, mesh_volume
from tools.types import PixelSize


def sphere_stack(radius: float, dz: float = 1.0, label: int = 1, size: int = 36) -> np.ndarray:
    """A sphere of ``radius`` (physical units, dx = dy = 1) sampled with Z spacing ``dz``."""
    nz = math.ceil((2 * radius + 8) / dz)
    z, y, x = np.mgrid[:nz, :size, :size].astype(float)
    centre = (nz * dz / 2 + 0.3, size / 2 + 0.2, size / 2 - 0.1)
    inside = (z * dz - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2
    return inside.astype(np.int32) * label


def read_ply(path):
    lines = path.read_text().splitlines()
    end = lines.index("end_header")
    n_v = int(next(s for s in lines if s.startswith("element vertex")).split()[-1])
    n_f = int(next(s for s in lines if s.startswith("element face")).split()[-1])
    verts = np.array([list(map(float, s.split())) for s in lines[end + 1 : end + 1 + n_v]])
    faces = np.array([list(map(int, s.split())) for s in lines[end + 1 + n_v :]])
    assert len(faces) == n_f
    return verts, faces


@pytest.mark.parametrize("radius", [10.0, 14.0])
def test_sphere_area_within_a_few_percent_and_sphericity_near_one(radius):
    table = measure_surfaces(sphere_stack(radius), pixel_size=PixelSize((1.0, 1.0, 1.0), "µm"))
    row = table.iloc[0]
    assert row["surface_area_um2"] == pytest.approx(4 * math.pi * radius**2, rel=0.03)
    assert row["volume_um3"] == pytest.approx(4 / 3 * math.pi * radius**3, rel=0.02)
    assert row["sphericity"] == pytest.approx(1.0, abs=0.02)
    assert not row["touches_border"]


def test_unsmoothed_marching_cubes_overestimates_area():
    raw = measure_surfaces(sphere_stack(10.0), smoothing=0.0).iloc[0]
    assert raw["surface_area_px2"] > 1.05 * 4 * math.pi * 100
    assert raw["sphericity"] < 0.95


def test_anisotropic_spacing_gives_the_same_physical_area():
    um = "µm"
    iso = measure_surfaces(sphere_stack(12.0, dz=1.0), pixel_size=PixelSize((1.0, 1.0, 1.0), um))
    aniso = measure_surfaces(sphere_stack(12.0, dz=2.0), pixel_size=PixelSize((2.0, 1.0, 1.0), um))
    a_iso, a_aniso = iso["surface_area_um2"].iloc[0], aniso["surface_area_um2"].iloc[0]
    assert a_aniso == pytest.approx(a_iso, rel=0.03)
    assert a_aniso == pytest.approx(4 * math.pi * 144, rel=0.04)
    assert aniso["volume_um3"].iloc[0] == pytest.approx(4 / 3 * math.pi * 12**3, rel=0.02)
    # Ignoring the spacing would measure a flattened sphere: far less area.
    ignored = measure_surfaces(sphere_stack(12.0, dz=2.0)).iloc[0]["surface_area_px2"]
    assert ignored < 0.8 * a_iso


def test_elongated_object_has_low_sphericity_and_labels_with_gaps():
    stack = np.zeros((12, 40, 40), np.int32)
    stack[3:9, 5:35, 18:22] = 9  # a rod; label 9, no labels 1-8
    stack[2:10, 2:10, 28:36] = 4  # a cube
    table = measure_surfaces(stack).set_index("label")
    assert list(table.index) == [4, 9]
    assert table.loc[9, "sphericity"] < 0.75
    assert table.loc[9, "sphericity"] < table.loc[4, "sphericity"]


def test_mesh_volume_of_a_closed_mesh_matches_the_sphere():
    verts, faces = label_mesh(sphere_stack(10.0, label=2), 2, (1.0, 1.0, 1.0))
    assert mesh_volume(verts, faces) == pytest.approx(4 / 3 * math.pi * 1000, rel=0.05)
    # Every edge of a closed surface is shared by exactly two triangles.
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()


def test_export_ply_and_obj_round_trip(tmp_path):
    stack = sphere_stack(6.0, dz=2.0, label=3, size=20)
    stack[:, :, :4] = 0
    stack[1:4, 1:4, 1:4] = 5
    pixel = PixelSize((2.0, 0.5, 0.5), "µm")
    ply = export_surface_meshes(stack, str(tmp_path / "cells.ply"), pixel_size=pixel)
    verts, faces = read_ply(tmp_path / "cells.ply")
    assert ply.endswith("cells.ply")
    assert set(verts[:, 3].astype(int)) == {3, 5}
    assert (faces[:, 0] == 3).all() and faces[:, 1:].max() < len(verts)
    # x y z order in physical units: z spans the stack depth (2 µm slices), x at most 10 µm.
    assert verts[:, 0].max() <= 20 * 0.5 and verts[:, 2].max() > 10

    export_surface_meshes(stack, str(tmp_path / "cells.obj"), pixel_size=pixel)
    text = (tmp_path / "cells.obj").read_text().splitlines()
    assert [s for s in text if s.startswith("o ")] == ["o label_3", "o label_5"]
    n_v = sum(s.startswith("v ") for s in text)
    obj_faces = np.array([list(map(int, s.split()[1:])) for s in text if s.startswith("f ")])
    assert n_v == len(verts) and len(obj_faces) == len(faces)
    assert obj_faces.min() == 1 and obj_faces.max() == n_v


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(InputError, match="3D"):
        measure_surfaces(np.ones((10, 10), np.int32))
    with pytest.raises(InputError, match="empty"):
        measure_surfaces(np.zeros((5, 10, 10), np.int32))
    with pytest.raises(InputError, match="integer"):
        measure_surfaces(np.ones((5, 10, 10), np.float32))
    with pytest.raises(InputError, match="'ply' or 'obj'"):
        export_surface_meshes(sphere_stack(4.0, size=12), str(tmp_path / "mesh.stl"))
    with pytest.raises(InputError, match="does not exist"):
        export_surface_meshes(sphere_stack(4.0, size=12), str(tmp_path / "no" / "mesh.ply"))


def test_a_single_voxel_object_still_gets_a_mesh():
    stack = np.zeros((5, 5, 5), np.int32)
    stack[2, 2, 2] = 1
    row = measure_surfaces(stack).iloc[0]
    assert row["n_faces"] > 0 and row["surface_area_px2"] > 0
