from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import yaml

from bayesrb.errors import BadInputError
from bayesrb.simulate.artefacts import CameraDefects, add_cosmic_rays, saturate_with_bleed
from bayesrb.simulate.plan import survey_fields, survey_plan
from bayesrb.simulate.render import GalaxyShapes, PsfModel, render_galaxies, render_points
from bayesrb.simulate.settings import SurveySettings
from bayesrb.simulate.sky import magnitudes_at, make_field_sky, power_law_magnitudes, transient_magnitude

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
    settings = SurveySettings(n_fields=3, n_nights=2, visits_per_night=2)
    visits = survey_plan(settings)
    assert len(visits) == 12
    assert len({v.visit_id for v in visits}) == 12
    assert np.all(np.diff([v.mjd for v in visits]) > 0)


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
        SurveySettings.from_config({"n_feilds": 3})


def test_config_reference_is_current():
    from bayesrb.configdoc import render

    regenerate = "run: python -m bayesrb.configdoc > config/README.md"
    assert (ROOT / "config/README.md").read_text() == render(SCHEMA), regenerate
