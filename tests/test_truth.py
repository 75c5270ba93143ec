import numpy as np
from astropy.table import Table

from bayesrb.simulate.survey import TRUTH_DEFAULTS
from bayesrb.simulate.truth import match_truth


def _truth(rows):
    columns = {k: [r.get(k, d) for r in rows] for k, d in TRUTH_DEFAULTS.items()}
    return Table(columns)


def test_match_points_lines_and_misses():
    truth = _truth([
        {"kind": "mp", "x": 10.0, "y": 10.0, "designation": "K25A00A", "mag": 19.0},
        {"kind": "sn", "x": 50.0, "y": 20.0, "source_id": 7, "mag": 18.5},
        {"kind": "bad_column", "x": 80.0, "y": 50.0, "angle_deg": 90.0},
        {"kind": "satellite", "x": 0.0, "y": 0.0, "angle_deg": 45.0},
    ])
    x = np.array([11.0, 50.5, 80.4, 120.0, 30.0, 200.0])
    y = np.array([10.0, 21.0, 3.0, 120.0, 29.0, 5.0])
    m = match_truth(x, y, truth, radius_px=3.0)
    assert list(m["truth_kind"]) == ["mp", "sn", "bad_column", "satellite", "satellite", ""]
    assert m["truth_designation"][0] == "K25A00A" and m["truth_source_id"][1] == 7
    assert np.isclose(m["truth_separation_px"][0], 1.0)
    assert np.isnan(m["truth_mag"][5]) and m["truth_source_id"][5] == -1


def test_empty_inputs():
    m = match_truth(np.array([]), np.array([]), _truth([{"kind": "mp"}]))
    assert all(len(v) == 0 for v in m.values())
    assert {"truth_host_offset_arcsec", "truth_host_hlr_arcsec"} <= set(m)


def test_host_columns_follow_the_matched_entry(tmp_path):
    truth = _truth([
        {"kind": "sn", "x": 40.0, "y": 40.0, "source_id": 3, "host_id": 9, "host_offset_arcsec": 2.5,
         "host_hlr_arcsec": 3.0},
        {"kind": "nuclear", "x": 90.0, "y": 10.0, "source_id": 4, "host_id": 8, "host_offset_arcsec": 0.04,
         "host_hlr_arcsec": 1.5},
        {"kind": "hostless", "x": 10.0, "y": 90.0, "source_id": 5},
    ])
    truth.write(tmp_path / "truth.ecsv", format="ascii.ecsv")  # as the workflow reads it back
    truth = Table.read(tmp_path / "truth.ecsv", format="ascii.ecsv")
    m = match_truth(np.array([41.0, 90.0, 10.0, 60.0]), np.array([40.0, 11.0, 90.0, 60.0]), truth)
    assert list(m["truth_kind"]) == ["sn", "nuclear", "hostless", ""]
    assert np.array_equal(m["truth_host_offset_arcsec"][:2], [2.5, 0.04])
    assert np.array_equal(m["truth_host_hlr_arcsec"][:2], [3.0, 1.5])
    assert np.all(np.isnan(m["truth_host_offset_arcsec"][2:])) and np.all(np.isnan(m["truth_host_hlr_arcsec"][2:]))
    assert m["truth_host_offset_arcsec"].dtype == float
