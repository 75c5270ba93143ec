from dataclasses import fields
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack

from bayesrb.atomic import write_ecsv
from bayesrb.context.features import directional_light_radius
from bayesrb.errors import BadInputError
from bayesrb.settings import settings_from
from bayesrb.simulate.artefacts import (
    COSMIC_RAY_ENERGY_RANGE_ADU,
    CameraDefects,
    add_cosmic_rays,
    saturate_with_bleed,
)
from bayesrb.simulate.plan import FIELD_LATITUDE_DEG, plan_table, survey_fields, survey_plan
from bayesrb.simulate.render import GalaxyShapes, PsfModel, render_galaxies, render_points
from bayesrb.simulate.settings import SurveySettings
from bayesrb.simulate.sky import (
    EXPONENTIAL_DISC_HLR_SCALE_LENGTHS,
    galaxy_axis_ratio,
    galaxy_position_angle_deg,
    magnitudes_at,
    make_field_sky,
    power_law_magnitudes,
    transient_magnitude,
)
from bayesrb.simulate.survey import (
    coverage_radius_deg,
    deep_confusion_probability,
    make_wcs,
    render_scene,
    survey_catalogues,
    template_geometry,
    visit_geometry,
)

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
    settings = SurveySettings(n_fields=3, n_eval_fields=1, n_context_fields=1, n_nights=2, visits_per_night=2)
    visits = survey_plan(settings)
    assert len(visits) == 20  # (3 training + 1 evaluation + 1 context field) x 2 nights x 2 visits
    assert len({v.visit_id for v in visits}) == 20
    assert [v.index for v in visits] == list(range(20))
    main, context = visits[:16], visits[16:]  # context visits come last: adding them renumbers no other visit
    assert all(v.field.context for v in context) and not any(v.field.context for v in main)
    assert np.all(np.diff([v.mjd for v in main]) > 0) and np.all(np.diff([v.mjd for v in context]) > 0)
    without = survey_plan(SurveySettings(n_fields=3, n_eval_fields=1, n_context_fields=0, n_nights=2,
                                         visits_per_night=2))
    assert [(v.index, v.visit_id, v.mjd) for v in without] == [(v.index, v.visit_id, v.mjd) for v in main]


def test_evaluation_fields_follow_the_training_fields():
    settings = SurveySettings(n_fields=3, n_eval_fields=2, n_context_fields=1, n_nights=2)
    fields = survey_fields(settings)
    assert [f.name for f in fields] == ["F00", "F01", "F02", "E00", "E01", "C00"]
    assert [f.index for f in fields] == [0, 1, 2, 3, 4, 5]
    assert [f.evaluation for f in fields] == [False, False, False, True, True, False]
    assert [f.context for f in fields] == [False] * 5 + [True]
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
    alone = survey_fields(SurveySettings(n_fields=4, n_eval_fields=0, n_context_fields=0))
    fields = survey_fields(SurveySettings(n_fields=4, n_eval_fields=3, n_context_fields=0))
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
    training_only = SurveySettings(field_spacing_deg=0.2, n_fields=4, n_eval_fields=0, n_context_fields=0)
    assert len(survey_fields(training_only)) == 4  # training fields only: as before


def _kind_counts(sky) -> dict[str, int]:
    kinds = np.asarray(sky["kind"])
    return {kind: int(np.sum(kinds == kind)) for kind in ("sn", "nuclear", "hostless")}


def test_evaluation_and_context_fields_take_the_richer_populations():
    settings = SurveySettings(n_fields=2, n_eval_fields=1, n_context_fields=1)
    training, _, evaluation, context = survey_fields(settings)
    assert _kind_counts(make_field_sky(training, settings)) == {"sn": 3, "nuclear": 1, "hostless": 1}
    for field in (evaluation, context):
        sky = make_field_sky(field, settings)
        assert _kind_counts(sky) == {"sn": settings.eval_supernovae_per_field,
                                     "nuclear": settings.eval_nuclear_transients_per_field,
                                     "hostless": settings.eval_hostless_transients_per_field}
        stars = np.isin(sky["kind"], ("star", "variable_star"))
        assert np.mean(sky["kind"][stars] == "variable_star") == pytest.approx(settings.eval_variable_fraction,
                                                                              abs=0.04)
    kinds = np.asarray(make_field_sky(training, settings)["kind"])
    stars = kinds[np.isin(kinds, ("star", "variable_star"))]
    assert np.mean(stars == "variable_star") == pytest.approx(0.03, abs=0.015)


