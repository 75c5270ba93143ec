from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import yaml

from bayesrb.errors import BadInputError
from bayesrb.settings import settings_from
from bayesrb.simulate.artefacts import CameraDefects, add_cosmic_rays, saturate_with_bleed
from bayesrb.simulate.plan import FIELD_LATITUDE_DEG, plan_table, survey_fields, survey_plan
from bayesrb.simulate.render import GalaxyShapes, PsfModel, render_galaxies, render_points
from bayesrb.simulate.settings import SurveySettings
from bayesrb.simulate.sky import (
    EXPONENTIAL_DISC_HLR_SCALE_LENGTHS,
    magnitudes_at,
    make_field_sky,
    power_law_magnitudes,
    transient_magnitude,
)
from bayesrb.simulate.survey import template_geometry, visit_geometry

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def test_star_flux_within_one_percent():
    psf = PsfModel(fwhm_px=2.4, beta=3.0, field_variation=0.08, shape=(128, 160))
    for flux in (50.0, 3e3, 5e5):
        image = np.zeros((128, 160))
        render_points(image, psf, [70.3], [60.8], [flux])
        assert abs(image.sum() / flux - 1) < 0.01
        row, col = np.unravel_index(image.argmax(), image.shape)
        assert (row, col) == (61, 70)  # (x, y) = (70.3, 60.8) -> [row 61, col 70]


def test_galaxy_flux_within_one_percent():
    psf = PsfModel(fwhm_px=2.0, beta=3.0, field_variation=0.0, shape=(200, 200))
    image = np.zeros((200, 200))
    shapes = GalaxyShapes(np.array([1.0, 4.0]), np.array([3.0, 2.0]), np.array([0.3, 0.0]), np.array([0.0, 0.2]))
    render_galaxies(image, psf, [60.0, 140.0], [100.0, 100.0], [1e4, 2e4], shapes)
    assert abs(image.sum() / 3e4 - 1) < 0.01


def test_psf_fwhm_grows_towards_corners():
    psf = PsfModel(fwhm_px=2.0, beta=3.0, field_variation=0.1, shape=(101, 101))
    assert psf.fwhm_at(50, 50) == pytest.approx(2.0)
    assert psf.fwhm_at(0, 0) == pytest.approx(2.2)


def test_power_law_luminosity_function_slope():
    rng = np.random.default_rng(0)
    mags = power_law_magnitudes(rng, 200_000, (10.0, 20.0), 0.3)
    counts, _ = np.histogram(mags, bins=[15, 16, 17])
    assert counts[1] / counts[0] == pytest.approx(10**0.3, rel=0.03)


def test_field_sky_is_deterministic_and_complete():
    settings = SurveySettings(n_fields=2)
    field = survey_fields(settings)[1]
    a, b = make_field_sky(field, settings), make_field_sky(field, settings)
    assert np.array_equal(a["ra"], b["ra"]) and np.array_equal(a["mag"], b["mag"])
    kinds = set(a["kind"])
    assert {"star", "galaxy", "sn", "nuclear", "hostless"} <= kinds
    assert len(np.unique(a["source_id"])) == len(a)
    sn = a[a["kind"] == "sn"]
    assert np.all(sn["host_id"] >= 0) and np.all(np.isfinite(sn["host_offset_arcsec"]))


def test_template_view_hides_transients_and_variability():
    settings = SurveySettings()
    sky = make_field_sky(survey_fields(settings)[0], settings)
    template = magnitudes_at(sky, None)
    transient = np.isin(sky["kind"], ("sn", "nuclear", "hostless"))
    assert np.all(template[transient] == 99.0)
    steady = ~transient
    assert np.array_equal(template[steady], np.asarray(sky["mag"])[steady])


def test_transient_light_curve():
    assert transient_magnitude(18.0, 100.0, 100.0) == pytest.approx(18.0)
    assert transient_magnitude(18.0, 100.0, 110.0) == pytest.approx(18.3)
    assert transient_magnitude(18.0, 100.0, 92.0) == pytest.approx(19.0)
    assert transient_magnitude(18.0, 100.0, 60.0) == 99.0


def test_plan_ids_unique_and_ordered():
    settings = SurveySettings(n_fields=3, n_eval_fields=1, n_nights=2, visits_per_night=2)
    visits = survey_plan(settings)
    assert len(visits) == 16  # (3 training + 1 evaluation field) x 2 nights x 2 visits
    assert len({v.visit_id for v in visits}) == 16
    assert np.all(np.diff([v.mjd for v in visits]) > 0)


