"""The labelled organs' implicit shapes, drawn from the records of
:data:`~monai_ag.data.phantom.organ_table.ORGAN_TABLE`: one function per kind of organ turns its record
into fields over boxes of the volume (``< 0`` inside), plus the landmarks the unlabelled viscera are
painted at later (gallbladder, stomach, pancreatic head, splenic vein).

Each function draws from the phantom's random stream in a fixed order, so a seed fixes every shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .geometry import Blob, Box, Grid, Waves, ellipsoid, orthonormal_frame, rotated, smooth_min, unit_vector
from .organ_table import ORGAN_TABLE, Anchor, Kidneys, Liver, Neighbour, Orientation, Pancreas, Range, Spleen, WaveSpec

__all__ = ["Body", "Landmarks", "OrganShape", "draw_organ", "draw_organs"]


@dataclass(frozen=True)
class Body:
    """What the organs are placed by: the random stream, the grid, the body's size relative to the reference
    body (``sx`` width, ``sy`` depth) and the vertebral body's centre ``y_spine`` (mm)."""

    rng: np.random.Generator
    grid: Grid
    sx: float
    sy: float
    y_spine: float

    def scaled(self, point: Sequence[float]) -> np.ndarray:
        """``point`` (mm, for the reference body) scaled by this body's width and depth."""
        return np.asarray(point, dtype=np.float64) * np.array([self.sx, self.sy, 1.0])

    def place(self, anchor: Anchor) -> np.ndarray:
        """The anchor's point: its base scaled by the body's size, jittered."""
        return self.scaled(anchor.base) + self.rng.uniform(-1.0, 1.0, 3) * np.asarray(anchor.jitter)

    def draw(self, ranges: Sequence[Range]) -> tuple[float, ...]:
        """One uniform draw from each range, in order."""
        return tuple(self.rng.uniform(lo, hi) for lo, hi in ranges)

    def axes(self, orientation: Orientation) -> np.ndarray:
        """The orientation's local axes (rows), randomly turned."""
        return rotated(
            orthonormal_frame(orientation.primary, orientation.secondary), self.rng, orientation.max_rotation_deg
        )

    def waves(self, spec: WaveSpec) -> Waves:
        """A smooth random field with the spec's amplitude and frequencies."""
        return Waves(self.rng, spec.amplitude, spec.fmin, spec.fmax)


@dataclass
class OrganShape:
    """One organ's implicit field over its box, the rank it claims voxels with and, for a kidney, its medulla."""

    organ: int
    rank: float
    box: Box
    field: np.ndarray
    medulla: np.ndarray | None = None


@dataclass(frozen=True)
class Landmarks:
    """What the organs place for the unlabelled viscera: the gallbladder and the stomach (both indent the
    liver), the pancreatic head (the duodenum wraps it) and the splenic vein's voxels behind the pancreas."""

    gallbladder: Blob
    stomach: Blob
    pancreas_head: np.ndarray
    splenic_vein: tuple[Box, np.ndarray]


def _neighbour(spec: Neighbour, body: Body, organ_centre: np.ndarray) -> Blob:
    """The viscus ``spec`` describes, placed by the organ's centre or the body."""
    base = organ_centre + np.array(spec.offset) if spec.relative else body.scaled(spec.offset)
    centre = base + body.rng.uniform(-spec.spread, spec.spread, 3)
    frame = body.axes(spec.orientation)
    radii = body.draw(spec.radii)
    return Blob(centre, frame, radii, None if spec.waves is None else body.waves(spec.waves))


