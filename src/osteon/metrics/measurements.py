"""Clinical measurements from landmarks: angles and distances in image coordinates (x right, y down).

Each measurement is a pure function of named points; :data:`MEASUREMENTS` lists them with the point names they
need, so that :func:`measure` computes every measurement whose points are present. Angles are in degrees,
distances in mm when a pixel spacing is given (else pixels).

Definitions (hand-checkable, see the tests):

- **Cobb angle**: the acute angle between the upper endplate of the upper end vertebra
  (``upper_endplate_left`` → ``upper_endplate_right``) and the lower endplate of the lower end vertebra
  (``lower_endplate_left`` → ``lower_endplate_right``).
- **Hip–knee–ankle (HKA) angle**: the angle at the knee centre between the femoral mechanical axis
  (knee → hip centre) and the tibial mechanical axis (knee → ankle centre); 180° is a straight leg.
  ``hka_deviation`` is ``180 − HKA`` (0 = neutral alignment; the sign of varus/valgus needs the side).
- **Acetabular index** (per side): the acute angle between Hilgenreiner's line (through both triradiate
  cartilages, ``triradiate_left`` → ``triradiate_right``) and the line from that side's triradiate
  cartilage to the lateral edge of its acetabular roof (``acetabular_edge_<side>``).
- **Graf α angle** (hip ultrasound): the acute angle between the baseline (``baseline_top`` →
  ``baseline_bottom``, along the ilium) and the bony roof line (``ilium_lower_limb`` → ``bony_rim``).
  :func:`graf_type` maps α to Graf's types (I ≥ 60°, II 50–59°, D/IIc 43–49°, III/IV < 43°).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Point = Sequence[float]


def _vec(a: Point, b: Point) -> np.ndarray:
    return np.asarray(b, dtype=float) - np.asarray(a, dtype=float)


def vector_angle(u: Sequence[float], v: Sequence[float]) -> float:
    """Angle in degrees between two vectors, in ``[0, 180]`` (``nan`` for a zero vector)."""
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    if not (np.linalg.norm(u) > 0 and np.linalg.norm(v) > 0):
        return float("nan")
    cross = u[0] * v[1] - u[1] * v[0]
    return math.degrees(math.atan2(abs(cross), float(np.dot(u, v))))


def line_angle(a1: Point, a2: Point, b1: Point, b2: Point) -> float:
    """Acute angle in degrees, ``[0, 90]``, between line ``a1–a2`` and line ``b1–b2`` (direction ignored)."""
    angle = vector_angle(_vec(a1, a2), _vec(b1, b2))
    return min(angle, 180.0 - angle)


def distance(a: Point, b: Point, spacing: tuple[float, float] | None = None) -> float:
    """Euclidean distance; in mm when ``spacing = (row, col)`` mm per pixel is given, else in pixels."""
    d = _vec(a, b)
    if spacing is not None:
        d = d * np.array([spacing[1], spacing[0]])  # x is a column, y a row
    return float(np.hypot(*d))


def cobb_angle(upper_left: Point, upper_right: Point, lower_left: Point, lower_right: Point) -> float:
    """Cobb angle (degrees) between the upper endplate line and the lower endplate line."""
    return line_angle(upper_left, upper_right, lower_left, lower_right)


def hka_angle(hip: Point, knee: Point, ankle: Point) -> float:
    """Hip–knee–ankle angle (degrees) at the knee; 180 = straight mechanical axis."""
    return vector_angle(_vec(knee, hip), _vec(knee, ankle))


def acetabular_index(triradiate_left: Point, triradiate_right: Point, triradiate_side: Point, edge: Point) -> float:
    """Acetabular index (degrees) of one side: Hilgenreiner's line vs triradiate → lateral acetabular edge."""
    return line_angle(triradiate_left, triradiate_right, triradiate_side, edge)


def graf_alpha(baseline_top: Point, baseline_bottom: Point, ilium_lower_limb: Point, bony_rim: Point) -> float:
    """Graf α angle (degrees) between the baseline and the bony roof line."""
    return line_angle(baseline_top, baseline_bottom, ilium_lower_limb, bony_rim)


def graf_type(alpha: float) -> str:
    """Graf's hip type from α alone (β and age refine types II and D; not modelled here)."""
    if not np.isfinite(alpha):
        return "unknown"
    if alpha >= 60:
        return "I"
    if alpha >= 50:
        return "II"
    if alpha >= 43:
        return "D/IIc"
    return "III/IV"


@dataclass(frozen=True)
class Measurement:
    """A measurement: the points it needs (in the order ``fn`` takes them) and its unit."""

    name: str
    points: tuple[str, ...]
    fn: Callable[..., float]
    unit: str = "°"


MEASUREMENTS: dict[str, Measurement] = {
    m.name: m
    for m in (
        Measurement(
            "cobb_angle",
            ("upper_endplate_left", "upper_endplate_right", "lower_endplate_left", "lower_endplate_right"),
            cobb_angle,
        ),
        Measurement("hka_angle", ("hip_centre", "knee_centre", "ankle_centre"), hka_angle),
        Measurement(
            "hka_deviation",
            ("hip_centre", "knee_centre", "ankle_centre"),
            lambda h, k, a: 180.0 - hka_angle(h, k, a),
        ),
        Measurement(
            "acetabular_index_left",
            ("triradiate_left", "triradiate_right", "triradiate_left", "acetabular_edge_left"),
            acetabular_index,
        ),
        Measurement(
            "acetabular_index_right",
            ("triradiate_left", "triradiate_right", "triradiate_right", "acetabular_edge_right"),
            acetabular_index,
        ),
        Measurement("graf_alpha", ("baseline_top", "baseline_bottom", "ilium_lower_limb", "bony_rim"), graf_alpha),
    )
}


def measurable(point_names: Sequence[str]) -> list[str]:
    """Names of the measurements whose points are all among ``point_names``."""
    have = set(point_names)
    return [name for name, m in MEASUREMENTS.items() if set(m.points) <= have]


def measure(points: Mapping[str, Point | None]) -> dict[str, float]:
    """Every measurement of :data:`MEASUREMENTS` computable from ``points`` (``nan`` when a point is missing).

    Args:
        points: ``{name: (x, y)}`` in pixels; ``None`` or non-finite coordinates count as missing.

    Returns:
        ``{measurement: value}`` for the measurements whose point names all appear in ``points``.
    """
    out: dict[str, float] = {}
    for name in measurable(list(points)):
        m = MEASUREMENTS[name]
        args = [points[p] for p in m.points]
        if any(a is None or not np.all(np.isfinite(np.asarray(a, dtype=float))) for a in args):
            out[name] = float("nan")
        else:
            out[name] = float(m.fn(*args))
    return out