def test_evaluation_supernovae_sit_at_exponential_disc_offsets_along_their_hosts_light():
    settings = SurveySettings(n_fields=1, n_eval_fields=1, eval_supernovae_per_field=400,
                              galaxy_density_per_deg2=6000.0)
    sky = make_field_sky(survey_fields(settings)[1], settings)
    sn = sky[sky["kind"] == "sn"]
    assert len(sn) == 400 and np.all(sn["host_id"] >= 0)
    hosts = sky[np.argsort(sky["source_id"])][np.searchsorted(np.sort(sky["source_id"]), sn["host_id"])]
    assert np.all(hosts["kind"] == "galaxy") and np.array_equal(hosts["source_id"], sn["host_id"])
    assert np.allclose(sn["host_hlr_arcsec"], hosts["hlr_arcsec"])
    east = 3600 * (sn["ra"] - hosts["ra"]) * np.cos(np.radians(hosts["dec"]))
    north = 3600 * (sn["dec"] - hosts["dec"])
    assert np.allclose(np.hypot(east, north), sn["host_offset_arcsec"], atol=0.01)
    dlr = directional_light_radius(east, north, hosts["hlr_arcsec"], galaxy_axis_ratio(hosts["e1"], hosts["e2"]),
                                   galaxy_position_angle_deg(hosts["e1"], hosts["e2"]))
    ddlr = np.asarray(np.hypot(east, north) / dlr)
    # along the light, dDLR is the disc radius: Gamma(2, 1 / 1.678), median 1 (standard error ~0.05 for 400)
    assert np.median(ddlr) == pytest.approx(1.0, abs=0.15)
    assert np.mean(ddlr) == pytest.approx(2 / EXPONENTIAL_DISC_HLR_SCALE_LENGTHS, abs=0.15)
    in_hlr = np.asarray(sn["host_offset_arcsec"] / sn["host_hlr_arcsec"])
    assert not np.allclose(in_hlr, ddlr, rtol=0.05)  # elliptical hosts: the circular radius is not the dDLR


def test_every_host_holds_at_most_one_nuclear_source_or_supernova():
    settings = SurveySettings(n_fields=1, n_eval_fields=1)
    sky = make_field_sky(survey_fields(settings)[1], settings)
    hosted = sky[np.isin(sky["kind"], ("sn", "nuclear", "agn"))]
    assert len(hosted) > settings.eval_supernovae_per_field + settings.eval_nuclear_transients_per_field
    assert len(np.unique(hosted["host_id"])) == len(hosted)


def test_too_few_host_galaxies_cut_both_kinds_in_proportion(caplog):
    settings = SurveySettings(n_fields=1, n_eval_fields=1, galaxy_density_per_deg2=300.0)
    with caplog.at_level("WARNING", logger="bayesrb.simulate.sky"):
        sky = make_field_sky(survey_fields(settings)[1], settings)
    counts = _kind_counts(sky)
    assert 0 < counts["sn"] < settings.eval_supernovae_per_field
    assert 0 < counts["nuclear"] < settings.eval_nuclear_transients_per_field
    assert counts["sn"] / counts["nuclear"] == pytest.approx(45 / 35, rel=0.2)
    assert "simulating fewer of each" in caplog.text


def test_bleed_conserves_saturation_and_extends_along_column():
    image = np.zeros((60, 40))
    image[30, 20] = 5 * 1000.0
    truth = saturate_with_bleed(image, 1000.0)
    assert image.sum() == 5000.0  # the 4000 ADU of excess fill 4 full-well pixels around the saturated one
    assert np.flatnonzero(image[:, 20] == 1000.0).tolist() == [28, 29, 30, 31, 32]
    assert np.count_nonzero(image) == 5
    assert truth["kind"][0] == "bleed" and truth["x"][0] == 20 and truth["y"][0] == 30
    assert truth["length_px"][0] == 4