def test_evaluation_fields_follow_the_training_fields():
    settings = SurveySettings(n_fields=3, n_eval_fields=2, n_nights=2)
    fields = survey_fields(settings)
    assert [f.name for f in fields] == ["F00", "F01", "F02", "E00", "E01"]
    assert [f.index for f in fields] == [0, 1, 2, 3, 4]
    assert [f.evaluation for f in fields] == [False, False, False, True, True]
    table = plan_table(survey_plan(settings))
    assert list(table["visit"][3:5]) == ["E00-n00-v00", "E01-n00-v00"]
    assert list(table["evaluation"]) == [name.startswith("E") for name in table["field"]]
    assert table["evaluation"].dtype == bool


def _separation_deg(a, b) -> float:
    """Great-circle distance between the centres of fields ``a`` and ``b``, degrees."""
    ra_a, dec_a, ra_b, dec_b = np.radians([a.ra_deg, a.dec_deg, b.ra_deg, b.dec_deg])
    cos_sep = np.sin(dec_a) * np.sin(dec_b) + np.cos(dec_a) * np.cos(dec_b) * np.cos(ra_a - ra_b)
    return float(np.degrees(np.arccos(np.clip(cos_sep, -1.0, 1.0))))


def test_training_positions_do_not_depend_on_evaluation_fields():
    alone = survey_fields(SurveySettings(n_fields=4, n_eval_fields=0))
    fields = survey_fields(SurveySettings(n_fields=4, n_eval_fields=3))
    assert [(f.name, f.ra_deg, f.dec_deg) for f in fields[:4]] == [(f.name, f.ra_deg, f.dec_deg) for f in alone]
    # E00 continues the line: one spacing (1 deg) along the ecliptic, on the other side of it
    expected = np.hypot(1.0, 2 * FIELD_LATITUDE_DEG)
    assert _separation_deg(fields[3], fields[4]) == pytest.approx(expected, abs=0.01)
    assert _separation_deg(fields[4], fields[5]) == pytest.approx(expected, abs=0.01)


def _image_grid(shape, step: int = 16):
    """Pixel (x, y) of a grid over an image of array shape ``(ny, nx)``, its edges included."""
    x = np.unique(np.append(np.arange(0, shape[1], step), shape[1] - 1))
    y = np.unique(np.append(np.arange(0, shape[0], step), shape[0] - 1))
    gx, gy = np.meshgrid(x, y)
    return gx.ravel().astype(float), gy.ravel().astype(float)


def _overlaps(wcs_a, wcs_b, shape) -> bool:
    """Whether any grid pixel of image ``a`` lands on image ``b`` (both of array shape ``shape``)."""
    ra, dec = wcs_a.all_pix2world(*_image_grid(shape), 0)
    x, y = wcs_b.all_world2pix(ra, dec, 0)
    return bool(np.any((x > -0.5) & (x < shape[1] - 0.5) & (y > -0.5) & (y < shape[0] - 0.5)))


def _smallest_accepted_spacing(**settings) -> SurveySettings:
    """Settings with the smallest ``field_spacing_deg`` (on a 0.01 deg grid) that the clearance check accepts."""
    for spacing in np.arange(0.05, 3.0, 0.01):
        try:
            survey_fields(SurveySettings(field_spacing_deg=round(spacing, 2), **settings))
        except BadInputError:
            continue
        return SurveySettings(field_spacing_deg=round(spacing, 2), **settings)
    raise AssertionError("no spacing accepted")


@pytest.mark.parametrize("image_size", [(1024, 1024), (2048, 1536)])
def test_no_evaluation_image_overlaps_a_training_image(image_size):
    settings = _smallest_accepted_spacing(image_size=image_size, n_fields=3, n_eval_fields=2, n_nights=2)
    diagonal_deg = np.hypot(*image_size) * settings.pixel_scale_arcsec / 3600
    assert settings.field_spacing_deg < diagonal_deg  # close to the limit, not trivially clear
    shape = (image_size[1], image_size[0])
    images = {False: [], True: []}
    for visit in survey_plan(settings):
        images[visit.field.evaluation].append(visit_geometry(visit, settings)[0])
    for field in survey_fields(settings):
        images[field.evaluation].append(template_geometry(field, settings))
    assert len(images[True]) == 2 * 2 + 2
    for evaluation in images[True]:
        for training in images[False]:
            assert not _overlaps(evaluation, training, shape) and not _overlaps(training, evaluation, shape)


def test_too_small_field_spacing_is_rejected():
    with pytest.raises(BadInputError, match="field_spacing_deg = 0.2 is too small"):
        survey_fields(SurveySettings(field_spacing_deg=0.2, n_fields=4))  # E00 0.4 deg from F02; images 0.5 deg wide
    training_only = SurveySettings(field_spacing_deg=0.2, n_fields=4, n_eval_fields=0)
    assert len(survey_fields(training_only)) == 4  # training fields only: as before


def _kind_counts(sky) -> dict[str, int]:
    kinds = np.asarray(sky["kind"])
    return {kind: int(np.sum(kinds == kind)) for kind in ("sn", "nuclear", "hostless")}


