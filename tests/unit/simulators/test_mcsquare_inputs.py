"""MCsquare's input writers, output readers and progress parsing, without running the binary."""

from __future__ import annotations

import importlib.util
import math
import stat
from pathlib import Path

import numpy as np
import pytest

from cyclotron.simulators.editor.records import BeamSpec, Medium, VoxelGrid
from cyclotron.simulators.mcsquare import inputs, install, run
from cyclotron.simulators.mcsquare.outputs import (
    OutputError,
    PrimaryCount,
    primaries_simulated,
    read_mhd,
)
from cyclotron.simulators.mcsquare.progress import parse_progress

WATER = Medium(276, "WATER, LIQUID", 1.0)
LEAD = Medium(82, "LEAD", 11.35)
VACUUM = Medium(1000, "VACUUM", 0.0)
HOLE = Medium(0, "BLACK HOLE", 0.0)

# Lines captured from a real run (150 MeV, 20000 primaries, 1 thread), and a run whose
# beam partly missed the grid.
CAPTURED = "\n".join(
    line + " "  # MCsquare ends its lines with a space
    for line in (
        "",
        "Initialization time: 0.204318 s",
        "Simulation started (2026-11-23 06:43:35)",
        " 10.0 %",
        " 40.0 %",
        " 50.0 % (stat uncertainty: 2.32 %)",
        " 100.0 % (stat uncertainty: 2.06 %)",
        "Nbr primaries simulated: 20000",
        "MC computation time: 1.472293 s",
        "Total computation time: 1.678110 s",
    )
)


def _grid(zones: np.ndarray, media: tuple[Medium, ...], zone_media: list[int]) -> VoxelGrid:
    return VoxelGrid(
        origin=np.array([-1.0, -2.0, 0.0]),
        spacing=np.array([0.5, 0.25, 0.1]),
        zones=zones.astype(np.int32),
        zone_names=tuple(f"zone{i}" for i in range(len(zone_media))),
        zone_media=np.array(zone_media, dtype=np.int32),
        media=media,
    )


def _layered() -> VoxelGrid:
    """4 x 16 x 10 voxels: water, a lead slab at y index 5, vacuum and outside-world corners."""
    zones = np.zeros((4, 16, 10), dtype=np.int32)
    zones[:, 5, :] = 1
    zones[0, 0, 0] = 2
    zones[3, 15, 9] = -1
    return _grid(zones, (WATER, LEAD, VACUUM), [0, 1, 2])


def _beam(direction: tuple[float, float, float], **extra: float) -> BeamSpec:
    return BeamSpec(
        energy=150.0,
        energy_sigma=1.5,
        position=np.array([0.2, -0.3, 0.5]),  # inside the grid: every direction meets it
        direction=np.array(direction, dtype=np.float64),
        **extra,
    )


@pytest.mark.parametrize(
    ("icru", "label"),
    [(276, 17), (104, 13), (223, 64), (82, 12), (120, 38), (26, 9), (74, 11), (13, 5)],
)
def test_icru_ids_map_to_mcsquare_materials(icru: int, label: int) -> None:
    assert inputs.supported_icru(icru)
    assert inputs.mcsquare_material(Medium(icru, "m", 1.7)) == (label, 1.7)


def test_vacuum_and_black_hole_become_thinnest_air_and_unknown_ids_are_refused() -> None:
    for medium in (VACUUM, HOLE):
        assert inputs.mcsquare_material(medium) == (inputs.AIR_LABEL, inputs.VACUUM_DENSITY)
        assert inputs.supported_icru(medium.icru)
    assert not inputs.supported_icru(999)
    with pytest.raises(ValueError, match="ICRU 999"):
        inputs.mcsquare_material(Medium(999, "unobtainium", 1.0))
    with pytest.raises(ValueError, match="density"):
        inputs.mcsquare_material(Medium(276, "water", 0.0))


def test_every_voxel_gets_its_media_hu_and_the_tables_give_its_density() -> None:
    grid = _layered()
    tables = inputs.ct_tables(grid)
    assert tables.rows == ((0, 17, 1.0), (10, 12, 11.35), (20, 13, 1e-6), (30, 13, 1e-6))
    assert tables.hu.shape == grid.shape
    assert tables.hu[1, 2, 3] == 0 and tables.hu[2, 5, 7] == 10
    assert tables.hu[0, 0, 0] == 20 and tables.hu[3, 15, 9] == 30
    density, material = inputs.hu_table_texts(tables.rows)
    assert [line.split() for line in density.splitlines()[1:]] == [
        ["0", "1"], ["10", "11.35"], ["20", "1e-06"], ["30", "1e-06"]
    ]  # fmt: skip
    assert [line.split() for line in material.splitlines()[1:]] == [
        ["-5", "17"], ["5", "12"], ["15", "13"], ["25", "13"]
    ]  # fmt: skip


