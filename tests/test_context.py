import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from bayesrb.context.catalogues import CatalogueSource, Family, read_families, read_family
from bayesrb.context.features import (
    HOST_COLUMNS,
    NO_HOST_DDLR,
    NO_SOURCE_MAG,
    candidate_features,
    centroid_error_arcsec,
    directional_light_radius,
    host_features,
    neighbour_features,
)
from bayesrb.context.models import (
    CNN_DRAWS,
    censor,
    family_feature_columns,
    feature_importance,
    fit_classifier,
    fit_temperature,
    load_classifier,
    mean_log_loss,
    predict_with_spread,
    save_classifier,
    tempered,
)
from bayesrb.context.settings import ClassifierSettings, ContextSettings, FeatureSettings
from bayesrb.context.table import (
    EXCLUDED,
    check_no_leakage,
    classes_from_labels,
    classes_from_truth,
    context_splits,
    history_features,
    history_from_detections,
    read_context_labels,
)
from bayesrb.errors import BadInputError
from bayesrb.vocabulary import CONTEXT_CLASSES

RA0, DEC0 = 150.0, 20.0
ARCSEC = 1 / 3600


def offset(east_arcsec, north_arcsec, ra=RA0, dec=DEC0):
    """Position at small tangent-plane offsets (arcsec) from (ra, dec)."""
    return ra + east_arcsec * ARCSEC / np.cos(np.radians(dec)), dec + north_arcsec * ARCSEC


def family(name, east, north, mag=None, coverage=None, hlr=None, q=None, pa=None):
    ra, dec = offset(np.asarray(east, float), np.asarray(north, float))
    n = len(ra)
    def column(values, default):
        return np.full(n, default) if values is None else np.asarray(values, float)

    return Family(name, ra, dec, column(mag, 15.0), column(hlr, np.nan), column(q, 1.0), column(pa, 0.0), coverage)


def write_catalogue(path, columns, meta=None):
    table = Table(columns)
    table.meta.update(meta or {})
    table.write(path, format="ascii.ecsv", overwrite=True)
    return str(path)


# ------------------------------------------------------------------------------------------------ features


def test_neighbour_separations_counts_and_states():
    stars = family("stars", east=[1.0, 5.0, 30.0], north=[0.0, 0.0, 0.0], mag=[14.0, 16.0, 18.0])
    ra, dec = offset(np.array([0.0, 0.0]), np.array([0.0, 200.0]))
    settings = FeatureSettings(match_radius_arcsec=2.0, count_radius_arcsec=10.0, search_radius_arcsec=60.0)
    f = neighbour_features(stars, ra, dec, settings)
    assert f["stars_sep1_arcsec"][0] == pytest.approx(1.0, abs=1e-6)
    assert f["stars_sep2_arcsec"][0] == pytest.approx(5.0, abs=1e-6)
    assert f["stars_mag1"][0] == 14.0
    assert f["stars_count"][0] == 2  # 1" and 5" within 10"; 30" is not
    assert f["stars_state"][0] == 1.0
    # 200" north: nothing within the 60" search radius -> the radius, the faint sentinel, no match
    assert f["stars_sep1_arcsec"][1] == 60.0 and f["stars_sep2_arcsec"][1] == 60.0
    assert f["stars_mag1"][1] == NO_SOURCE_MAG and f["stars_count"][1] == 0 and f["stars_state"][1] == 0.0


def test_a_position_outside_the_footprint_is_missing_not_unmatched():
    footprint = np.array([[RA0, DEC0, 0.01]])  # 36" circle
    stars = family("stars", east=[0.0], north=[0.0], coverage=footprint)
    ra, dec = offset(np.array([3.0, 300.0]), np.array([0.0, 0.0]))
    f = neighbour_features(stars, ra, dec, FeatureSettings())
    assert f["stars_state"][0] == 0.0 and f["stars_sep1_arcsec"][0] == pytest.approx(3.0, abs=1e-6)
    assert all(np.isnan(f[name][1]) for name in f)


@pytest.mark.parametrize(("east", "north", "expected"), [
    (0.0, 1.0, 2.0 / np.sqrt(0.25) * 1.0),       # along the major axis (PA 0 = North): a = hlr / sqrt(q)
    (1.0, 0.0, 2.0 * np.sqrt(0.25)),             # along the minor axis: b = hlr * sqrt(q)
    (-1.0, 0.0, 2.0 * np.sqrt(0.25)),
])
def test_directional_light_radius_on_the_axes(east, north, expected):
    assert directional_light_radius(east, north, 2.0, 0.25, 0.0) == pytest.approx(expected)


