"""Context features from what ZTF packets carry: PS1 neighbours, reference-image history, known asteroids."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesrb.alerts.context import packet_features
from bayesrb.alerts.ingest import ingest_alerts
from bayesrb.context.features import NO_HOST_DDLR, NO_SOURCE_MAG
from bayesrb.context.models import CNN_COLUMNS, feature_columns
from bayesrb.context.settings import FeatureSettings
from bayesrb.stamps.shard import read_shard_meta

NAN = np.nan


def packets() -> pd.DataFrame:
    """Three alerts: a star 0.3" away (then a galaxy); a galaxy 1.2" away (then a star); nothing, in the south."""
    return pd.DataFrame({
        "mag": [18.0, 19.0, 20.0], "mag_err": [0.1, 0.05, 0.2], "fwhm": [2.0, 3.0, 0.0], "sign": [1, -1, 1],
        "stamp_flags": [0, 2, 0], "ndethist": [5, 1, 0], "jd": [2460000.5, 2460001.0, 2460002.0],
        "jdstarthist": [2459990.5, 2460001.0, NAN], "ra": [10.0, 150.0, 300.0], "dec": [20.0, 2.0, -40.0],
        "distpsnr1": [0.3, 1.2, NAN], "sgscore1": [0.98, 0.1, NAN], "srmag1": [17.5, 18.0, NAN],
        "distpsnr2": [8.0, 4.0, NAN], "sgscore2": [0.2, 0.9, NAN],
        "distpsnr3": [25.0, NAN, NAN], "sgscore3": [0.99, NAN, NAN],
        "ssdistnr": [NAN, 0.4, NAN], "ssmagnr": [NAN, 19.2, NAN],
        "distnr": [0.2, 5.0, NAN], "magnr": [17.6, 20.5, NAN],
    })


def test_every_catalogue_and_detection_feature_of_the_classifier_is_made():
    features = packet_features(packets())
    wanted = [name for name in feature_columns("all") if name not in CNN_COLUMNS]
    assert sorted(features) == sorted(wanted)
    assert all(values.shape == (3,) for values in features.values())


def test_ps1_neighbours_split_into_stars_and_galaxies_by_their_score():
    settings = FeatureSettings()
    f = packet_features(packets(), settings)
    np.testing.assert_allclose(f["stars_sep1_arcsec"][:2], [0.3, 4.0])
    np.testing.assert_allclose(f["stars_sep2_arcsec"][:2], [25.0, settings.search_radius_arcsec])
    np.testing.assert_allclose(f["stars_mag1"][:2], [17.5, NAN])  # the second's nearest star has no magnitude
    np.testing.assert_allclose(f["stars_count"][:2], [1, 1])
    np.testing.assert_allclose(f["stars_state"][:2], [1, 0])
    np.testing.assert_allclose(f["galaxies_sep1_arcsec"][:2], [8.0, 1.2])
    np.testing.assert_allclose(f["galaxies_state"][:2], [0, 1])
    np.testing.assert_allclose(f["host_sep_arcsec"][:2], [8.0, 1.2])
    np.testing.assert_allclose(f["host_mag_minus_candidate"][:2], [NAN, -1.0])
    assert np.isnan(f["host_ddlr"][:2]).all() and np.isnan(f["variables_state"]).all() and np.isnan(f["agn_mag1"]).all()


def test_the_south_is_not_covered_by_ps1_and_missing_matches_are_nothing_near():
    f = packet_features(packets().assign(dec=[20.0, 2.0, 10.0]))
    settings = FeatureSettings()
    assert (f["stars_sep1_arcsec"][2], f["stars_mag1"][2], f["stars_state"][2]) == (
        settings.search_radius_arcsec, NO_SOURCE_MAG, 0.0)
    assert (f["host_sep_arcsec"][2], f["host_ddlr"][2], f["host_hlr_arcsec"][2]) == (
        settings.host_search_radius_arcsec, NO_HOST_DDLR, 0.0)
    south = packet_features(packets())
    assert all(np.isnan(south[name][2]) for name in ("stars_sep1_arcsec", "galaxies_count", "host_sep_arcsec"))


def test_detection_history_and_minor_planet_features():
    f = packet_features(packets())
    np.testing.assert_allclose(f["snr"], 2.5 / np.log(10) / np.array([0.1, 0.05, 0.2]))
    np.testing.assert_allclose(f["fwhm_arcsec"], [2.02, 3.03, 0.0])
    np.testing.assert_allclose(f["history_n_earlier"], [4, 0, 0])
    np.testing.assert_allclose(f["history_days_since_first"], [10.0, 0.0, NAN])
    np.testing.assert_allclose(f["mp_sep_arcsec"], [FeatureSettings().mp_search_radius_arcsec, 0.4, 120.0])
    np.testing.assert_allclose(f["mp_mag"], [NO_SOURCE_MAG, 19.2, NO_SOURCE_MAG])
    assert f["host_offset_significance"][1] == pytest.approx(1.2 / (3.03 / f["snr"][1]))


def test_the_reference_image_features_are_the_nearest_reference_source():
    settings = FeatureSettings()
    f = packet_features(packets(), settings)
    np.testing.assert_allclose(f["ref_sep1_arcsec"], [0.2, 5.0, settings.search_radius_arcsec])
    np.testing.assert_allclose(f["ref_mag1"], [17.6, 20.5, NO_SOURCE_MAG])
    np.testing.assert_allclose(f["ref_state"], [1, 0, 0])
    assert all(np.isnan(f[name]).all() for name in ("ref_sep2_arcsec", "ref_count", "ref_extent1"))


ALERTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ztf_alerts"


@pytest.mark.skipif(not ALERTS.is_dir(), reason=f"the shared ZTF alert packets are not at {ALERTS}")
def test_the_shared_packets_give_finite_detection_features_and_their_known_asteroids(tmp_path):
    ingest_alerts([ALERTS], tmp_path / "alerts.zarr")
    meta = pd.DataFrame(read_shard_meta(tmp_path / "alerts.zarr")[0])
    f = packet_features(meta)
    assert np.isfinite(np.column_stack([f[name] for name in ("mag", "snr", "fwhm_arcsec", "sign")])).all()
    assert np.sum(f["mp_sep_arcsec"] < 2) == np.sum(meta["ssdistnr"] < 2) == 15
    assert set(np.unique(f["stars_state"][np.isfinite(f["stars_state"])])) <= {0.0, 1.0}