def test_dose_is_dropped_outside_the_world_in_vacuum_and_black_holes() -> None:
    zones = np.zeros((2, 2, 2), dtype=np.int32)
    zones[0, 0, 0], zones[1, 1, 1], zones[0, 1, 0] = -1, 1, 2
    dead = inputs.dead_voxels(_grid(zones, (WATER, HOLE, VACUUM), [0, 1, 2]))
    assert dead.sum() == 3 and dead[0, 0, 0] and dead[1, 1, 1] and dead[0, 1, 0]


def test_the_ct_round_trips_through_mhd_with_x_reversed_on_disk(tmp_path: Path) -> None:
    values = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    inputs.write_mhd(tmp_path / "CT.mhd", values, (5.0, 2.5, 1.0))
    header = (tmp_path / "CT.mhd").read_text()
    assert "DimSize = 4 3 2" in header and "ElementSpacing = 5 2.5 1" in header
    on_disk = np.fromfile(tmp_path / "CT.raw", dtype="<f4")
    assert on_disk[0] == values[3, 0, 0]  # x fastest, starting from the grid's last x
    assert on_disk[4] == values[3, 1, 0] and on_disk[12] == values[3, 0, 1]
    assert np.array_equal(read_mhd(tmp_path / "CT.mhd", (4, 3, 2)), values)
    with pytest.raises(OutputError, match="DimSize"):
        read_mhd(tmp_path / "CT.mhd", (2, 3, 4))


@pytest.mark.parametrize(
    "direction",
    [(0, 0, 1), (0, 0, -1), (0, -1, 0), (0, 1, 0), (1, 0, 0), (-1, 0, 0), (0.5, 0.3, 0.8)],
)
def test_the_plan_angles_point_the_beam_along_its_direction(
    direction: tuple[float, float, float],
) -> None:
    grid = _layered()
    beam = _beam(direction)
    geometry = inputs.beam_geometry(grid, beam)
    along, _, _ = inputs._bev_axes(
        math.radians(geometry.gantry_deg), math.radians(geometry.couch_deg)
    )
    unit = np.array(direction) / np.linalg.norm(direction)
    assert np.allclose(along, unit, atol=1e-9)
    start = np.array(geometry.isocenter_mm) - geometry.nozzle_mm * unit
    assert np.allclose(start, 10 * (beam.position - grid.origin), atol=0.01)  # mm


def test_a_beam_along_minus_y_needs_no_rotation_and_spot_axes_follow_the_editor() -> None:
    geometry = inputs.beam_geometry(_layered(), _beam((0, -1, 0), sigma_x=0.3, sigma_y=0.1))
    assert geometry.gantry_deg == pytest.approx(0) and geometry.couch_deg == pytest.approx(0)
    assert geometry.spot_mm == (3.0, 1.0)
    along_z = inputs.beam_geometry(_layered(), _beam((0, 0, 1), sigma_x=0.3, sigma_y=0.1))
    assert along_z.spot_mm == (1.0, 3.0)  # MCsquare's spot x lies along the editor's y here
    point = inputs.beam_geometry(_layered(), _beam((0, 0, 1)))
    assert point.spot_mm == (inputs.MIN_SPOT_MM,) * 2
    assert point.divergence_rad == (inputs.MIN_DIVERGENCE_RAD,) * 2


def test_plan_bdl_and_config_carry_the_beam_and_run_settings(tmp_path: Path) -> None:
    grid = _layered()
    config = inputs.prepare_run(tmp_path, grid, _beam((0, 0, 1), sigma_x=0.4), 30000, 42, 2)
    written = {p.name for p in tmp_path.iterdir()}
    assert written >= {"CT.mhd", "CT.raw", "Plan.txt", "BDL.txt", "config.txt"}
    settings = dict(line.split(None, 1) for line in config.read_text().splitlines())
    assert settings["RNG_Seed"] == "42" and settings["Num_Primaries"] == "30000"
    assert settings["Num_Threads"] == "2" and settings["LET_MHD_Output"] == "True"
    assert settings["Dose_to_Water_conversion"] == "Disabled"
    plan = (tmp_path / "Plan.txt").read_text().splitlines()
    assert plan[plan.index("####Energy (MeV)") + 1] == "150.000000"
    assert plan[-1] == "0.000000 0.000000 1.000000000"
    bdl = (tmp_path / "BDL.txt").read_text()
    assert bdl.startswith("--UPenn beam model (double gaussian)--")
    assert "Range Shifter" not in bdl and "RS_ID" not in bdl
    rows = [line.split() for line in bdl.splitlines()[-2:]]
    assert [float(r[0]) for r in rows] == [148.5, 151.5]
    assert all(float(r[2]) == pytest.approx(1.0) for r in rows)  # 1.5 MeV = 1 % of 150
    assert all(float(r[8]) == pytest.approx(4.0) for r in rows)  # sigma_x 4 mm along y'


