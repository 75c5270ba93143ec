import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import EarthLocation
from astropy.io import fits
from astropy.table import Table

from bayesrb.errors import BadInputError
from bayesrb.labels.automatic import clear_of, match_minor_planets, recurrent, sample_bogus
from bayesrb.labels.catalogues import read_catalogue
from bayesrb.labels.observing import read_visit_observation
from bayesrb.labels.settings import AugmentSettings, LabelSettings
from bayesrb.labels.steps import automatic_labels, truth_labels
from bayesrb.labels.synthetic import stars_on_image
from bayesrb.minorplanets.ephemeris import observe
from bayesrb.minorplanets.synthetic import orbits_through_fields
from bayesrb.minorplanets.visibility import minor_planets_on_image
from bayesrb.simulate.survey import make_wcs

ARCSEC = 1 / 3600


def _planets(ra, dec, mag, names=None):
    names = names or [f"P{i}" for i in range(len(ra))]
    return Table({"designation": names, "ra": np.asarray(ra, float), "dec": np.asarray(dec, float),
                  "mag": np.asarray(mag, float)})


def test_match_is_one_to_one_nearest_and_positive_only():
    planets = _planets([10.0, 10.01], [0.0, 0.0], [18.0, 19.0])
    ra = np.array([10.0 + 1 * ARCSEC, 10.0 + 2 * ARCSEC, 10.01, 10.01 + 0.5 * ARCSEC, 30.0])
    dec = np.zeros(5)
    sign = np.array([1, 1, -1, 1, 1])
    match = match_minor_planets(ra, dec, sign, planets, radius_arcsec=3.0)
    assert match.candidate.tolist() == [0, 3]  # nearest positive detection of each planet
    assert match.planet.tolist() == [0, 1]
    np.testing.assert_allclose(match.separation_arcsec, [1.0, 0.5], atol=1e-6)


def test_match_respects_radius_and_empty_inputs():
    planets = _planets([10.0], [0.0], [18.0])
    far = match_minor_planets(np.array([10.0 + 4 * ARCSEC]), np.zeros(1), np.ones(1), planets, 3.0)
    assert len(far.candidate) == 0
    assert len(match_minor_planets(np.array([]), np.array([]), np.array([]), planets, 3.0).candidate) == 0


def test_clear_of_and_bogus_sample():
    ra = np.array([0.0, 5 * ARCSEC, 20 * ARCSEC, 1.0])
    clear = clear_of(ra, np.zeros(4), np.array([0.0]), np.array([0.0]), radius_arcsec=10.0)
    assert clear.tolist() == [False, False, True, True]
    eligible = np.array([True, False, True, True, False, True])
    a = sample_bogus(eligible, 3, np.random.default_rng(1))
    b = sample_bogus(eligible, 3, np.random.default_rng(1))
    assert a.tolist() == b.tolist() and len(set(a)) == 3 and eligible[a].all()
    assert sample_bogus(eligible, 10, np.random.default_rng(1)).tolist() == [0, 2, 3, 5]


def test_automatic_labels_on_a_hand_built_visit():
    # detections: 0 on a bright planet, 1 on a too-faint planet, 2 near a variable, 3-5 free
    ra = np.array([10.0, 10.1, 10.2, 10.3, 10.4, 10.5])
    meta = {"ra": ra, "dec": np.zeros(6), "sign": np.ones(6, int)}
    planets = _planets([10.0, 10.1], [0.0, 0.0], [19.0, 21.5], ["A", "B"])
    avoid_ra = np.concatenate([[10.2], planets["ra"]])
    avoid_dec = np.zeros(3)
    settings = LabelSettings(mp_limit_mag=20.5, bogus_per_visit=10)
    table = automatic_labels(meta, planets, avoid_ra, avoid_dec, settings, np.random.default_rng(0))
    assert table["label"].tolist() == [1, -1, -1, 0, 0, 0]
    assert table["kind"].tolist() == ["mp", "", "", "randjunk", "randjunk", "randjunk"]
    assert table["mp_designation"][0] == "A" and table["mp_predicted_mag"][0] == 19.0