def _liver(spec: Liver, body: Body, landmarks: dict[str, Any]) -> list[OrganShape]:
    """The liver, cut and indented by its neighbours; places the gallbladder and the stomach."""
    g = body.grid
    c = body.place(spec.centre)
    radii = body.draw(spec.radii)
    liver = Blob(c, body.axes(spec.orientation), radii, body.waves(spec.waves))
    normal = unit_vector((-body.rng.uniform(*spec.cut_tilt), -0.15, -1.0))
    cut_point = c + np.array([0.0, 0.0, -body.rng.uniform(*spec.cut_depth)])
    # the liver does not reach left of the IVC behind the pancreas / stomach (no wrapping of the aorta)
    medial_corner = np.array([spec.medial_corner[0] * body.sx, body.y_spine + spec.medial_corner[1], 0.0])
    gallbladder = _neighbour(spec.gallbladder, body, c)
    sl = liver.box(g)
    dx, dy, dz = g.offsets(sl, cut_point)
    f = np.maximum(liver.field(g, sl), (normal[0] * dx + normal[1] * dy + normal[2] * dz) / spec.cut_scale_mm)
    dx, dy, _ = g.offsets(sl, medial_corner)
    lobe = smooth_min(-dx, spec.left_lobe_slope * (-dx) - dy, spec.left_lobe_rounding_mm)
    f = np.maximum(f, lobe / spec.cut_scale_mm)  # left lobe: a thinning wedge
    # the left lobe drapes over the stomach; the gallbladder sits in its fossa
    stomach = _neighbour(spec.stomach, body, c)
    f = np.maximum(f, -gallbladder.field(g, sl))
    f = np.maximum(f, spec.stomach_clearance - stomach.field(g, sl))
    landmarks.update(gallbladder=gallbladder, stomach=stomach)
    return [OrganShape(spec.organ, spec.rank, sl, f)]


def _spleen(spec: Spleen, body: Body, landmarks: dict[str, Any]) -> list[OrganShape]:
    """The spleen: a bent, deformed ellipsoid."""
    g = body.grid
    c = body.place(spec.centre)
    frame = body.axes(spec.orientation)
    radii = body.draw(spec.radii)
    bend = body.rng.uniform(*spec.bend)
    waves = body.waves(spec.waves)
    sl = Blob(c, frame, radii).box(g, spec.box_margin)
    u, v, w = g.local(sl, c, frame)
    un, vn, wn = u / radii[0], v / radii[1], w / radii[2]
    vn_bent = vn - bend * (un**2 + wn**2)
    f = np.sqrt(un**2 + vn_bent**2 + wn**2) - 1.0 + waves.on_box(g, sl, c, frame, radii)
    return [OrganShape(spec.organ, spec.rank, sl, f)]


def _kidneys(spec: Kidneys, body: Body, landmarks: dict[str, Any]) -> list[OrganShape]:
    """Both kidneys, right then left, each with its hilum notch and its medulla."""
    g = body.grid
    centres = [body.place(side.centre) for side in spec.sides]
    shapes = []
    for side, c in zip(spec.sides, centres):
        frame = body.axes(side.orientation)
        radii = body.draw(spec.radii)
        kidney = Blob(c, frame, radii, body.waves(spec.waves))
        sl = kidney.box(g)
        f = kidney.field(g, sl)
        outward = side.orientation.secondary
        lateral = frame[1] if np.dot(frame[1], outward) > 0 else -frame[1]
        hilum_dir = unit_vector(-lateral + np.array([0.0, spec.hilum_lift, 0.0]))
        notch = Blob(
            c + hilum_dir * radii[1] * body.rng.uniform(*spec.notch_depth),
            orthonormal_frame(frame[0], hilum_dir),
            body.draw(spec.notch_radii),
        )
        f = np.maximum(f, -notch.field(g, sl))
        u, v, w = g.local(sl, c, frame)
        medulla_waves = body.waves(spec.medulla_waves)
        medulla = ellipsoid(u, v, w, radii) + medulla_waves.on_box(g, sl, c, frame, radii) < spec.medulla_level
        shapes.append(OrganShape(side.organ, spec.rank, sl, f, medulla))
    return shapes