def test_directional_light_radius_rotates_with_the_position_angle():
    along = directional_light_radius(1.0, 0.0, 2.0, 0.25, 90.0)  # major axis East
    assert along == pytest.approx(4.0)
    diagonal = directional_light_radius(1.0, 1.0, 2.0, 0.25, 45.0)
    assert diagonal == pytest.approx(4.0)


def test_the_host_is_the_galaxy_of_smallest_ddlr_not_the_nearest():
    # a small galaxy 3" East and a large one elongated North-South 5" North: dDLR 3/1 = 3 against 5/10 = 0.5
    galaxies = family("galaxies", east=[3.0, 0.0], north=[0.0, 5.0], mag=[18.0, 16.0], hlr=[1.0, 5.0],
                      q=[1.0, 0.25], pa=[0.0, 0.0])
    ra, dec = offset(np.array([0.0]), np.array([0.0]))
    host = host_features(galaxies, ra, dec, np.array([19.0]), np.array([0.5]), FeatureSettings())
    assert host["host_sep_arcsec"][0] == pytest.approx(5.0, abs=1e-5)
    assert host["host_offset_significance"][0] == pytest.approx(10.0, abs=1e-4)
    assert host["host_ddlr"][0] == pytest.approx(0.5, abs=1e-5)
    assert host["host_hlr_arcsec"][0] == 5.0
    assert host["host_mag_minus_candidate"][0] == pytest.approx(-3.0)


def test_no_galaxy_near_is_a_value_and_no_coverage_is_missing():
    galaxies = family("galaxies", east=[0.0], north=[0.0], hlr=[1.0], coverage=np.array([[RA0, DEC0, 0.05]]))
    ra, dec = offset(np.array([100.0, 1000.0]), np.array([0.0, 0.0]))
    host = host_features(galaxies, ra, dec, np.array([19.0, 19.0]), np.array([0.3, 0.3]),
                         FeatureSettings(host_search_radius_arcsec=30))
    assert host["host_ddlr"][0] == NO_HOST_DDLR and host["host_sep_arcsec"][0] == 30.0
    assert host["host_offset_significance"][0] == pytest.approx(100.0)
    assert all(np.isnan(host[name][1]) for name in HOST_COLUMNS)


def test_the_centroid_error_is_the_fwhm_over_the_signal_to_noise_ratio():
    np.testing.assert_allclose(centroid_error_arcsec(np.array([3.0, 3.0, 2.0, 0.0]), np.array([10.0, 0.0, 4.0, 9.0])),
                               [0.3, 3.0, 0.5, np.nan])


def test_candidate_features_with_no_catalogues_or_ephemeris_are_missing():
    ra, dec = offset(np.zeros(3), np.arange(3.0))
    meta = {"ra": ra, "dec": dec, "mag": np.full(3, 18.0), "mag_err": np.full(3, 0.1), "snr": np.full(3, 10.0),
            "fwhm": np.full(3, 2.0), "sign": np.array([1, -1, 1]), "flags": np.zeros(3), "stamp_flags": np.zeros(3)}
    features = candidate_features(meta, 1.5, {}, None, FeatureSettings())
    assert features["fwhm_arcsec"].tolist() == [3.0, 3.0, 3.0]
    assert features["sign"].tolist() == [1, -1, 1]
    missing = [name for name, values in features.items() if np.isnan(values).all()]
    assert "stars_state" in missing and "host_ddlr" in missing and "mp_sep_arcsec" in missing
    assert 0 <= features["abs_galactic_lat_deg"][0] <= 90


# ------------------------------------------------------------------------------------------------ catalogues


def test_families_ensemble_catalogues_dropping_duplicates_and_joining_footprints(tmp_path):
    ra, dec = offset(np.array([0.0, 20.0]), np.array([0.0, 0.0]))
    shallow = write_catalogue(tmp_path / "shallow.ecsv", {"ra": ra[:1], "dec": dec[:1], "mag": [15.0]},
                              {"coverage": [{"ra": RA0, "dec": DEC0, "radius_deg": 0.1}]})
    dra, ddec = offset(np.array([0.3, 20.0, 40.0]), np.array([0.0, 0.0, 0.0]))
    deep = write_catalogue(tmp_path / "deep.ecsv", {"ra": dra, "dec": ddec, "mag": [15.1, 19.0, 20.0],
                                                    "class": ["star", "star", "galaxy"]},
                           {"coverage": [{"ra": RA0 + 1, "dec": DEC0, "radius_deg": 0.1}]})
    stars = read_family("stars", [CatalogueSource(shallow), CatalogueSource(deep, {"class": "star"})])
    assert len(stars) == 2  # the deep entry 0.3" from the shallow one is the same star; the galaxy is not a star
    assert stars.mag.tolist() == [15.0, 19.0]
    assert stars.coverage.shape == (2, 3)
    assert stars.covers(np.array([RA0, RA0 + 1, RA0 + 3]), np.array([DEC0] * 3)).tolist() == [True, True, False]