def test_truth_labels_override_skip_negative_detections_and_withdraw_contradicted_labels():
    meta = {"sign": np.array([1, 1, 1, -1, 1, 1, 1, 1, 1])}
    truth = Table({"truth_kind": ["sn", "nuclear", "hostless", "sn", "hot_pixel", "variable_star", "agn",
                                  "hot_pixel", "mp"],
                   "truth_host_offset_arcsec": [2.0, 0.1, np.nan, 1.0] + [np.nan] * 5,
                   "truth_host_hlr_arcsec": [4.0, 2.0, np.nan, 1.0] + [np.nan] * 5})
    table = {"label": np.array([0, -1, -1, -1, 0, 0, 0, 1, 1], np.int8),
             "kind": np.array(["randjunk", "", "", "", "randjunk", "randjunk", "randjunk", "mp", "mp"], dtype=object),
             "host_offset_arcsec": np.full(9, np.nan), "host_offset_hlr": np.full(9, np.nan)}
    assert truth_labels(meta, truth, table) == 3
    assert table["kind"].tolist() == ["injected_sn", "injected_nuclear", "injected_hostless", "", "randjunk",
                                      "", "", "", "mp"]
    assert table["label"].tolist() == [1, 1, 1, -1, 0, -1, -1, -1, 1]
    np.testing.assert_allclose(table["host_offset_hlr"][:3], [0.5, 0.05, np.nan])


def test_predicted_planets_on_image_match_the_ephemeris():
    site = EarthLocation.from_geodetic(-17.88 * u.deg, 28.76 * u.deg, 2300 * u.m)
    mjd = 61000.0
    orbits = orbits_through_fields([(60.0, 20.0, 0.1, mjd, 5)], np.random.default_rng(3), site,
                                   mag_range=(16.0, 20.0))
    wcs = make_wcs(60.0, 20.0, 0.0, (400, 400), 1.24)
    on_image = minor_planets_on_image(orbits, mjd, wcs, (400, 400), site)
    ephemeris = observe(orbits, mjd, site)
    x, y = wcs.all_world2pix(ephemeris.ra_deg, ephemeris.dec_deg, 0)
    inside = (x > -0.5) & (x < 399.5) & (y > -0.5) & (y < 399.5)
    assert len(on_image) == inside.sum() >= 1
    np.testing.assert_allclose(on_image["x"], x[inside])
    assert len(minor_planets_on_image(orbits, mjd, wcs, (400, 400), site, limit_mag=0.0)) == 0


def _science_file(path, header_cards, subexposure_mjds=()):
    wcs = make_wcs(60.0, 20.0, 0.0, (32, 32), 1.24)
    data = np.random.default_rng(0).normal(100, 1, (32, 32)).astype(np.float32)
    primary = fits.PrimaryHDU(data, wcs.to_header())
    primary.header.update(header_cards)
    hdus = [primary]
    for k, mjd in enumerate(subexposure_mjds):
        hdus.append(fits.ImageHDU(data, fits.Header({"MJD-OBS": mjd}), name=f"SUBEXP{k + 1}"))
    fits.HDUList(hdus).writeto(path)
    return path


def test_visit_observation_epoch_and_site(tmp_path):
    site = {"OBSGEO-L": -17.88, "OBSGEO-B": 28.76, "OBSGEO-H": 2300.0}
    stacked = _science_file(tmp_path / "a.fits", {"MJD-OBS": 61000.0, **site}, [61000.1, 61000.3])
    observation = read_visit_observation(stacked)
    assert observation.mjd_utc == pytest.approx(61000.2)
    assert observation.location.lat.deg == pytest.approx(28.76)
    single = _science_file(tmp_path / "b.fits", {"MJD-OBS": 61000.0, "EXPTIME": 864.0, **site})
    assert read_visit_observation(single).mjd_utc == pytest.approx(61000.005)


def test_visit_observation_names_the_file_when_site_or_time_is_missing(tmp_path):
    no_site = _science_file(tmp_path / "nosite.fits", {"MJD-OBS": 61000.0})
    with pytest.raises(BadInputError, match="nosite.fits.*observatory location"):
        read_visit_observation(no_site)
    no_time = _science_file(tmp_path / "notime.fits", {"OBSGEO-L": 0.0, "OBSGEO-B": 0.0, "OBSGEO-H": 0.0})
    with pytest.raises(BadInputError, match="notime.fits.*observation time"):
        read_visit_observation(no_time)


