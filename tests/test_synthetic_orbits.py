import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import EarthLocation

from bayesrb.minorplanets.ephemeris import heliocentric_state, observe
from bayesrb.minorplanets.mpcorb import pack_designation, read_mpcorb, write_mpcorb
from bayesrb.minorplanets.synthetic import orbits_from_state, orbits_through_fields

LA_PALMA = EarthLocation.from_geodetic(-17.8792 * u.deg, 28.7603 * u.deg, 2300 * u.m)
TARGETS = [  # (ra_deg, dec_deg, radius_deg, mjd_utc, count)
    (150.0, 20.0, 1.0, 60600.1, 120),
    (10.0, -5.0, 0.5, 60650.9, 80),
    (250.0, 70.0, 2.0, 60700.3, 60),  # far from the ecliptic: needs inclined orbits
]
MAG_RANGE = (15.5, 21.0)


@pytest.fixture(scope="module")
def synthetic():
    return orbits_through_fields(TARGETS, np.random.default_rng(3), LA_PALMA, mag_range=MAG_RANGE)


def target_slices():
    stops = np.cumsum([target[4] for target in TARGETS])
    return [slice(stop - target[4], stop) for stop, target in zip(stops, TARGETS, strict=True)]


def separation_deg(ra_deg, dec_deg, ra0_deg, dec0_deg):
    ra, dec, ra0, dec0 = map(np.deg2rad, (ra_deg, dec_deg, ra0_deg, dec0_deg))
    cosine = np.sin(dec) * np.sin(dec0) + np.cos(dec) * np.cos(dec0) * np.cos(ra - ra0)
    return np.rad2deg(np.arccos(np.clip(cosine, -1, 1)))


def test_bodies_appear_inside_their_fields_with_requested_magnitudes(synthetic):
    assert len(synthetic) == sum(target[4] for target in TARGETS)
    for (ra, dec, radius, mjd, _), part in zip(TARGETS, target_slices(), strict=True):
        seen = observe(synthetic.subset(part), mjd, LA_PALMA)
        separation = separation_deg(seen.ra_deg, seen.dec_deg, ra, dec)
        assert separation.max() <= radius + 10 / 3600
        assert separation.max() > 0.8 * radius  # the whole field is used, not just its centre
        assert np.all((seen.r_au > 2.1 - 1e-6) & (seen.r_au < 3.3 + 1e-6))
        np.testing.assert_allclose(seen.mag_v, np.clip(seen.mag_v, *MAG_RANGE), atol=1e-9)
        assert np.ptp(seen.mag_v) > 0.8 * (MAG_RANGE[1] - MAG_RANGE[0])


def test_orbits_are_main_belt_like(synthetic):
    assert np.all(synthetic.eccentricity < 0.2)
    assert np.all((synthetic.semimajor_axis_au > 1.7) & (synthetic.semimajor_axis_au < 4.2))
    assert np.all(synthetic.inclination_deg < 90)  # prograde
    near_ecliptic = np.r_[target_slices()[0], target_slices()[1]]
    assert np.all(synthetic.inclination_deg[near_ecliptic] <= 20.0)
    assert np.all(synthetic.epoch_mjd == np.repeat([60600, 60651, 60700], [t[4] for t in TARGETS]))


def test_designations_are_unique_provisional_and_packable(synthetic):
    assert len(set(synthetic.designation)) == len(synthetic)
    assert all(len(pack_designation(designation)) == 7 for designation in synthetic.designation)
    assert synthetic.designation[0] == "2024 UA"  # epoch 2024-10-17 is in half-month U


def test_written_orbits_still_land_in_their_fields(synthetic, tmp_path):
    path = tmp_path / "synthetic.dat"
    write_mpcorb(synthetic, path)
    back = read_mpcorb(path)
    for (ra, dec, radius, mjd, _), part in zip(TARGETS, target_slices(), strict=True):
        seen = observe(back.subset(part), mjd, LA_PALMA)
        assert separation_deg(seen.ra_deg, seen.dec_deg, ra, dec).max() <= radius + 10 / 3600
        np.testing.assert_allclose(seen.mag_v, np.clip(seen.mag_v, *MAG_RANGE), atol=0.01)


def test_elements_to_state_to_elements_is_consistent(synthetic):
    state_mjd = 60610.25
    position, velocity = heliocentric_state(synthetic, state_mjd)
    again = orbits_from_state(position, velocity, state_mjd, synthetic.epoch_mjd, synthetic.designation, synthetic.H)
    np.testing.assert_allclose(again.semimajor_axis_au, synthetic.semimajor_axis_au, rtol=1e-12)
    np.testing.assert_allclose(again.eccentricity, synthetic.eccentricity, rtol=0, atol=1e-12)
    np.testing.assert_allclose(again.mean_motion_deg_per_day, synthetic.mean_motion_deg_per_day, rtol=1e-12)
    for column in ("inclination_deg", "node_deg", "arg_perihelion_deg", "mean_anomaly_deg"):
        difference = getattr(again, column) - getattr(synthetic, column)
        assert np.abs((difference + 180) % 360 - 180).max() < 1e-8, column
    position_again, velocity_again = heliocentric_state(again, state_mjd + 30)
    position_orig, velocity_orig = heliocentric_state(synthetic, state_mjd + 30)
    np.testing.assert_allclose(position_again, position_orig, rtol=0, atol=1e-12)
    np.testing.assert_allclose(velocity_again, velocity_orig, rtol=0, atol=1e-14)


def test_same_seed_gives_same_orbits():
    first = orbits_through_fields(TARGETS[:1], np.random.default_rng(7), LA_PALMA)
    second = orbits_through_fields(TARGETS[:1], np.random.default_rng(7), LA_PALMA)
    np.testing.assert_array_equal(first.mean_anomaly_deg, second.mean_anomaly_deg)
    np.testing.assert_array_equal(first.H, second.H)