def test_a_catalogue_without_coverage_covers_the_sky(tmp_path):
    path = write_catalogue(tmp_path / "agn.ecsv", {"ra": [10.0], "dec": [0.0], "mag": [18.0]})
    agn = read_families({"agn": [CatalogueSource(path)]})["agn"]
    assert agn.coverage is None and agn.covers(np.array([200.0]), np.array([-60.0])).tolist() == [True]


@pytest.mark.parametrize(("columns", "message"), [
    ({"ra": [1.0], "mag": [15.0]}, "missing column(s) ['dec']"),
    ({"ra": [1.0], "dec": [1.0], "mag": [15.0]}, "missing column(s) ['hlr_arcsec']"),
    ({"ra": [1.0, np.nan], "dec": [1.0, 2.0], "mag": [15.0, 16.0], "hlr_arcsec": [1.0, 1.0]},
     "column 'ra' has 1 non-numeric"),
    ({"ra": [1.0], "dec": [1.0], "mag": [15.0], "hlr_arcsec": [-1.0]}, "non-positive or non-finite hlr_arcsec"),
    ({"ra": [1.0, 2.0], "dec": [1.0, 2.0], "mag": [15.0, 16.0], "hlr_arcsec": [1.0, 1.0],
      "axis_ratio": ["0.5", "flat"]},
     "(or a value that is not a number), first in data row 2"),
])
def test_a_bad_catalogue_is_one_error_naming_the_file_and_column(tmp_path, columns, message):
    path = write_catalogue(tmp_path / "bad.ecsv", columns)
    with pytest.raises(BadInputError) as error:
        read_family("galaxies", [CatalogueSource(path)])
    assert str(path) in str(error.value) and message in str(error.value)


def test_an_unknown_family_and_a_selection_on_a_missing_column_are_errors(tmp_path):
    path = write_catalogue(tmp_path / "s.ecsv", {"ra": [1.0], "dec": [1.0], "mag": [15.0]})
    with pytest.raises(BadInputError, match="unknown catalogue family"):
        read_families({"quasars": [CatalogueSource(path)]})
    with pytest.raises(BadInputError, match="missing column 'class'"):
        read_family("stars", [CatalogueSource(path, {"class": "star"})])


# ------------------------------------------------------------------------------------------------ table


def test_history_counts_only_earlier_detections_of_the_same_field():
    ra, dec = offset(np.array([0.0, 0.5, 0.3, 0.0, 50.0]), np.zeros(5))
    field = np.array(["A", "A", "A", "B", "A"])
    mjd = np.array([1.0, 2.0, 3.0, 5.0, 4.0])
    history = history_features(field, mjd, ra, dec, radius_arcsec=2.0)
    assert history["history_n_earlier"].tolist() == [0, 1, 2, 0, 0]
    assert history["history_days_since_first"].tolist() == [0.0, 1.0, 2.0, 0.0, 0.0]


def test_history_from_a_detections_table_counts_only_earlier_detections_nearby():
    ra, dec = offset(np.array([0.0, 30.0]), np.zeros(2))  # two candidates at the visit's epoch, MJD 10
    detections_ra, detections_dec = offset(np.array([0.5, 1.0, 0.0, 30.0, 5.0]), np.zeros(5))
    detections = {"ra": detections_ra, "dec": detections_dec, "mjd": np.array([4.0, 7.0, 12.0, 9.5, 1.0])}
    history = history_from_detections(ra, dec, 10.0, detections, radius_arcsec=2.0)
    # The first has two earlier detections within 2" (days 4 and 7; day 12 is later, 5" is too far): 6 days since.
    assert history["history_n_earlier"].tolist() == [2, 1]
    assert history["history_days_since_first"].tolist() == [6.0, 0.5]
    empty = {"ra": np.array([]), "dec": np.array([]), "mjd": np.array([])}
    assert history_from_detections(ra, dec, 10.0, empty, 2.0)["history_n_earlier"].tolist() == [0, 0]


