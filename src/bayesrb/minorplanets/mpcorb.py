"""Read and write minor-planet orbits in the Minor Planet Center's MPCORB.DAT format.

The format is the fixed-width one-line-per-object layout documented by the MPC
(https://minorplanetcenter.net/iau/info/MPOrbitFormat.html). Elements are heliocentric osculating
elements referred to the ecliptic and equinox of J2000.0, at an epoch that is 0h TT of a calendar date.

Designations are held unpacked in :class:`Orbits`: numbered objects as their number (``"433"``),
provisional ones as ``"2024 AB12"`` and survey ones as ``"2040 P-L"``. The file holds them packed
(``"00433"``, ``"K24A12B"``, ``"PLS2040"``).
"""

import functools
import itertools
import logging
import math
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

import erfa
import numpy as np

from bayesrb.atomic import atomic_path
from bayesrb.errors import BadInputError

log = logging.getLogger(__name__)

DEFAULT_SLOPE_G = 0.15
"""Slope parameter assumed when the G column is blank (the MPC's own default)."""

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HALF_MONTH_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXY"
_ORDER_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
_SURVEYS = {"P-L": "PLS", "T-1": "T1S", "T-2": "T2S", "T-3": "T3S"}
_PROVISIONAL = re.compile(r"(\d{4}) ([A-HJ-Y])([A-HJ-Z])(\d*)")
_EXTENDED_CYCLE = 620
_SURVEY = re.compile(r"(\d{4}) (P-L|T-[123])")
_MJD_ZERO_JD = 2400000.5
_LINE_LENGTH = 202
_HEADER_SEARCH_LINES = 200
_MAX_LOGGED_LINES = 20

# (name, first column, last column) with 1-based inclusive columns as in the MPC documentation.
_ELEMENT_COLUMNS = (
    ("mean_anomaly_deg", 27, 35),
    ("arg_perihelion_deg", 38, 46),
    ("node_deg", 49, 57),
    ("inclination_deg", 60, 68),
    ("eccentricity", 71, 79),
    ("mean_motion_deg_per_day", 81, 91),
    ("semimajor_axis_au", 93, 103),
)
_BLANK_COLUMNS = (8, 14, 20, 26, 36, 37, 47, 48, 58, 59, 69, 70, 80, 92)

# Columns 104-202 describe the orbit determination, which synthetic orbits do not have. The writer
# fills them with plausible single-opposition values so that other MPCORB readers accept the file.
_ORBIT_QUALITY = (
    "0 bayesrb   "  # uncertainty U (col 106) and reference (108-116)
    "   20   1   30 days 0.40 M-v 3Ek bayesrb    0000 "  # obs, oppositions, arc, rms, perturbers, computer, flags
)