@pytest.mark.parametrize("card, value, subexposure_mjds, source", [
    ("MJD-OBS", "tonight", (), "bad.fits"),
    ("EXPTIME", "long", (), "bad.fits"),
    ("OBSGEO-B", "north", (), "bad.fits"),
    ("OBSGEO-H", "nan", (), "bad.fits"),
    ("MJD-OBS", 61000.0, (61000.1, "later"), r"bad.fits\[SUBEXP2\]"),
])
def test_visit_observation_names_the_file_and_card_that_is_not_a_number(tmp_path, card, value, subexposure_mjds,
                                                                        source):
    cards = {"MJD-OBS": 61000.0, "OBSGEO-L": -17.88, "OBSGEO-B": 28.76, "OBSGEO-H": 2300.0, card: value}
    bad = _science_file(tmp_path / "bad.fits", cards, subexposure_mjds)
    card_name = "MJD-OBS" if subexposure_mjds else card
    with pytest.raises(BadInputError, match=rf"{source}: header card {card_name} = .* is not a finite number"):
        read_visit_observation(bad)


def test_catalogue_errors_name_file_and_problem(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("ra,dec,mag\n10.0,1.0,18\n")
    assert len(read_catalogue(good)) == 1
    no_column = tmp_path / "galaxies.csv"
    no_column.write_text("ra,dec,mag\n10.0,1.0,18\n")
    with pytest.raises(BadInputError, match=r"galaxies.csv.*missing column\(s\) \['hlr_arcsec'\]"):
        read_catalogue(no_column, required=("ra", "dec", "hlr_arcsec"))
    bad_value = tmp_path / "bad.csv"
    bad_value.write_text("ra,dec\n10.0,1.0\nx,2.0\n")
    with pytest.raises(BadInputError, match="bad.csv.*'ra'.*row 2"):
        read_catalogue(bad_value)
    with pytest.raises(BadInputError, match="not found"):
        read_catalogue(tmp_path / "missing.csv")


def test_recurrent_detections_far_from_stars_are_flagged():
    ra = np.array([10.0, 10.1, 10.2, 10.3])
    dec = np.zeros(4)
    sign = np.array([1, 1, 1, -1])
    # another visit saw 0 (unexplained), 1 (but a star is there) and 3 (negative here); nothing near 2
    others = [(np.array([10.0 + 1 * ARCSEC, 10.1, 10.3]), np.zeros(3))]
    stars = (np.array([10.1 + 0.5 * ARCSEC]), np.zeros(1))
    flagged = recurrent(ra, dec, sign, others, *stars, radius_arcsec=2.0)
    assert flagged.tolist() == [True, False, False, False]
    assert not recurrent(ra, dec, sign, others, *stars, radius_arcsec=0.0).any()
    assert not recurrent(ra, dec, sign, [], *stars, radius_arcsec=2.0).any()
    meta = {"ra": ra, "dec": dec, "sign": sign}
    table = automatic_labels(meta, _planets([], [], []), np.array([]), np.array([]), LabelSettings(),
                             np.random.default_rng(0), recurring=flagged)
    assert table["label"].tolist() == [-1, 0, 0, 0]


def test_variable_stars_are_catalogued_stars_in_range_inside_the_image_and_clear():
    wcs = make_wcs(150.0, 2.0, 0.0, (200, 300), 1.0)
    x = np.array([150.0, 150.0, 5.0, 150.0, 150.0, 200.0])
    y = np.array([100.0, 120.0, 100.0, 80.0, 60.0, 100.0])
    ra, dec = wcs.all_pix2world(x, y, 0)
    mag = np.array([16.0, 13.0, 16.0, 19.5, 18.0, 17.0])  # too bright; fine; near the edge; too faint; fine; fine
    stars = Table({"ra": ra, "dec": dec, "mag": mag})
    avoid_ra, avoid_dec = wcs.all_pix2world([201.0], [100.0], 0)  # 1" from the last star
    chosen = stars_on_image(stars, wcs, (200, 300), AugmentSettings(variable_star_mag_range=(14.0, 19.0)), 20.0,
                            avoid_ra, avoid_dec)
    np.testing.assert_allclose(chosen["y"], [100.0, 60.0], atol=1e-6)
    np.testing.assert_allclose(chosen["mag"], [16.0, 18.0])
