"""Cross-match of detected candidates with the simulator's truth table (simulated surveys only).

Only evaluation and label-purity checks may read these columns; nothing that builds labels does.
"""

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree

TRUTH_MATCH_RADIUS_PX = 3.0


def match_truth(x: np.ndarray, y: np.ndarray, truth: Table, radius_px: float = TRUTH_MATCH_RADIUS_PX) -> dict:
    """Attach to each candidate the nearest truth entry within ``radius_px``.

    Point-like entries match by distance; line-like entries (those with a finite ``angle_deg``: bad
    columns and satellite trails) match candidates anywhere along the line. Points win over lines.

    Parameters
    ----------
    x, y : numpy.ndarray
        Candidate pixel positions (0-based, ``x`` the column).
    truth : astropy.table.Table
        A visit's truth table (see :func:`bayesrb.simulate.survey.truth_table`).
    radius_px : float
        Match radius, pixels.

    Returns
    -------
    dict of str to numpy.ndarray
        ``truth_kind`` (``""`` when nothing matched), ``truth_source_id`` (-1 for artefacts and
        minor planets), ``truth_designation`` (minor planets), ``truth_mag`` (NaN when unknown) and
        ``truth_separation_px`` (NaN when nothing matched), ``truth_host_offset_arcsec`` and
        ``truth_host_hlr_arcsec`` (the host galaxy's offset and half-light radius for hosted sources,
        NaN otherwise).
    """
    n = len(x)
    columns = {
        "truth_kind": np.full(n, "", dtype=object), "truth_source_id": np.full(n, -1, dtype=np.int64),
        "truth_designation": np.full(n, "", dtype=object), "truth_mag": np.full(n, np.nan),
        "truth_separation_px": np.full(n, np.nan), "truth_host_offset_arcsec": np.full(n, np.nan),
        "truth_host_hlr_arcsec": np.full(n, np.nan),
    }
    if n == 0 or len(truth) == 0:
        return {k: v.astype(str) if v.dtype == object else v for k, v in columns.items()}
    distance, index = _nearest(np.asarray(x, float), np.asarray(y, float), truth, radius_px)
    hit = np.isfinite(distance)
    rows = index[hit]
    columns["truth_kind"][hit] = np.asarray(truth["kind"])[rows]
    columns["truth_source_id"][hit] = np.asarray(truth["source_id"])[rows]
    columns["truth_designation"][hit] = np.asarray(truth["designation"])[rows]
    for name in ("mag", "host_offset_arcsec", "host_hlr_arcsec"):
        columns[f"truth_{name}"][hit] = np.asarray(truth[name], dtype=float)[rows]
    columns["truth_separation_px"][hit] = distance[hit]
    return {k: v.astype(str) if v.dtype == object else v for k, v in columns.items()}


def _nearest(x: np.ndarray, y: np.ndarray, truth: Table, radius_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance to and index of the matching truth row per candidate (inf and -1 where none)."""
    angle = np.radians(np.asarray(truth["angle_deg"], dtype=float))
    is_line = np.isfinite(angle)
    tx, ty = np.asarray(truth["x"], float), np.asarray(truth["y"], float)
    distance, index = np.full(len(x), np.inf), np.full(len(x), -1)
    for line in np.flatnonzero(is_line):
        offset = np.abs((x - tx[line]) * np.sin(angle[line]) - (y - ty[line]) * np.cos(angle[line]))
        closer = (offset <= radius_px) & (offset < distance)
        distance[closer], index[closer] = offset[closer], line
    points = np.flatnonzero(~is_line)
    if len(points):
        point_distance, nearest = cKDTree(np.column_stack([tx[points], ty[points]])).query(
            np.column_stack([x, y]), distance_upper_bound=radius_px)
        found = np.isfinite(point_distance)
        distance[found], index[found] = point_distance[found], points[nearest[found]]
    return distance, index