@dataclass(frozen=True)
class Orbits:
    """Heliocentric osculating orbits (ecliptic and equinox J2000.0), one entry per minor planet.

    Every attribute is a 1-D numpy array of the same length; the constructor converts its arguments
    with :func:`numpy.asarray` and raises ``ValueError`` if the lengths differ.

    Attributes
    ----------
    designation : numpy.ndarray of str
        Unpacked designation (``"433"``, ``"2024 AB12"``, ``"2040 P-L"``).
    H : numpy.ndarray
        Absolute magnitude H (mag).
    G : numpy.ndarray
        Slope parameter G of the IAU H,G system.
    epoch_mjd : numpy.ndarray
        Epoch of osculation, MJD in TT.
    mean_anomaly_deg, arg_perihelion_deg, node_deg, inclination_deg : numpy.ndarray
        Mean anomaly at the epoch, argument of perihelion, longitude of the ascending node and
        inclination (degrees).
    eccentricity : numpy.ndarray
        Eccentricity (dimensionless, ``0 <= e < 1``).
    mean_motion_deg_per_day : numpy.ndarray
        Mean daily motion (degrees per day); propagation uses this value.
    semimajor_axis_au : numpy.ndarray
        Semi-major axis (au).
    """

    designation: np.ndarray
    H: np.ndarray
    G: np.ndarray
    epoch_mjd: np.ndarray
    mean_anomaly_deg: np.ndarray
    arg_perihelion_deg: np.ndarray
    node_deg: np.ndarray
    inclination_deg: np.ndarray
    eccentricity: np.ndarray
    mean_motion_deg_per_day: np.ndarray
    semimajor_axis_au: np.ndarray

    def __post_init__(self):
        for field in fields(self):
            dtype = str if field.name == "designation" else np.float64
            column = np.asarray(getattr(self, field.name), dtype=dtype)
            if column.ndim != 1:
                raise ValueError(f"orbit column {field.name} must be 1-D, got shape {column.shape}")
            object.__setattr__(self, field.name, column)
        lengths = {field.name: len(getattr(self, field.name)) for field in fields(self)}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"orbit columns differ in length: {lengths}")

    def __len__(self) -> int:
        return len(self.designation)

    def subset(self, index_or_mask) -> "Orbits":
        """Return the orbits selected by an integer index array, a slice or a boolean mask.

        Parameters
        ----------
        index_or_mask : array_like of int or bool, or slice
            Selection applied to every column.

        Returns
        -------
        Orbits
            The selected orbits, in selection order.
        """
        return Orbits(**{field.name: getattr(self, field.name)[index_or_mask] for field in fields(self)})

    @classmethod
    def concatenate(cls, parts) -> "Orbits":
        """Join several ``Orbits`` end to end.

        Parameters
        ----------
        parts : sequence of Orbits
            At least one set of orbits.

        Returns
        -------
        Orbits
            All orbits of ``parts`` in order.
        """
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


def _base62_value(char: str) -> int:
    value = _BASE62.find(char)
    if value < 0:
        raise ValueError(f"{char!r} is not a packed digit")
    return value


@functools.lru_cache(maxsize=4096)
def unpack_epoch(packed: str) -> int:
    """Decode a packed MPC epoch such as ``"K24AV"`` (2024-10-31) into an MJD.

    Parameters
    ----------
    packed : str
        Five characters: century (I=18, J=19, K=20), two-digit year, month and day in base 62.

    Returns
    -------
    int
        MJD of 0h on that date (the epoch is in TT).

    Raises
    ------
    ValueError
        If ``packed`` is not a valid date.
    """
    if len(packed) != 5 or not packed[1:3].isdigit() or not set(packed) <= set(_BASE62):
        raise ValueError(f"bad packed epoch {packed!r}")
    date = (100 * _base62_value(packed[0]) + int(packed[1:3]), _base62_value(packed[3]), _base62_value(packed[4]))
    if not 1 <= date[1] <= 12:
        raise ValueError(f"bad month in packed epoch {packed!r}")
    mjd = erfa.cal2jd(date[0], date[1], 1)[1] + date[2] - 1
    if date[2] < 1 or tuple(erfa.jd2cal(_MJD_ZERO_JD, mjd)[:3]) != date:
        raise ValueError(f"packed epoch {packed!r} is not a calendar date")
    return int(mjd)


@functools.lru_cache(maxsize=4096)
def pack_epoch(epoch_mjd: float) -> str:
    """Encode an integral MJD as a packed MPC epoch (inverse of :func:`unpack_epoch`).

    Parameters
    ----------
    epoch_mjd : float
        MJD (TT) of 0h of a date; it must be a whole number.

    Returns
    -------
    str
        The five-character packed epoch.

    Raises
    ------
    ValueError
        If ``epoch_mjd`` is not a whole number or outside the years 1800-6199.
    """
    if epoch_mjd != np.round(epoch_mjd):
        raise ValueError(f"epoch MJD {epoch_mjd} is not 0h of a date; the MPCORB format needs whole days")
    year, month, day, _ = erfa.jd2cal(_MJD_ZERO_JD, float(epoch_mjd))
    century, year_in_century = divmod(int(year), 100)
    if not 18 <= century < len(_BASE62):
        raise ValueError(f"epoch MJD {epoch_mjd} is outside the years the packed format covers")
    return f"{_BASE62[century]}{year_in_century:02d}{_BASE62[int(month)]}{_BASE62[int(day)]}"