def test_evaluation_fields_take_the_evaluation_transient_counts():
    settings = SurveySettings(n_fields=2, n_eval_fields=1)
    training, _, evaluation = survey_fields(settings)
    assert _kind_counts(make_field_sky(training, settings)) == {"sn": 3, "nuclear": 1, "hostless": 1}
    assert _kind_counts(make_field_sky(evaluation, settings)) == {"sn": 40, "nuclear": 12, "hostless": 12}


def test_evaluation_supernovae_sit_at_exponential_disc_host_offsets():
    settings = SurveySettings(n_fields=1, n_eval_fields=1, eval_supernovae_per_field=400)
    sky = make_field_sky(survey_fields(settings)[1], settings)
    sn = sky[sky["kind"] == "sn"]
    assert len(sn) == 400 and np.all(sn["host_id"] >= 0)
    hosts = sky[np.argsort(sky["source_id"])][np.searchsorted(np.sort(sky["source_id"]), sn["host_id"])]
    assert np.all(hosts["kind"] == "galaxy") and np.array_equal(hosts["source_id"], sn["host_id"])
    assert np.allclose(sn["host_hlr_arcsec"], hosts["hlr_arcsec"])
    separation = 3600 * np.hypot((sn["ra"] - hosts["ra"]) * np.cos(np.radians(hosts["dec"])), sn["dec"] - hosts["dec"])
    assert np.allclose(separation, sn["host_offset_arcsec"], atol=0.01)
    in_hlr = np.asarray(sn["host_offset_arcsec"] / sn["host_hlr_arcsec"])
    # Gamma(2, hlr / 1.678): median 1 hlr (standard error ~0.05 for 400), mean 2 / 1.678 hlr (~0.04)
    assert np.median(in_hlr) == pytest.approx(1.0, abs=0.15)
    assert np.mean(in_hlr) == pytest.approx(2 / EXPONENTIAL_DISC_HLR_SCALE_LENGTHS, abs=0.15)


def test_bleed_conserves_saturation_and_extends_along_column():
    image = np.zeros((60, 40))
    image[30, 20] = 5 * 1000.0
    truth = saturate_with_bleed(image, 1000.0)
    assert image.max() == 1000.0
    assert (image[:, 20] == 1000.0).sum() >= 5
    assert np.count_nonzero(image[:, 19]) == 0
    assert truth["kind"][0] == "bleed" and truth["x"][0] == 20 and truth["y"][0] == 30


def test_cosmic_rays_deposit_their_energy():
    rng = np.random.default_rng(3)
    image = np.zeros((500, 500))
    truth = add_cosmic_rays(image, rng, per_megapixel=200)
    assert 25 < len(truth["x"]) < 80  # Poisson mean 50
    hit = image[truth["y"].astype(int), truth["x"].astype(int)]
    assert np.all(hit > 0)
    assert image.sum() >= 300 * len(truth["x"]) / 6


def test_camera_defects_are_fixed_per_camera():
    a = CameraDefects.draw(np.random.default_rng(5), (100, 120), 500.0, 2)
    image = np.zeros((100, 120))
    a.apply(image)
    assert np.all(image[a.hot_y, a.hot_x] > 0)
    assert np.all(image[:, a.bad_columns] > 0)
    assert len(a.truth((100, 120))[1]["x"]) == 2


def test_schema_defaults_match_settings():
    schema = yaml.safe_load(open(SCHEMA))
    simulate = schema["properties"]["simulate"]["properties"]
    defaults = {f.name: f.default for f in fields(SurveySettings)}
    assert set(simulate) == set(defaults)
    for name, spec in simulate.items():
        expected = list(defaults[name]) if isinstance(defaults[name], tuple) else defaults[name]
        assert spec["default"] == expected, name
        assert spec["description"], name


def test_unknown_simulate_key_is_rejected():
    with pytest.raises(BadInputError, match="n_feilds"):
        settings_from(SurveySettings, {"n_feilds": 3}, "simulate")


def test_config_reference_is_current():
    from bayesrb.configdoc import render

    regenerate = "run: python -m bayesrb.configdoc > config/README.md"
    assert (ROOT / "config/README.md").read_text() == render(SCHEMA), regenerate


def test_schema_keys_are_json_schema_keywords():
    # An unquoted description with a comma inside a YAML flow mapping silently becomes extra keys.
    keywords = {"type", "default", "description", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                "enum", "items", "minItems", "maxItems", "properties", "additionalProperties", "required", "pattern",
                "oneOf", "anyOf", "uniqueItems", "propertyNames", "$ref", "$schema", "title", "not", "const"}

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if path and path[-1] != "properties":
                    assert key in keywords, f"{'.'.join(path)}: unexpected key {key!r}"
                if key != "default":  # a default is a value, not a schema
                    walk(value, [*path, str(key)])
        elif isinstance(node, list):
            for value in node:
                walk(value, path)

    walk(yaml.safe_load(SCHEMA.read_text()), [])