def test_the_cnn_training_fields_never_enter_the_context_splits():
    cnn = {"train": ["F00", "F01"], "val": ["F02"], "test": ["F03"], "eval": ["E00"]}
    splits = context_splits(cnn, {"C00": 100, "C01": 100, "C02": 100, "C03": 100},
                            {"train": 0.5, "val": 0.25, "test": 0.25}, seed=1)
    assert {f: splits[f] for f in ("F00", "F01", "F02")} == dict.fromkeys(("F00", "F01", "F02"), EXCLUDED)
    assert splits["F03"] == "test" and splits["E00"] == "test"
    assert sorted(splits[f] for f in ("C00", "C01", "C02", "C03")) == ["test", "train", "train", "val"]
    with pytest.raises(ValueError, match="both in the CNN's data set"):
        context_splits(cnn, {"F00": 10}, {"train": 1.0}, seed=1)


def test_the_leakage_check_refuses_a_cnn_training_field():
    cnn = {"train": ["F00"], "val": ["F01"], "test": [], "eval": []}
    check_no_leakage(pd.DataFrame({"field": ["C00", "C01"]}), cnn)
    with pytest.raises(ValueError, match=r"training field\(s\) \['F01'\]"):
        check_no_leakage(pd.DataFrame({"field": ["C00", "F01"]}), cnn)


def test_classes_from_truth_and_from_a_labels_table():
    classes = classes_from_truth(np.array(["sn", "hot_pixel", "", "agn", "nuclear", "hostless", "variable_star"]))
    assert [CONTEXT_CLASSES[c] for c in classes] == ["sn", "bs", "bs", "nt", "nt", "or", "vs"]
    labels = pd.DataFrame({"candidate_id": ["a", "b"], "class": ["sn", "vs"]})
    assert classes_from_labels("l.csv", labels, np.array(["b", "c", "a"])).tolist() == [1, -1, 3]
    with pytest.raises(BadInputError) as error:
        classes_from_labels("l.csv", pd.DataFrame({"candidate_id": ["a"], "class": ["SN Ia"]}), np.array(["a"]))
    assert "l.csv" in str(error.value) and "'SN Ia'" in str(error.value) and "'bs'" in str(error.value)