def _to_base62(value: int, width: int) -> str:
    digits = ""
    for _ in range(width):
        value, digit = divmod(value, 62)
        digits = _BASE62[digit] + digits
    if value:
        raise ValueError(f"value too large for {width} packed digits")
    return digits


def _from_base62(text: str) -> int:
    value = 0
    for char in text:
        value = 62 * value + _base62_value(char)
    return value


def _pack_number(number: int) -> str:
    if number < 100_000:
        return f"{number:05d}"
    if number < 620_000:
        return f"{_BASE62[number // 10_000]}{number % 10_000:04d}"
    return "~" + _to_base62(number - 620_000, 4)


def _unpack_number(packed: str) -> str:
    if packed[0] == "~":
        return str(620_000 + _from_base62(packed[1:]))
    if not packed[1:].isdigit():
        raise ValueError(f"bad packed number {packed!r}")
    return str(_base62_value(packed[0]) * 10_000 + int(packed[1:]))


def _pack_provisional(year: int, half_month: str, order: str, cycle: int) -> str:
    if cycle < _EXTENDED_CYCLE:
        return f"{_BASE62[year // 100]}{year % 100:02d}{half_month}{_BASE62[cycle // 10]}{cycle % 10}{order}"
    if not 2000 <= year < 2062:
        raise ValueError(f"cycle counts of {_EXTENDED_CYCLE} and more can only be packed for 2000-2061")
    serial = (cycle - _EXTENDED_CYCLE) * len(_ORDER_LETTERS) + _ORDER_LETTERS.index(order)
    return f"_{_BASE62[year - 2000]}{half_month}{_to_base62(serial, 4)}"


def _unpack_provisional(packed: str) -> tuple[int, str, str, int]:
    if packed[0] == "_":
        cycle, order = divmod(_from_base62(packed[3:]), len(_ORDER_LETTERS))
        return 2000 + _base62_value(packed[1]), packed[2], _ORDER_LETTERS[order], cycle + _EXTENDED_CYCLE
    if not (packed[1:3].isdigit() and packed[5].isdigit() and packed[6] in _ORDER_LETTERS):
        raise ValueError(f"bad packed designation {packed!r}")
    year = 100 * _base62_value(packed[0]) + int(packed[1:3])
    return year, packed[3], packed[6], 10 * _base62_value(packed[4]) + int(packed[5])


def pack_designation(designation: str) -> str:
    """Pack a numbered, provisional or survey designation the way MPCORB.DAT stores it.

    Parameters
    ----------
    designation : str
        ``"433"``, ``"2024 AB12"`` or ``"2040 P-L"``.

    Returns
    -------
    str
        The packed form: five characters for numbered objects (``"00433"``, ``"A0001"``,
        ``"~0000"``), seven for the others (``"K24A12B"``, ``"PLS2040"``, and the MPC's extended
        form ``"_QC0000"`` for cycle counts of 620 and more, e.g. ``"2026 CA620"``).

    Raises
    ------
    ValueError
        If the designation has none of these forms or is too large for them.
    """
    if designation.isdigit():
        return _pack_number(int(designation))
    if match := _SURVEY.fullmatch(designation):
        return _SURVEYS[match[2]] + match[1]
    if not (match := _PROVISIONAL.fullmatch(designation)):
        raise ValueError(f"cannot pack designation {designation!r}")
    year, half_month, order, cycle = match.groups()
    return _pack_provisional(int(year), half_month, order, int(cycle or 0))


