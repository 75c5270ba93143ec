import logging

import numpy as np
import pytest
from skyfield.data import mpc

from bayesrb.errors import BadInputError
from bayesrb.minorplanets.mpcorb import (
    Orbits,
    pack_designation,
    pack_epoch,
    read_mpcorb,
    unpack_designation,
    unpack_epoch,
    write_mpcorb,
)

# A real MPCORB.DAT line: (1) Ceres, epoch 2024-09-10.0 TT.
CERES = (
    "00001    3.34  0.12 K249A  25.07130   73.41651   80.26070   10.58687  0.0785209  0.21407094   2.7670940"
    "  0 MPO722043  6751  92 1801-2024 0.60 M-v 30h MPCLINUX   0000      (1) Ceres              20240917"
)
HEADER = "MINOR PLANET CENTER ORBIT DATABASE (MPCORB)\n\nSome explanatory text.\n" + "-" * 160 + "\n"

# Half a unit of the last printed decimal of each column.
PRECISION = {
    "H": 0.005,
    "G": 0.005,
    "mean_anomaly_deg": 5e-6,
    "arg_perihelion_deg": 5e-6,
    "node_deg": 5e-6,
    "inclination_deg": 5e-6,
    "eccentricity": 5e-8,
    "mean_motion_deg_per_day": 5e-9,
    "semimajor_axis_au": 5e-8,
}