def test_cosmic_rays_deposit_their_energy():
    rng = np.random.default_rng(3)
    image = np.zeros((500, 500))
    truth = add_cosmic_rays(image, rng, per_megapixel=200)
    n = len(truth["x"])
    assert 25 < n < 80  # Poisson mean 50
    hit = image[truth["y"].astype(int), truth["x"].astype(int)]
    assert np.all(hit > 0)
    replay = np.random.default_rng(3)  # the draws that precede the tracks': count, positions, energies
    assert replay.poisson(50.0) == n
    replay.integers(0, 500, n), replay.integers(0, 500, n)
    energies = np.exp(replay.uniform(*np.log(COSMIC_RAY_ENERGY_RANGE_ADU), n))
    assert image.sum() == pytest.approx(energies.sum(), rel=1e-12)  # every track deposits all of its energy


def test_camera_defects_are_fixed_per_camera():
    a = CameraDefects.draw(np.random.default_rng(5), (100, 120), 500.0, 2)
    image = np.zeros((100, 120))
    a.apply(image)
    assert np.all(image[a.hot_y, a.hot_x] > 0)
    assert np.all(image[:, a.bad_columns] > 0)
    assert len(a.truth((100, 120))[1]["x"]) == 2


def test_every_simulate_key_of_the_schema_is_a_survey_setting():
    schema = yaml.safe_load(open(SCHEMA))
    assert set(schema["properties"]["simulate"]["properties"]) == {f.name for f in fields(SurveySettings)}


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
                "oneOf", "anyOf", "uniqueItems", "propertyNames", "$ref", "$schema", "title", "not", "const",
                "minLength"}

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


# ------------------------------------------------------------------------------------- external catalogues

SHALLOW = ("stars", "galaxies", "variables", "agn", "transients")


def _moments(image: np.ndarray):
    """Flux-weighted centroid (x, y) and second moments (Qxx, Qyy, Qxy) of an image, pixels."""
    y, x = np.indices(image.shape)
    total = image.sum()
    xc, yc = (image * x).sum() / total, (image * y).sum() / total
    dx, dy = x - xc, y - yc
    return xc, yc, np.array([(image * dx**2).sum(), (image * dy**2).sum(), (image * dx * dy).sum()]) / total


def _sky_position_angle_deg(wcs, xc: float, yc: float, theta: float) -> float:
    """Position angle (East of North, mod 180) on the sky of the pixel direction ``theta`` (from +x to +y)."""
    ra, dec = wcs.all_pix2world([xc - 2 * np.cos(theta), xc + 2 * np.cos(theta)],
                                [yc - 2 * np.sin(theta), yc + 2 * np.sin(theta)], 0)
    ends = SkyCoord(ra, dec, unit="deg")
    return float(ends[0].position_angle(ends[1]).deg % 180.0)


@pytest.mark.parametrize("rotation_deg", [0.0, 30.0, -70.0])
@pytest.mark.parametrize(("e", "beta_deg"), [(0.45, 35.0), (0.3, 120.0), (0.2, 170.0)])
def test_catalogue_shape_is_the_rendered_galaxy_on_the_sky(rotation_deg, e, beta_deg):
    # sky truth (e1, e2) = e (cos 2β, sin 2β): GalSim distortion, β from +x (West) towards +y (North) of an
    # unrotated image, so b/a = sqrt((1 - e) / (1 + e)) and PA = β - 90 (mod 180), East of North
    e1, e2 = e * np.cos(2 * np.radians(beta_deg)), e * np.sin(2 * np.radians(beta_deg))
    assert galaxy_position_angle_deg(e1, e2) == pytest.approx((beta_deg - 90.0) % 180.0, abs=1e-9)
    assert galaxy_axis_ratio(e1, e2) == pytest.approx(np.sqrt((1 - e) / (1 + e)), abs=1e-12)
    shape, settings = (120, 120), SurveySettings(pixel_scale_arcsec=1.0)
    wcs = make_wcs(150.0, 40.0, rotation_deg, shape, settings.pixel_scale_arcsec)
    ra, dec = wcs.all_pix2world(59.3, 60.6, 0)
    sky = Table({"kind": ["galaxy"], "ra": [float(ra)], "dec": [float(dec)], "sersic_n": [1.0],
                 "hlr_arcsec": [5.0], "e1": [e1], "e2": [e2]})
    psf = PsfModel(fwhm_px=1.0, beta=3.0, field_variation=0.0, shape=shape)
    xc, yc, q = _moments(render_scene(sky, np.array([15.0]), wcs, psf, settings))
    star = np.zeros(shape)
    render_points(star, psf, [59.3], [60.6], [1e5])
    qxx, qyy, qxy = q - _moments(star)[2]  # unweighted moments add under convolution: remove PSF and pixel
    chi = np.hypot(qxx - qyy, 2 * qxy) / (qxx + qyy)  # the distortion of an elliptical profile
    measured_pa = _sky_position_angle_deg(wcs, xc, yc, 0.5 * np.arctan2(2 * qxy, qxx - qyy))
    difference = (measured_pa - galaxy_position_angle_deg(e1, e2) + 90.0) % 180.0 - 90.0
    assert abs(difference) < 0.2  # degrees; measured within 0.05
    assert np.sqrt((1 - chi) / (1 + chi)) == pytest.approx(galaxy_axis_ratio(e1, e2), abs=0.005)  # within 0.002