def unpack_designation(packed: str) -> str:
    """Unpack a designation from columns 1-7 of MPCORB.DAT (inverse of :func:`pack_designation`).

    Parameters
    ----------
    packed : str
        Packed designation; surrounding blanks are ignored.

    Returns
    -------
    str
        ``"433"``, ``"2024 AB12"`` or ``"2040 P-L"``.

    Raises
    ------
    ValueError
        If ``packed`` is not a packed numbered, provisional or survey designation.
    """
    packed = packed.strip()
    if not set(packed) <= set(_BASE62 + "~_"):
        raise ValueError(f"bad packed designation {packed!r}")
    if len(packed) == 5:
        return _unpack_number(packed)
    if len(packed) != 7:
        raise ValueError(f"bad packed designation {packed!r}")
    survey = {code: name for name, code in _SURVEYS.items()}.get(packed[:3])
    if survey and packed[3:].isdigit():
        return f"{packed[3:]} {survey}"
    year, half_month, order, cycle = _unpack_provisional(packed)
    if half_month not in _HALF_MONTH_LETTERS:
        raise ValueError(f"bad half-month letter in packed designation {packed!r}")
    return f"{year} {half_month}{order}{cycle or ''}"


def _field(line: str, name: str, first: int, last: int) -> float:
    text = line[first - 1 : last]
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} {text.strip()!r} in columns {first}-{last} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} in columns {first}-{last} is not finite")
    return value


def _check_layout(line: str) -> None:
    if len(line) < 103:
        raise ValueError(f"line has {len(line)} characters, the orbital elements need 103")
    shifted = [column for column in _BLANK_COLUMNS if line[column - 1] != " "]
    if shifted:
        raise ValueError(f"column {shifted[0]} should be blank (fields shifted?)")


def _check_ranges(row: dict) -> None:
    if not 0.0 <= row["eccentricity"] < 1.0:
        raise ValueError(f"eccentricity {row['eccentricity']} is not in [0, 1)")
    if row["semimajor_axis_au"] <= 0 or row["mean_motion_deg_per_day"] <= 0:
        raise ValueError("semi-major axis and mean motion must be positive")
    if not 0.0 <= row["inclination_deg"] <= 180.0:
        raise ValueError(f"inclination {row['inclination_deg']} is not in [0, 180] degrees")


def _parse_line(line: str) -> dict:
    """Parse one MPCORB line into a dict of Orbits columns; raise ValueError saying what is wrong."""
    _check_layout(line)
    if not line[8:13].strip():
        raise ValueError("absolute magnitude H (columns 9-13) is blank")
    row = {
        "designation": unpack_designation(line[0:7]),
        "H": _field(line, "H", 9, 13),
        "G": _field(line, "G", 15, 19) if line[14:19].strip() else DEFAULT_SLOPE_G,
        "epoch_mjd": unpack_epoch(line[20:25]),
    }
    row.update({name: _field(line, name, first, last) for name, first, last in _ELEMENT_COLUMNS})
    _check_ranges(row)
    return row


def _header_length(first_lines: list[str]) -> int:
    """Number of header lines: up to and including the dashed line that ends the MPC header, if any."""
    for number, line in enumerate(first_lines, start=1):
        if line.startswith("-----"):
            return number
    return 0


def _report_malformed(path: Path, problems: list[tuple[int, str]], n_lines: int, max_bad_fraction: float):
    for number, reason in problems[:_MAX_LOGGED_LINES]:
        log.warning("%s: line %d skipped: %s", path, number, reason)
    if len(problems) > _MAX_LOGGED_LINES:
        log.warning("%s: %d more malformed lines skipped", path, len(problems) - _MAX_LOGGED_LINES)
    if len(problems) > max_bad_fraction * n_lines:
        first_line, first_reason = problems[0]
        raise BadInputError(
            path,
            f"{len(problems)} of {n_lines} lines malformed (more than {max_bad_fraction:.1%}), "
            f"first at line {first_line}: {first_reason}",
        )


