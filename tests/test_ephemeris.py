import urllib.request
import warnings

import astropy.units as u
import astropy.utils.data
import numpy as np
import pytest
from astropy.coordinates import EarthLocation

from bayesrb.minorplanets.ephemeris import GAUSSIAN_GRAVITATIONAL_CONSTANT, hg_magnitude, observe, solve_kepler
from bayesrb.minorplanets.mpcorb import Orbits, read_mpcorb, write_mpcorb

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # skyfield-data warns that its bundled finals2000A.all has expired
    from skyfield.api import Loader, wgs84
    from skyfield.constants import GM_SUN_Pitjeva_2005_km3_s2
    from skyfield.data import mpc
    from skyfield_data import get_skyfield_data_path

LA_PALMA = EarthLocation.from_geodetic(-17.8792 * u.deg, 28.7603 * u.deg, 2300 * u.m)
EPOCHS_MJD_UTC = [60450.37, 60590.2, 60600.0, 60612.8, 60640.5]


def orbit_table():
    """Ceres (real elements), an e = 0.6 orbit, a near-Earth orbit passing 0.09-0.3 au, an inclined outer one."""
    a = np.array([2.7670940, 2.5, 1.1, 3.1])
    return Orbits(
        designation=["1", "2024 AB12", "2020 AB", "123456"],
        H=[3.34, 15.0, 20.0, 14.0],
        G=[0.12, 0.15, 0.15, 0.25],
        epoch_mjd=[60563, 60600, 60600, 60600],
        mean_anomaly_deg=[25.07130, 10.0, 60.0, 180.0],
        arg_perihelion_deg=[73.41651, 200.0, 150.0, 10.0],
        node_deg=[80.26070, 30.0, 140.0, 100.0],
        inclination_deg=[10.58687, 25.0, 6.0, 40.0],
        eccentricity=[0.0785209, 0.6, 0.3, 0.12],
        mean_motion_deg_per_day=np.round(np.rad2deg(GAUSSIAN_GRAVITATIONAL_CONSTANT / a**1.5), 8),
        semimajor_axis_au=a,
    )


@pytest.fixture(scope="module")
def skyfield_oracle(tmp_path_factory):
    """Skyfield positions (ra, dec in degrees, distance in au) of the orbits in ``orbit_table``."""
    path = tmp_path_factory.mktemp("orbits") / "orbits.dat"
    write_mpcorb(orbit_table(), path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the expired finals2000A.all again; builtin=True does not use it
        load = Loader(get_skyfield_data_path())
    timescale = load.timescale(builtin=True)
    planets = load("de421.bsp")
    site = planets["earth"] + wgs84.latlon(28.7603, -17.8792, elevation_m=2300)
    with path.open("rb") as stream:
        rows = mpc.load_mpcorb_dataframe(stream)
    bodies = [
        planets["sun"] + mpc.mpcorb_orbit(row, timescale, GM_SUN_Pitjeva_2005_km3_s2) for _, row in rows.iterrows()
    ]
    positions = {}
    for mjd in EPOCHS_MJD_UTC:
        observer = site.at(timescale.utc(1858, 11, 17 + mjd))
        radecs = [observer.observe(body).radec() for body in bodies]
        positions[mjd] = np.array([(ra._degrees, dec.degrees, dist.au) for ra, dec, dist in radecs]).T
    return path, positions


def separation_arcsec(ra1, dec1, ra2, dec2):
    ra1, dec1, ra2, dec2 = map(np.deg2rad, (ra1, dec1, ra2, dec2))
    chord = np.hypot(
        np.cos(dec1) * np.cos(ra1) - np.cos(dec2) * np.cos(ra2),
        np.hypot(np.cos(dec1) * np.sin(ra1) - np.cos(dec2) * np.sin(ra2), np.sin(dec1) - np.sin(dec2)),
    )
    return np.rad2deg(2 * np.arcsin(chord / 2)) * 3600


@pytest.mark.parametrize("mjd", EPOCHS_MJD_UTC)
def test_observe_agrees_with_skyfield_topocentric(skyfield_oracle, mjd):
    path, positions = skyfield_oracle
    ours = observe(read_mpcorb(path), mjd, LA_PALMA)
    ra, dec, distance = positions[mjd]
    # Measured: at most 0.004 arcsec beyond 0.5 au and 0.021 arcsec for the near-Earth orbit at 0.088 au,
    # where the few-km accuracy of erfa.epv00's Earth shows; distances agree within 3e-8 au.
    separation = separation_arcsec(ours.ra_deg, ours.dec_deg, ra, dec)
    assert separation.max() < 0.05
    assert separation[ours.delta_au > 0.5].max() < 0.01
    np.testing.assert_allclose(ours.delta_au, distance, rtol=0, atol=5e-8)


def test_oracle_covers_close_approach_and_topocentric_parallax(skyfield_oracle):
    path, _ = skyfield_oracle
    orbits = read_mpcorb(path)
    topocentric = observe(orbits, 60590.2, LA_PALMA)
    geocentric = observe(orbits, 60590.2, EarthLocation.from_geocentric(0, 0, 0, unit=u.m))
    assert 0.08 < topocentric.delta_au[2] < 0.1
    parallax = separation_arcsec(topocentric.ra_deg, topocentric.dec_deg, geocentric.ra_deg, geocentric.dec_deg)
    assert parallax[2] > 30  # so the 0.02 arcsec agreement above really tests the site position


@pytest.mark.filterwarnings("ignore::erfa.ErfaWarning")  # "dubious year": UTC beyond the known leap seconds
@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyWarning")  # polar motion: 50-yr mean
def test_observe_never_downloads(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(astropy.utils.data, "download_file", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    ephemeris = observe(orbit_table(), 62500.0, LA_PALMA)  # 2029, beyond the bundled IERS predictions
    assert attempts == []
    assert np.all(np.isfinite(ephemeris.ra_deg))


def test_kepler_solver_residual_is_tiny_up_to_e_0_95():
    eccentricity, mean_anomaly = np.meshgrid(np.linspace(0, 0.95, 96), np.linspace(-4 * np.pi, 4 * np.pi, 2001))
    eccentric = solve_kepler(mean_anomaly, eccentricity)
    residual = eccentric - eccentricity * np.sin(eccentric) - mean_anomaly
    wrapped = np.abs(np.remainder(residual + np.pi, 2 * np.pi) - np.pi)
    assert wrapped.max() < 1e-12


def test_kepler_solver_rejects_unbound_orbits():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        solve_kepler([1.0], [1.0])


def test_hg_magnitude_matches_hand_computation():
    # H = 15, G = 0.15, r = 2.5 au, delta = 1.6 au, alpha = 20 deg:
    # tan(10 deg) = 0.176327; phi1 = exp(-3.33 * 0.176327**0.63) = exp(-1.115899) = 0.327620
    # phi2 = exp(-1.87 * 0.176327**1.22) = exp(-0.225087) = 0.798447
    # V = 15 + 5 log10(4.0) - 2.5 log10(0.85 * 0.327620 + 0.15 * 0.798447) = 15 + 3.010300 + 0.999626
    assert hg_magnitude(15.0, 0.15, 2.5, 1.6, 20.0) == pytest.approx(19.009926, abs=2e-6)
    # At opposition the phase term vanishes: V = H + 5 log10(r delta).
    assert hg_magnitude(10.0, 0.4, 2.0, 1.0, 0.0) == pytest.approx(10.0 + 5 * np.log10(2.0), abs=1e-12)
