"""The saved Earth-orientation table: ephemerides bit-identical to astropy's own table, and bad files refused."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import EarthLocation
from astropy.io import fits
from astropy.utils import iers

from bayesrb.errors import BadInputError
from bayesrb.minorplanets.ephemeris import observer_state
from bayesrb.minorplanets.orientation import (
    INTERPOLATED_COLUMNS,
    earth_orientation_from,
    offline_iers,
    read_earth_orientation,
    write_earth_orientation,
)

SITE = EarthLocation.from_geodetic(-17.88 * u.deg, 28.76 * u.deg, 2300 * u.m)
#: 1973 (IERS-B values), 2000, 2017, 2024, the default survey's nights, and beyond the bundled predictions.
MJDS = (41700.3, 51544.5, 58000.1, 60500.7, 61000.9, 61003.2, 62000.0)


def _states(path=None):
    with earth_orientation_from(path):
        states = [observer_state(mjd, SITE) for mjd in MJDS]
    return np.array([[state.mjd_tt, *state.position_au, *state.sun_velocity_au_per_day] for state in states])


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("iers") / "earth_orientation.fits"
    write_earth_orientation(path)
    return path


def test_saved_columns_equal_astropys_own_nan_for_nan(table_path):
    saved = read_earth_orientation(table_path)
    with offline_iers():
        own = iers.IERS_Auto.open()
    for name in INTERPOLATED_COLUMNS:
        ours = np.asarray(getattr(saved[name], "value", saved[name]))
        theirs = np.asarray(getattr(own[name], "value", own[name]))
        assert np.array_equal(ours, theirs, equal_nan=ours.dtype.kind == "f"), name
    assert saved.meta["predictive_mjd"] == own.meta["predictive_mjd"]


@pytest.mark.filterwarnings("ignore:Tried to get polar motions")
def test_saved_table_gives_bit_identical_observer_states(table_path):
    np.testing.assert_array_equal(_states(table_path), _states(None))


@pytest.mark.filterwarnings("ignore:Tried to get polar motions")
def test_saved_table_is_the_one_used(table_path, tmp_path):
    shifted = tmp_path / "shifted.fits"
    with fits.open(table_path) as hdus:
        hdus[1].data["UT1_UTC"] += 1.0  # one second of the Earth's rotation: ~400 m at La Palma
        hdus.writeto(shifted)
    moved_km = np.linalg.norm(_states(shifted)[:, 1:4] - _states(table_path)[:, 1:4], axis=1) * 1.495978707e8
    assert np.all((moved_km > 0.2) & (moved_km < 0.6))


def test_not_a_table_is_one_clear_error(tmp_path):
    bad = tmp_path / "earth_orientation.fits"
    bad.write_text("not FITS")
    with pytest.raises(BadInputError, match="earth_orientation.fits.*not an Earth-orientation table"):
        with earth_orientation_from(bad):
            pass


def test_missing_column_is_one_clear_error(table_path, tmp_path):
    bad = tmp_path / "no_polar_motion.fits"
    with fits.open(table_path) as hdus:
        columns = [column for column in hdus[1].columns if column.name != "PM_x"]
        table = fits.BinTableHDU.from_columns(columns, header=hdus[1].header)
        fits.HDUList([fits.PrimaryHDU(), table]).writeto(bad)
    with pytest.raises(BadInputError, match=r"lacks the column\(s\) \['PM_x'\]"):
        with earth_orientation_from(bad):
            pass