@pytest.mark.parametrize("text, message", [
    ("candidate_id,class\na,sn\nb,vs\na,bs\n", r"1 candidate_id\(s\) labelled more than once, e.g. \['a'\]"),
    ("candidate_id,class\na,sn\n,vs\n", r"1 row\(s\) without a candidate_id"),
    ("candidate_id,class\na,\n", r"unknown class\(es\) \[''\]"),
    ("", "not a CSV with a header row"),
])
def test_a_bad_labels_csv_is_one_error_naming_it(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(BadInputError, match=rf"labels\.csv: {message}"):
        classes_from_labels(path, read_context_labels(path), np.array(["a", "b"]))


def test_a_labels_file_that_is_not_text_is_one_error_naming_it(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(BadInputError, match=r"labels\.csv: context labels CSV"):
        read_context_labels(path)


# ------------------------------------------------------------------------------------------------ models


def synthetic_table(n_per_class=60, seed=0):
    """A feature table where the class is readable from a few features (with noise), every class present."""
    rng = np.random.default_rng(seed)
    k = np.repeat(np.arange(len(CONTEXT_CLASSES)), n_per_class)
    table = pd.DataFrame({name: rng.normal(size=len(k)) for name in fit_columns()})
    table["stars_sep1_arcsec"] = np.where(k == 1, 0.5, 20.0) + rng.normal(0, 0.2, len(k))
    table["host_ddlr"] = np.select([k == 2, k == 3, k == 4], [0.05, 1.5, 99.0], 50.0) + rng.normal(0, 0.05, len(k))
    table["mp_sep_arcsec"] = np.where(k == 5, 1.0, 100.0) + rng.normal(0, 0.2, len(k))
    real = (k != 0).astype(float)
    for q, draw in zip((-0.1, -0.05, 0.0, 0.05, 0.1), CNN_DRAWS, strict=True):
        table[draw] = np.clip(real * 0.8 + 0.1 + q + rng.normal(0, 0.02, len(k)), 0, 1)
    return table, k


def fit_columns():
    from bayesrb.context.models import feature_columns
    return [c for c in feature_columns("all") if c != "cnn_score"]


@pytest.mark.parametrize("kind", ["xgboost", "random_forest", "hierarchical"])
def test_class_probabilities_sum_to_one_and_the_classes_are_learnt(kind):
    table, k = synthetic_table()
    expanded = pd.concat([table.assign(cnn_score=table[d]) for d in CNN_DRAWS], ignore_index=True)
    settings = ClassifierSettings(kind=kind, n_estimators=40, max_depth=3)
    classifier = fit_classifier(expanded, np.tile(k, len(CNN_DRAWS)), settings, seed=0)
    test, k_test = synthetic_table(seed=1)
    mean, std = predict_with_spread(classifier, test)
    assert mean.shape == (len(test), len(CONTEXT_CLASSES))
    np.testing.assert_allclose(mean.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(std >= 0) and np.all(std <= 0.5)
    assert np.mean(np.argmax(mean, axis=1) == k_test) > 0.9
    importance = feature_importance(classifier)
    assert sum(importance.values()) == pytest.approx(1.0)
    assert set(list(importance)[:4]) & {"stars_sep1_arcsec", "host_ddlr", "mp_sep_arcsec"}


def test_a_class_absent_from_training_gets_probability_zero():
    table, k = synthetic_table()
    keep = k != CONTEXT_CLASSES.index("or")
    expanded = table[keep].assign(cnn_score=table[keep]["cnn_p50"])
    classifier = fit_classifier(expanded, k[keep], ClassifierSettings(n_estimators=20), seed=0)
    mean, _ = predict_with_spread(classifier, table)
    assert np.all(mean[:, CONTEXT_CLASSES.index("or")] == 0)
    np.testing.assert_allclose(mean.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["xgboost", "hierarchical"])
def test_xgboost_stops_early_on_the_validation_rows(kind):
    table, k = synthetic_table()
    val, k_val = synthetic_table(seed=2)
    settings = ClassifierSettings(kind=kind, n_estimators=400, max_depth=3, early_stopping_rounds=5)
    classifier = fit_classifier(table.assign(cnn_score=table["cnn_p50"]), k, settings, seed=0,
                                validation=(val.assign(cnn_score=val["cnn_p50"]), k_val))
    kept = [flat.model.best_iteration + 1 for flat in classifier.nodes.values() if flat.model is not None]
    assert kept and all(rounds < 400 for rounds in kept)  # these classes are learnt in far fewer rounds
    mean, _ = predict_with_spread(classifier, synthetic_table(seed=1)[0])
    assert np.mean(np.argmax(mean, axis=1) == synthetic_table(seed=1)[1]) > 0.9


def test_temperature_scaling_lowers_the_log_loss_and_keeps_the_predicted_class():
    table, k = synthetic_table()
    noisy, k_noisy = synthetic_table(seed=3)
    flip = np.random.default_rng(0).uniform(size=len(k_noisy)) < 0.3  # labels the features cannot explain
    k_noisy = np.where(flip, np.random.default_rng(1).integers(0, len(CONTEXT_CLASSES), len(k_noisy)), k_noisy)
    classifier = fit_classifier(table.assign(cnn_score=table["cnn_p50"]), k, ClassifierSettings(n_estimators=60),
                                seed=0)
    raw, _ = predict_with_spread(classifier, noisy)
    classifier.temperature = fit_temperature(classifier, noisy, k_noisy)
    calibrated, _ = predict_with_spread(classifier, noisy)
    assert classifier.temperature > 1.5  # overconfident on rows with 30 % wrong labels: softened
    assert mean_log_loss(k_noisy, calibrated) < mean_log_loss(k_noisy, raw)
    np.testing.assert_array_equal(np.argmax(calibrated, axis=1), np.argmax(raw, axis=1))
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(tempered(raw, 1.0), raw)


def test_censoring_removes_whole_families_at_the_configured_rate():
    table, _ = synthetic_table(n_per_class=500)
    censored = censor(table, {"stars": 0.3, "galaxies": 0.6}, np.random.default_rng(3))
    stars, galaxies = list(family_feature_columns("stars")), list(family_feature_columns("galaxies"))
    lost_stars = censored[stars].isna().all(axis=1)
    assert lost_stars.mean() == pytest.approx(0.3, abs=0.03)
    assert censored[galaxies].isna().all(axis=1).mean() == pytest.approx(0.6, abs=0.03)
    assert not censored.loc[~lost_stars, stars].isna().any().any()
    assert censored["mp_sep_arcsec"].notna().all()
    together = censor(table, {"stars": 0.5, "galaxies": 0.5}, np.random.default_rng(3), together=True)
    assert (together[stars].isna().all(axis=1) == together[galaxies].isna().all(axis=1)).all()


def test_a_saved_classifier_loads_only_with_the_versions_that_wrote_it(tmp_path):
    table, k = synthetic_table(n_per_class=20)
    classifier = fit_classifier(table.assign(cnn_score=table["cnn_p50"]), k, ClassifierSettings(n_estimators=5),
                                seed=0)
    path = tmp_path / "model.joblib"
    save_classifier(classifier, path, {"xgboost": "1.0"})
    assert json.loads((tmp_path / "model.joblib.json").read_text())["columns"] == list(classifier.columns)
    again = load_classifier(path, {"xgboost": "1.0"})
    np.testing.assert_array_equal(again.predict_proba(table.assign(cnn_score=0.5)),
                                  classifier.predict_proba(table.assign(cnn_score=0.5)))
    with pytest.raises(BadInputError, match="other package versions"):
        load_classifier(path, {"xgboost": "9.9"})


@pytest.mark.parametrize("model_bytes, metadata", [
    (b"not a pickle", '{"versions": {"xgboost": "1.0"}}'),
    (None, '[1, 2]'),
    (None, None),
])
def test_a_file_that_is_not_a_saved_classifier_is_one_error_naming_it(tmp_path, model_bytes, metadata):
    table, k = synthetic_table(n_per_class=20)
    path = tmp_path / "model.joblib"
    classifier = fit_classifier(table.assign(cnn_score=table["cnn_p50"]), k, ClassifierSettings(n_estimators=2), seed=0)
    save_classifier(classifier, path, {"xgboost": "1.0"})
    if model_bytes is not None:
        path.write_bytes(model_bytes)
    if metadata is None:
        Path(f"{path}.json").unlink()
    else:
        Path(f"{path}.json").write_text(metadata)
    with pytest.raises(BadInputError, match=r"model\.joblib: not a context classifier written by bayesrb"):
        load_classifier(path, {"xgboost": "1.0"})


def test_experiment_settings_merge_and_reject_unknown_keys():
    context = ContextSettings()
    assert context.classifier("hierarchical").kind == "hierarchical"
    assert context.classifier("catalogue_only").features == "catalogue"
    bad = ContextSettings(experiments={"x": {"depth": 3}})
    with pytest.raises(BadInputError, match=r"context.experiments.x.*unknown key\(s\) \['depth'\]"):
        bad.classifier("x")


def test_the_speed_benchmark_times_features_classification_and_training(tmp_path):
    from bayesrb.bench.context import measure
    from bayesrb.context.steps import classifier_versions

    synthetic = measure(n_candidates=300, n_train=200, threads=1)
    table, k = synthetic_table(n_per_class=20)
    save_classifier(fit_classifier(table.assign(cnn_score=table["cnn_p50"]), k, ClassifierSettings(n_estimators=5),
                                   seed=0), tmp_path / "model.joblib", classifier_versions())
    table.to_parquet(tmp_path / "table.parquet")
    trained = measure(300, 200, 1, str(tmp_path / "model.joblib"), str(tmp_path / "table.parquet"))
    for lines in (synthetic, trained):
        rates = [float(line.rsplit(": ", 1)[1].split()[0].replace(",", "")) for line in lines[1:]]
        assert len(rates) == 3 and all(rate > 0 for rate in rates)
    assert "model.joblib" in trained[2] and "synthetic" in synthetic[2]


def test_cross_validation_holds_out_each_train_field_and_repeats_over_seeds():
    from bayesrb.bench.context_cv import cross_validate, grid

    table, k = synthetic_table(n_per_class=30)
    fields = np.resize(np.array(["A", "B", "C", "V"]), len(table))
    table = table.assign(**{"class": k, "field": fields, "split": np.where(fields == "V", "val", "train")})
    settings = grid({"max_depth": [2, 3], "n_estimators": [20]}) + [{"kind": "random_forest"}]
    results = cross_validate(table, settings, seeds=(0, 1))
    assert list(results["setting"]) == ["max_depth=2, n_estimators=20", "max_depth=3, n_estimators=20",
                                        "kind=random_forest"]
    assert (results["folds"] == 3).all() and (results["seeds"] == 2).all()
    assert (results["balanced_accuracy"] > 70).all() and results["balanced_accuracy_sd"].notna().all()  # chance 17
    with pytest.raises(ValueError, match="at least two train fields"):
        cross_validate(table.assign(field="A"), settings[:1])