def test_point_sources_have_round_shapes():
    assert galaxy_axis_ratio(np.nan, np.nan) == 1.0 and galaxy_position_angle_deg(np.nan, np.nan) == 0.0
    assert galaxy_axis_ratio(0.0, 0.0) == 1.0
    pa = galaxy_position_angle_deg(np.array([1e-17, -0.3, 0.3]), np.array([-1e-30, 0.0, 0.0]))
    assert np.all((pa >= 0) & (pa < 180)) and pa[1] == pytest.approx(0.0) and pa[2] == pytest.approx(90.0)


def _tiny(**overrides) -> SurveySettings:
    base = {"n_fields": 3, "n_eval_fields": 0, "image_size": (256, 256), "star_galaxy_confusion": 0.2}
    if "n_context_fields" in {f.name for f in fields(SurveySettings)}:  # three training fields only
        base["n_context_fields"] = 0
    return SurveySettings(**(base | overrides))


@cache
def _survey(settings: SurveySettings):
    skies = [make_field_sky(field, settings) for field in survey_fields(settings)]
    return skies, survey_catalogues(skies, settings)


def _truth_by_id(skies) -> dict:
    return {int(i): (str(k), str(f)) for sky in skies
            for i, k, f in zip(sky["source_id"], sky["kind"], sky["field"], strict=True)}


def test_shallow_galaxies_carry_shapes_and_point_sources_are_round():
    settings = _tiny()
    skies, catalogues = _survey(settings)
    galaxies, truth = catalogues["galaxies"], _truth_by_id(skies)
    stars_in = np.array([truth[int(i)][0] != "galaxy" for i in galaxies["source_id"]])
    assert 0 < stars_in.sum() < len(galaxies)
    assert np.all(galaxies["axis_ratio"][stars_in] == 1.0) and np.all(galaxies["pa_deg"][stars_in] == 0.0)
    assert np.all(galaxies["hlr_arcsec"][stars_in] == settings.fwhm_range_arcsec[0] / 2)
    q, pa = np.asarray(galaxies["axis_ratio"])[~stars_in], np.asarray(galaxies["pa_deg"])[~stars_in]
    assert np.all((q >= np.sqrt(0.5 / 1.5)) & (q < 1)) and np.all((pa >= 0) & (pa < 180))  # e < 0.5 in sky.py
    assert np.std(pa) == pytest.approx(180 / np.sqrt(12), rel=0.2)  # uniform angles