def test_the_let_run_stops_deuterons_and_alphas_where_they_are_born(tmp_path: Path) -> None:
    """Issue 19, item 6: MCsquare's LET averaged over the deuterons and alphas it transports
    (16.9 MeV/cm at ex1's entrance against 6.16 for protons); the run that gives the LET
    deposits them on the spot, where MCsquare scores no LET, and the dose run keeps them."""

    def settings(**options: bool) -> dict[str, str]:
        config = inputs.prepare_run(tmp_path, _layered(), _beam((0, 0, 1)), 100, 1, **options)
        return dict(line.split(None, 1) for line in config.read_text().splitlines())

    full, protons = settings(), settings(heavy_secondaries=False)
    for key in ("Simulate_Secondary_Deuterons", "Simulate_Secondary_Alphas"):
        assert (full[key], protons[key]) == ("True", "False")
    assert protons["Simulate_Nuclear_Interactions"] == "True"


def test_prepare_run_refuses_what_mcsquare_cannot_run(tmp_path: Path) -> None:
    grid = _layered()
    with pytest.raises(ValueError, match="primaries"):
        inputs.prepare_run(tmp_path, grid, _beam((0, 0, 1)), 0, 1)
    carbon = BeamSpec(150.0, 0.0, np.zeros(3), np.array([0.0, 0, 1]), particle_z=6, particle_a=12)
    with pytest.raises(ValueError, match="protons only"):
        inputs.prepare_run(tmp_path, grid, carbon, 10, 1)
    with pytest.raises(ValueError, match="never enters"):
        away = BeamSpec(70.0, 0.0, np.array([0.0, 0.0, -1.0]), np.array([0.0, 0.0, -1.0]))
        inputs.prepare_run(tmp_path, grid, away, 10, 1)
    side = BeamSpec(70.0, 0.0, np.array([5.0, 0.0, 0.5]), np.array([0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="never enters"):
        inputs.prepare_run(tmp_path, grid, side, 10, 1)  # parallel to the grid, beside it


def test_progress_lines_become_reports() -> None:
    reports = [parse_progress(line) for line in CAPTURED.splitlines()]
    found = [r for r in reports if r is not None]
    assert [(r.done, r.total) for r in found] == [
        (10.0, 100.0), (40.0, 100.0), (50.0, 100.0), (100.0, 100.0), (20000.0, 20000.0)
    ]  # fmt: skip
    assert found[2].stage is not None and "2.32 %" in found[2].stage
    assert parse_progress("MC computation time: 1.472293 s ") is None


def test_primaries_simulated_come_from_the_last_count() -> None:
    assert primaries_simulated(CAPTURED) == PrimaryCount(20000, 0)
    partial = "Nbr primaries simulated: 5120 (12 generated outside the geometry) \n"
    assert primaries_simulated(partial) == PrimaryCount(5120, 12)
    assert primaries_simulated("ERROR: Configuration file not found!") is None


def test_install_names_the_fix_when_opentps_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    reason = install.unavailable_reason()
    assert reason is not None and "pip install --no-deps opentps-core==2.0.0" in reason


def test_the_binary_gets_its_run_bit(tmp_path: Path) -> None:
    binary = tmp_path / "MCsquare_linux"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o644)
    install.ensure_executable(binary)
    install.ensure_executable(binary)  # a second caller finds it done
    assert binary.stat().st_mode & stat.S_IXUSR


def test_a_long_materials_path_reaches_mcsquare_through_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    materials = tmp_path / "site-packages" / "Materials"
    materials.mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    assert run._materials_path(work, materials) == str(materials)
    monkeypatch.setattr(run, "MAX_MATERIALS_PATH", 10)  # MCsquare keeps 200 bytes of it
    assert run._materials_path(work, materials) == "Materials"
    assert (work / "Materials").resolve() == materials.resolve()