def random_orbits(rng, count):
    numbered = [str(n) for n in rng.choice([1, 433, 99_999, 100_001, 619_999, 620_000, 3_140_113], count // 2)]
    provisional = [f"20{rng.integers(10, 40)} KA{cycle or ''}" for cycle in range(count - len(numbered))]
    a = rng.uniform(0.8, 5.2, count)
    return Orbits(
        designation=numbered + provisional,
        H=rng.uniform(3, 25, count),
        G=rng.uniform(-0.1, 0.5, count),
        epoch_mjd=rng.integers(40_000, 70_000, count),
        mean_anomaly_deg=rng.uniform(0, 360, count),
        arg_perihelion_deg=rng.uniform(0, 360, count),
        node_deg=rng.uniform(0, 360, count),
        inclination_deg=rng.uniform(0, 60, count),
        eccentricity=rng.uniform(0, 0.9, count),
        mean_motion_deg_per_day=0.9856076686 / a**1.5,
        semimajor_axis_au=a,
    )


def test_reads_real_line_with_header(tmp_path):
    path = tmp_path / "MPCORB.DAT"
    path.write_text(HEADER + CERES + "\n\n")
    orbits = read_mpcorb(path)
    assert len(orbits) == 1
    assert orbits.designation[0] == "1"
    assert orbits.epoch_mjd[0] == 60563  # 2024-09-10
    assert (orbits.H[0], orbits.G[0]) == (3.34, 0.12)
    assert orbits.mean_anomaly_deg[0] == 25.07130
    assert orbits.eccentricity[0] == 0.0785209
    assert orbits.mean_motion_deg_per_day[0] == 0.21407094
    assert orbits.semimajor_axis_au[0] == 2.7670940


@pytest.mark.parametrize(
    ("packed", "unpacked"),
    [
        ("00001", "1"),
        ("99999", "99999"),
        ("A0001", "100001"),
        ("z9999", "619999"),
        ("~0000", "620000"),
        ("~000z", "620061"),
        ("J95X00A", "1995 XA"),
        ("K07Tf8A", "2007 TA418"),
        ("K24A12B", "2024 AB12"),
        ("_QC0000", "2026 CA620"),
        ("_QC0aEM", "2026 CZ6190"),
        ("_QCzzzz", "2026 CL591673"),
        ("PLS2040", "2040 P-L"),
        ("T1S3138", "3138 T-1"),
        ("T3S4101", "4101 T-3"),
    ],
)
def test_designations_pack_and_unpack(packed, unpacked):
    assert unpack_designation(packed) == unpacked
    assert pack_designation(unpacked) == packed


@pytest.mark.parametrize(("packed", "mjd"), [("K249A", 60563), ("J9611", 50083), ("K24AV", 60614), ("I9911", 14655)])
def test_epochs_pack_and_unpack(packed, mjd):
    assert unpack_epoch(packed) == mjd
    assert pack_epoch(mjd) == packed


@pytest.mark.parametrize("bad", ["K24D1", "K24BV", "K2420", "K24A0", "%2411", "K2A11"])
def test_invalid_packed_epoch_is_rejected(bad):
    with pytest.raises(ValueError, match="epoch"):
        unpack_epoch(bad)


def test_write_read_write_is_byte_identical_and_exact_to_printed_precision(tmp_path):
    orbits = random_orbits(np.random.default_rng(1), 400)
    first, second = tmp_path / "first.dat", tmp_path / "second.dat"
    write_mpcorb(orbits, first)
    back = read_mpcorb(first)
    write_mpcorb(back, second)
    assert first.read_bytes() == second.read_bytes()
    assert all(len(line) == 202 for line in first.read_text().splitlines())
    np.testing.assert_array_equal(back.designation, orbits.designation)
    np.testing.assert_array_equal(back.epoch_mjd, orbits.epoch_mjd)
    for column, half_unit in PRECISION.items():
        error = np.abs(getattr(back, column) - getattr(orbits, column))
        assert error.max() <= half_unit * (1 + 1e-9), column


def test_written_columns_match_skyfields_mpcorb_reader(tmp_path):
    orbits = random_orbits(np.random.default_rng(2), 20)
    path = tmp_path / "orbits.dat"
    write_mpcorb(orbits, path)
    with path.open("rb") as stream:
        frame = mpc.load_mpcorb_dataframe(stream)
    back = read_mpcorb(path)
    assert list(frame.designation_packed) == [pack_designation(d) for d in back.designation]
    assert [unpack_epoch(e) for e in frame.epoch_packed] == list(back.epoch_mjd)
    np.testing.assert_array_equal(frame.mean_anomaly_degrees, back.mean_anomaly_deg)
    np.testing.assert_array_equal(frame.argument_of_perihelion_degrees, back.arg_perihelion_deg)
    np.testing.assert_array_equal(frame.longitude_of_ascending_node_degrees, back.node_deg)
    np.testing.assert_array_equal(frame.inclination_degrees, back.inclination_deg)
    np.testing.assert_array_equal(frame.eccentricity, back.eccentricity)
    np.testing.assert_array_equal(frame.mean_daily_motion_degrees, back.mean_motion_deg_per_day)
    np.testing.assert_array_equal(frame.semimajor_axis_au, back.semimajor_axis_au)
    np.testing.assert_array_equal(frame.magnitude_H, back.H)
    assert list(frame.observations) == [20] * 20


def test_blank_g_defaults_to_0_15_and_blank_h_is_malformed(tmp_path, caplog):
    blank_g = CERES[:14] + " " * 5 + CERES[19:]
    blank_h = CERES[:8] + " " * 5 + CERES[13:]
    path = tmp_path / "blanks.dat"
    path.write_text(blank_g + "\n" + blank_h + "\n")
    with caplog.at_level(logging.WARNING):
        orbits = read_mpcorb(path, max_bad_fraction=0.5)
    assert list(orbits.G) == [0.15]
    assert "line 2 skipped: absolute magnitude H (columns 9-13) is blank" in caplog.text


def test_malformed_lines_are_reported_with_line_numbers_and_skipped(tmp_path, caplog):
    lines = [CERES] * 300
    lines[56] = CERES[:30] + "x" + CERES[31:]  # unreadable mean anomaly
    lines[199] = " " + CERES[:-1]  # shifted by one column
    lines[250] = CERES[:60]  # truncated
    path = tmp_path / "mpcorb.dat"
    path.write_text(HEADER + "\n".join(lines) + "\n")
    n_header = HEADER.count("\n")
    with caplog.at_level(logging.WARNING, logger="bayesrb.minorplanets.mpcorb"):
        orbits = read_mpcorb(path)
    assert len(orbits) == 297
    assert f"line {n_header + 57} skipped: mean_anomaly_deg" in caplog.text
    assert f"line {n_header + 200} skipped: column" in caplog.text
    assert f"line {n_header + 251} skipped: line has 60 characters" in caplog.text


def test_too_many_malformed_lines_raise_naming_the_file(tmp_path):
    lines = [CERES] * 100
    for index in (10, 20, 30):
        lines[index] = CERES.replace("0.0785209", "1.0785209")
    path = tmp_path / "bad.dat"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadInputError, match=r"bad\.dat: 3 of 100 lines malformed .* first at line 11: eccentricity"):
        read_mpcorb(path)
    assert len(read_mpcorb(path, max_bad_fraction=0.05)) == 97


def test_missing_or_empty_file_raises(tmp_path):
    with pytest.raises(BadInputError, match="missing.dat: cannot be read"):
        read_mpcorb(tmp_path / "missing.dat")
    empty = tmp_path / "empty.dat"
    empty.write_text(HEADER + "\n")
    with pytest.raises(BadInputError, match="empty.dat: holds no orbit lines"):
        read_mpcorb(empty)


def test_writer_refuses_fractional_epoch_and_leaves_no_file(tmp_path):
    orbits = random_orbits(np.random.default_rng(3), 4)
    fractional = Orbits(**{**orbits.__dict__, "epoch_mjd": orbits.epoch_mjd + 0.5})
    with pytest.raises(ValueError, match="whole days"):
        write_mpcorb(fractional, tmp_path / "out.dat")
    assert list(tmp_path.iterdir()) == []


def test_orbits_validates_lengths_and_subsets():
    orbits = random_orbits(np.random.default_rng(4), 6)
    with pytest.raises(ValueError, match="differ in length"):
        Orbits(**{**orbits.__dict__, "H": orbits.H[:-1]})
    picked = orbits.subset(orbits.H > np.median(orbits.H))
    assert len(picked) == 3
    np.testing.assert_array_equal(picked.designation, orbits.designation[orbits.H > np.median(orbits.H)])
    joined = Orbits.concatenate([orbits.subset([0]), orbits.subset(slice(1, None))])
    np.testing.assert_array_equal(joined.semimajor_axis_au, orbits.semimajor_axis_au)