def test_every_catalogue_has_coverage_that_round_trips(tmp_path):
    settings = _tiny()
    _, catalogues = _survey(settings)
    radius = coverage_radius_deg(settings)
    centres = [(f.ra_deg, f.dec_deg) for f in survey_fields(settings)]
    for name, table in catalogues.items():
        write_ecsv(table, tmp_path / f"{name}.ecsv")
        back = Table.read(tmp_path / f"{name}.ecsv", format="ascii.ecsv")
        assert back.meta["coverage"] == table.meta["coverage"], name
        circles = back.meta["coverage"]
        assert all(set(c) == {"ra", "dec", "radius_deg"} and c["radius_deg"] == radius for c in circles), name
        listed = [(c["ra"], c["dec"]) for c in circles]
        assert listed == centres if name in SHALLOW else (0 < len(listed) < len(centres)), name
        if name == "deep":
            assert np.array_equal(back["class"], table["class"]) and back["pa_deg"].unit == "deg"


def _inside(ra, dec, circles) -> np.ndarray:
    points = SkyCoord(np.asarray(ra, float), np.asarray(dec, float), unit="deg")
    return np.any([points.separation(SkyCoord(c["ra"], c["dec"], unit="deg")).deg <= c["radius_deg"]
                   for c in circles], axis=0)


def test_coverage_circles_hold_every_image_and_every_row():
    settings = _tiny(n_nights=2)
    _, catalogues = _survey(settings)
    circles = {f.name: c for f, c in zip(survey_fields(settings), catalogues["stars"].meta["coverage"], strict=True)}
    ny, nx = settings.image_size[1], settings.image_size[0]
    corners = ([-0.5, nx - 0.5, -0.5, nx - 0.5], [-0.5, -0.5, ny - 0.5, ny - 0.5])
    images = [(v.field.name, visit_geometry(v, settings)[0]) for v in survey_plan(settings)]
    images += [(f.name, template_geometry(f, settings)) for f in survey_fields(settings)]
    for name, wcs in images:
        assert np.all(_inside(*wcs.all_pix2world(*corners, 0), [circles[name]]))
    for name, table in catalogues.items():
        assert np.all(_inside(table["ra"], table["dec"], table.meta["coverage"])), name


def _covered_fields(settings: SurveySettings, table) -> set[str]:
    """Names of the fields whose centres are the centres of the coverage circles of ``table``."""
    centres = {(c["ra"], c["dec"]) for c in table.meta["coverage"]}
    return {f.name for f in survey_fields(settings) if (f.ra_deg, f.dec_deg) in centres}


def test_deep_catalogue_is_deeper_and_as_complete_as_set():
    settings = _tiny(n_fields=2, image_size=(384, 384), star_density_per_deg2=60_000.0)
    skies, catalogues = _survey(settings)
    deep, shallow = catalogues["deep"], catalogues["stars"]
    assert shallow["mag"].max() < settings.catalogue_limit_mag < deep["mag"].max() < settings.deep_catalogue_limit_mag
    covered = _covered_fields(settings, deep)
    eligible = [sky[np.isin(sky["kind"], ("star", "variable_star", "galaxy"))] for sky in skies
                if sky["field"][0] in covered]
    ids = np.concatenate([np.asarray(t["source_id"])[t["mag"] < settings.deep_catalogue_limit_mag] for t in eligible])
    found = np.isin(ids, deep["source_id"])
    sigma = np.sqrt(0.9 * 0.1 / len(ids))
    assert len(ids) > 2000 and abs(found.mean() - settings.deep_catalogue_completeness) < 4 * sigma
    assert np.all(np.isin(deep["source_id"], ids))  # only static sources of covered fields


def test_deep_catalogue_covers_part_of_the_sky():
    chosen = set()
    for seed in range(4):
        for coverage in (0.01, 0.6, 0.99):
            settings = _tiny(seed=seed, deep_catalogue_coverage=coverage)
            skies, catalogues = _survey(settings)
            deep, truth = catalogues["deep"], _truth_by_id(skies)
            covered = _covered_fields(settings, deep)
            assert len(covered) == {0.01: 1, 0.6: 2, 0.99: 2}[coverage]  # round(3 f), at least 1, at most 2
            assert {truth[int(i)][1] for i in deep["source_id"]} == covered  # rows in every covered field only
            chosen.add(tuple(sorted(covered)))
    assert len(chosen) >= 4  # a random subset, not always the same fields