def _pancreas(spec: Pancreas, body: Body, landmarks: dict[str, Any]) -> list[OrganShape]:
    """The pancreas: a tube whose thickness blends from head to tail; places its head and the splenic vein."""
    g, rng = body.grid, body.rng
    head, tail = body.place(spec.head), body.place(spec.tail)
    centre = 0.5 * (head + tail)
    half_len = 0.5 * float(np.linalg.norm(tail - head))
    frame = orthonormal_frame(tail - head, (0.0, 1.0, 0.0))  # u: head -> tail, v: anterior, w: ~superior
    if frame[2][2] < 0:
        frame[2] = -frame[2]
    r_body, r_head, r_tail = body.draw(spec.body_radii), body.draw(spec.head_radii), body.draw(spec.tail_radii)
    bulge, lift = rng.uniform(*spec.bulge), rng.uniform(*spec.lift)
    wig_amp, wig_f = rng.uniform(*spec.wiggle_amplitude), rng.uniform(*spec.wiggle_frequency)
    wig_ph = rng.uniform(0, 2 * np.pi)
    waves = body.waves(spec.waves)
    reach = half_len + 12.0
    hv = np.abs(frame.T) @ np.array([reach, bulge + r_head[0] + 8.0, r_head[1] + 8.0]) + 6.0
    sl = g.box(centre, hv)
    u, v, w = g.local(sl, centre, frame)
    s = u / half_len
    sc = np.clip(s, -1.2, 1.2)
    head_w = np.exp(-(((sc + 1.0) / 0.5) ** 2))
    tail_w = np.exp(-(((sc - 1.0) / 0.4) ** 2))
    body_w = np.clip(1.0 - head_w - tail_w, 0.0, 1.0)
    rv = body_w * r_body[0] + head_w * r_head[0] + tail_w * r_tail[0]
    rw = body_w * r_body[1] + head_w * r_head[1] + tail_w * r_tail[1]
    vc = bulge * (1.0 - sc**2) + wig_amp * np.sin(wig_f * np.pi * sc + wig_ph)
    wc = lift * (1.0 - sc**2)
    f = np.sqrt(sc**6 + ((v - vc) / rv) ** 2 + ((w - wc) / rw) ** 2) - 1.0
    f = f + waves.on_box(g, sl, centre, frame, (half_len, r_body[0], r_body[1]))
    f = np.where(np.abs(s) > 1.15, np.inf, f)
    # splenic vein along the back of the body and tail
    vein_v = vc - rv - 5.0
    vein = ((v - vein_v) ** 2 + (w - wc) ** 2 < spec.vein_radius_mm**2) & (s > -0.45) & (s < 1.0)
    landmarks.update(splenic_vein=(sl, vein), pancreas_head=head)
    return [OrganShape(spec.organ, spec.rank, sl, f)]


#: the shape function of each kind of organ record
_SHAPES: dict[type, Callable[[Any, Body, dict[str, Any]], list[OrganShape]]] = {
    Liver: _liver,
    Spleen: _spleen,
    Kidneys: _kidneys,
    Pancreas: _pancreas,
}


def draw_organ(spec: Liver | Spleen | Kidneys | Pancreas, body: Body, landmarks: dict[str, Any]) -> list[OrganShape]:
    """The shapes of one record of the organ table (two for the kidneys); its landmarks go into ``landmarks``
    (name -> value, the fields of :class:`Landmarks`)."""
    return _SHAPES[type(spec)](spec, body, landmarks)


def draw_organs(body: Body) -> tuple[list[OrganShape], Landmarks]:
    """Every organ of :data:`~monai_ag.data.phantom.organ_table.ORGAN_TABLE`, in its order, and the landmarks
    they place (a ``TypeError`` if the table leaves one out)."""
    found: dict[str, Any] = {}
    shapes = [shape for spec in ORGAN_TABLE for shape in draw_organ(spec, body, found)]
    return shapes, Landmarks(**found)