def read_mpcorb(path: str | os.PathLike, max_bad_fraction: float = 0.01) -> Orbits:
    """Read orbits from a file in the MPCORB.DAT format.

    The MPC header (everything up to and including the line of dashes, searched for in the first
    200 lines) is skipped when present, as are blank lines. A blank G column means G = 0.15; a blank
    H column makes the line malformed. Malformed lines (wrong layout, unreadable numbers, invalid
    packed designation or epoch, eccentricity outside [0, 1)) are logged as warnings with their line
    numbers and skipped.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read (plain text).
    max_bad_fraction : float, optional
        Largest tolerated fraction of malformed lines among the non-blank lines after the header.

    Returns
    -------
    Orbits
        One entry per well-formed line, in file order.

    Raises
    ------
    BadInputError
        If the file cannot be read, holds no orbit lines, or has too many malformed lines.
    """
    path = Path(path)
    rows, problems = [], []
    try:
        with path.open(encoding="ascii", errors="replace") as stream:
            head = list(itertools.islice(stream, _HEADER_SEARCH_LINES))
            n_header = _header_length(head)
            for number, line in enumerate(itertools.chain(head, stream), start=1):
                if number <= n_header or not line.strip():
                    continue
                try:
                    rows.append(_parse_line(line.rstrip("\r\n")))
                except ValueError as error:
                    problems.append((number, str(error)))
    except OSError as error:
        raise BadInputError(path, f"cannot be read ({error.strerror or error})") from None
    n_lines = len(rows) + len(problems)
    if n_lines == 0:
        raise BadInputError(path, "holds no orbit lines (empty file?)")
    _report_malformed(path, problems, n_lines, max_bad_fraction)
    return Orbits(**{field.name: [row[field.name] for row in rows] for field in fields(Orbits)})


def _readable_designation(designation: str) -> str:
    return f"({designation})" if designation.isdigit() else designation


def _format_line(designation: str, h_mag: float, slope_g: float, epoch_mjd: float, *elements: float) -> str:
    mean_anomaly, arg_perihelion, node, inclination, eccentricity, mean_motion, semi_major = elements
    line = (
        f"{pack_designation(designation):<7s} {h_mag:5.2f} {slope_g:5.2f} {pack_epoch(epoch_mjd)} "
        f"{mean_anomaly:9.5f}  {arg_perihelion:9.5f}  {node:9.5f}  {inclination:9.5f}  {eccentricity:9.7f} "
        f"{mean_motion:11.8f} {semi_major:11.7f}  {_ORBIT_QUALITY}{_readable_designation(designation):<28s}"
        f"{_last_observation_date(epoch_mjd)}"
    )
    if len(line) != _LINE_LENGTH:
        raise ValueError(f"orbit {designation!r} has a value too wide for its MPCORB column")
    return line


@functools.lru_cache(maxsize=4096)
def _last_observation_date(epoch_mjd: float) -> str:
    year, month, day, _ = erfa.jd2cal(_MJD_ZERO_JD, epoch_mjd)
    return f"{year:04d}{month:02d}{day:02d}"


def write_mpcorb(orbits: Orbits, path: str | os.PathLike) -> None:
    """Write orbits as an MPCORB.DAT file (no header), atomically.

    Each line has the MPC's 202-column layout: packed designation, H, G, packed epoch, the elements
    at the printed precision, then orbit-quality columns (uncertainty, reference, observations,
    oppositions, arc, rms, perturbers, computer, flags) filled with plausible single-opposition
    values, the readable designation and a last-observation date equal to the epoch date. Reading
    the file back with :func:`read_mpcorb` gives the values rounded to the printed precision, and
    writing those again gives an identical file.

    Parameters
    ----------
    orbits : Orbits
        Orbits to write; epochs must be whole MJDs (0h TT).
    path : str or os.PathLike
        Destination; it only appears once completely written.

    Raises
    ------
    ValueError
        If a designation cannot be packed, an epoch is not a whole MJD, or a value does not fit its
        column.
    """
    columns = [getattr(orbits, field.name).tolist() for field in fields(Orbits)]
    lines = [_format_line(*row) for row in zip(*columns, strict=True)]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="ascii")