def test_deep_catalogue_holds_variables_as_stars_and_agn_hosts_as_galaxies():
    settings = _tiny(n_fields=2, agn_fraction=0.3, variable_fraction=0.2, galaxy_density_per_deg2=8000.0,
                     deep_star_galaxy_confusion_bright=0.0, deep_star_galaxy_confusion_at_limit=0.0)
    skies, catalogues = _survey(settings)
    deep, truth = catalogues["deep"], _truth_by_id(skies)
    kinds = np.array([truth[int(i)][0] for i in deep["source_id"]])
    assert set(kinds) == {"star", "variable_star", "galaxy"} and (kinds == "variable_star").sum() > 10
    assert np.array_equal(deep["class"] == "galaxy", kinds == "galaxy")
    covered = {truth[int(i)][1] for i in deep["source_id"]}
    agn = vstack([s[s["kind"] == "agn"] for s in skies if s["field"][0] in covered])
    assert len(agn) > 30 and not np.isin(agn["source_id"], deep["source_id"]).any()  # no AGN point sources
    assert np.isin(agn["host_id"], deep["source_id"]).mean() > 0.75  # hosts (all brighter than 22) 90 % complete
    galaxy = np.asarray(deep["class"]) == "galaxy"
    shape = np.array([deep[c] for c in ("hlr_arcsec", "axis_ratio", "pa_deg")], dtype=float)
    assert np.all(np.isfinite(shape[:, galaxy])) and np.all(np.isnan(shape[:, ~galaxy]))


def test_deep_confusion_grows_towards_the_limit():
    settings = _tiny(n_fields=2, image_size=(384, 384), star_density_per_deg2=250_000.0,
                     deep_star_galaxy_confusion_bright=0.02, deep_star_galaxy_confusion_at_limit=0.5)
    p = deep_confusion_probability(np.array([10.0, 20.0, 22.0, 25.0]), settings)
    assert p == pytest.approx([0.02 + 0.48 * 10 ** -4.8, 0.02 + 0.48 * 10 ** -0.8, 0.5, 1.0])
    skies, catalogues = _survey(settings)
    deep, truth = catalogues["deep"], _truth_by_id(skies)
    is_galaxy = np.array([truth[int(i)][0] == "galaxy" for i in deep["source_id"]])
    swapped, mag = (np.asarray(deep["class"]) == "galaxy") != is_galaxy, np.asarray(deep["mag"])
    for lo, hi in ((9.0, 18.0), (20.5, 21.5)):
        chosen = (mag >= lo) & (mag < hi)
        expected = deep_confusion_probability(mag[chosen], settings).mean()
        sigma = np.sqrt(expected * (1 - expected) / chosen.sum())
        assert chosen.sum() > 400 and abs(swapped[chosen].mean() - expected) < 4 * sigma, (lo, hi)
    assert swapped[mag >= 20.5].mean() > swapped[mag < 18].mean() + 0.1  # about 0.21 against 0.03


def test_shallow_catalogues_do_not_depend_on_the_deep_catalogues_settings():
    settings = _tiny(image_size=(384, 384), agn_fraction=0.1, variable_fraction=0.1)
    _, catalogues = _survey(settings)
    other = _tiny(image_size=(384, 384), agn_fraction=0.1, variable_fraction=0.1, deep_catalogue_coverage=0.2,
                  deep_catalogue_limit_mag=23.0, deep_catalogue_completeness=0.5, deep_star_galaxy_confusion_bright=0.3)
    _, changed = _survey(other)
    assert len(changed["deep"]) != len(catalogues["deep"])
    for name in SHALLOW:
        assert changed[name].meta == catalogues[name].meta
        for column in catalogues[name].colnames:
            assert np.array_equal(changed[name][column], catalogues[name][column], equal_nan=True), (name, column)


def test_catalogues_are_deterministic():
    settings = _tiny(image_size=(384, 384), agn_fraction=0.3, variable_fraction=0.1)
    skies = [make_field_sky(field, settings) for field in survey_fields(settings)]
    a, b = survey_catalogues(skies, settings), survey_catalogues(skies, settings)
    assert list(a) == [*SHALLOW, "deep"]
    for name in a:
        assert a[name].meta == b[name].meta and len(a[name]) == len(b[name]) > 0, name
        for column in a[name].colnames:
            assert np.array_equal(a[name][column], b[name][column], equal_nan=column != "class"), (name, column)
