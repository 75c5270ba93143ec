"""Typed settings of the simulated survey, built from the ``simulate:`` section of the config."""

from dataclasses import dataclass


@dataclass(frozen=True)
class SurveySettings:
    """Everything that defines the simulated survey; see ``config/README.md`` for each key.

    Magnitudes are AB-like instrumental magnitudes, fluxes in ADU per sub-exposure, angles in degrees
    unless the name says ``arcsec``, times in MJD (UTC) or seconds.
    """

    seed: int = 1
    start_mjd: float = 61000.0
    n_fields: int = 13
    field_spacing_deg: float = 1.0
    n_nights: int = 4
    visits_per_night: int = 1
    night_spacing_days: float = 1.0
    image_size: tuple[int, int] = (1024, 1024)
    pixel_scale_arcsec: float = 1.24
    observatory_lon_deg: float = -17.8792
    observatory_lat_deg: float = 28.7603
    observatory_height_m: float = 2300.0
    n_subexposures: int = 4
    subexposure_time_s: float = 60.0
    subexposure_cadence_s: float = 75.0
    zero_point: float = 25.6
    sky_adu: float = 300.0
    gain_e_per_adu: float = 1.0
    read_noise_e: float = 10.0
    saturation_adu: float = 60000.0
    fwhm_range_arcsec: tuple[float, float] = (1.5, 4.0)
    fwhm_field_variation: float = 0.08
    moffat_beta: float = 3.0
    pointing_jitter_arcsec: float = 10.0
    rotation_jitter_deg: float = 0.05
    template_fwhm_arcsec: float = 2.2
    template_n_combine: int = 9
    template_offset_arcsec: float = 10.0
    template_rotation_deg: float = 0.1
    star_density_per_deg2: float = 6000.0
    star_mag_range: tuple[float, float] = (9.0, 21.5)
    star_lf_slope: float = 0.3
    galaxy_density_per_deg2: float = 1500.0
    galaxy_mag_range: tuple[float, float] = (14.0, 21.0)
    galaxy_hlr_range_arcsec: tuple[float, float] = (1.0, 5.0)
    variable_fraction: float = 0.03
    variable_amplitude_range_mag: tuple[float, float] = (0.1, 1.0)
    agn_fraction: float = 0.03
    agn_variability_mag: float = 0.3
    supernovae_per_field: int = 3
    nuclear_transients_per_field: int = 1
    hostless_transients_per_field: int = 1
    n_eval_fields: int = 4
    n_context_fields: int = 12
    eval_variable_fraction: float = 0.3
    eval_agn_fraction: float = 0.2
    eval_supernovae_per_field: int = 45
    eval_nuclear_transients_per_field: int = 35
    eval_hostless_transients_per_field: int = 25
    transient_peak_mag_range: tuple[float, float] = (16.5, 20.5)
    minor_planets_per_visit: int = 40
    minor_planet_mag_range: tuple[float, float] = (15.5, 21.0)
    cosmic_rays_per_megapixel: float = 30.0
    hot_pixels_per_megapixel: float = 40.0
    bad_columns: int = 2
    satellite_probability: float = 0.2
    catalogue_limit_mag: float = 21.0
    catalogue_completeness: float = 0.95
    star_galaxy_confusion: float = 0.02
    deep_catalogue_limit_mag: float = 22.0
    deep_catalogue_completeness: float = 0.9
    deep_catalogue_coverage: float = 0.6
    deep_star_galaxy_confusion_bright: float = 0.01
    deep_star_galaxy_confusion_at_limit: float = 0.25
    known_transient_fraction: float = 0.9

    def transient_counts(self, evaluation: bool) -> dict[str, int]:
        """Transients per field of each kind (``sn``, ``nuclear``, ``hostless``).

        Parameters
        ----------
        evaluation : bool
            Whether the field is kept out of the CNN's training (an evaluation or context field), which takes the
            ``eval_*`` counts.

        Returns
        -------
        dict of str to int
        """
        if evaluation:
            return {"sn": self.eval_supernovae_per_field, "nuclear": self.eval_nuclear_transients_per_field,
                    "hostless": self.eval_hostless_transients_per_field}
        return {"sn": self.supernovae_per_field, "nuclear": self.nuclear_transients_per_field,
                "hostless": self.hostless_transients_per_field}

    @property
    def field_width_deg(self) -> float:
        """Width of the science image along x, in degrees."""
        return self.image_size[0] * self.pixel_scale_arcsec / 3600.0

    @property
    def field_height_deg(self) -> float:
        """Height of the science image along y, in degrees."""
        return self.image_size[1] * self.pixel_scale_arcsec / 3600.0
