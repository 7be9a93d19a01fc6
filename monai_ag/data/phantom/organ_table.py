"""The phantom's labelled organs as data: where each one sits, how large it is, how it is turned and
deformed, and the ranges its random variations are drawn from (all in mm, world RAS+ axes: ``x``
towards the patient's right, ``y`` anterior, ``z`` superior). :mod:`~monai_ag.data.phantom.organ_shapes`
turns each record into a shape; :data:`ORGAN_TABLE` is the order they are drawn and claim voxels in.

Positions of :class:`Anchor` scale with the body's drawn width (``x``) and depth (``y``); a range
``(lo, hi)`` is one uniform draw. Changing a number changes the phantom: bump
:data:`~monai_ag.data.phantom.anatomy.PHANTOM_VERSION` with it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ORGAN_CLASS_NAMES",
    "ORGAN_TABLE",
    "Anchor",
    "KIDNEY_L",
    "KIDNEY_R",
    "KidneySide",
    "Kidneys",
    "LIVER",
    "Liver",
    "Neighbour",
    "Orientation",
    "PANCREAS",
    "Pancreas",
    "Range",
    "SPLEEN",
    "Spleen",
    "Vec3",
    "WaveSpec",
]

Vec3 = tuple[float, float, float]
#: ``(lo, hi)`` of one uniform draw
Range = tuple[float, float]

#: internal organ ids (the kidneys are separate objects sharing one label); 0 is no organ
LIVER, SPLEEN, KIDNEY_R, KIDNEY_L, PANCREAS = 1, 2, 3, 4, 5
#: each internal organ id's class (:data:`monai_ag.data.classes.CLASS_NAMES`)
ORGAN_CLASS_NAMES: dict[int, str] = {
    LIVER: "liver",
    SPLEEN: "spleen",
    KIDNEY_R: "kidney",
    KIDNEY_L: "kidney",
    PANCREAS: "pancreas",
}


@dataclass(frozen=True)
class Anchor:
    """A point at ``base`` (``x`` and ``y`` scaled by the body's size) moved by up to ``jitter`` mm per axis."""

    base: Vec3
    jitter: Vec3


@dataclass(frozen=True)
class Orientation:
    """Local axes: the first along ``primary``, the second closest to ``secondary``, then turned at random by up
    to ``max_rotation_deg`` degrees about each world axis."""

    primary: Vec3
    secondary: Vec3
    max_rotation_deg: float


#: the world axes, unturned
_AXIS_ALIGNED: tuple[Vec3, Vec3] = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


@dataclass(frozen=True)
class WaveSpec:
    """A smooth random deformation: ``amplitude`` (fraction of the radii) and spatial frequencies ``fmin..fmax``
    (cycles per radius)."""

    amplitude: float
    fmin: float
    fmax: float


@dataclass(frozen=True)
class Neighbour:
    """An unlabelled viscus placed with an organ and indenting it: centre ``offset`` (from the organ's centre
    when ``relative``, else a body-scaled point) plus up to ``spread`` mm per axis, turned by ``orientation``,
    with radii drawn from ``radii`` and an optional deformation."""

    offset: Vec3
    relative: bool
    spread: float
    orientation: Orientation
    radii: tuple[Range, Range, Range]
    waves: WaveSpec | None


@dataclass(frozen=True)
class Liver:
    """A large wedge on the patient's right: a deformed ellipsoid cut obliquely below/left by a plane whose
    normal tilts by ``cut_tilt`` towards the patient's left, ``cut_depth`` below its centre; its left lobe
    thins towards ``medial_corner`` (``x`` body-scaled, ``y`` in front of the spine) and stops at the IVC.
    Both cuts are soft: ``cut_scale_mm`` of distance make one unit of the field. The gallbladder and the
    stomach indent it (the stomach keeps ``stomach_clearance``, a fraction of its radii, about 3 mm)."""

    organ: int
    rank: float
    centre: Anchor
    radii: tuple[Range, Range, Range]
    orientation: Orientation
    waves: WaveSpec
    cut_tilt: Range
    cut_depth: Range
    cut_scale_mm: float
    medial_corner: tuple[float, float]
    left_lobe_slope: float
    left_lobe_rounding_mm: float
    gallbladder: Neighbour
    stomach: Neighbour
    stomach_clearance: float


@dataclass(frozen=True)
class Spleen:
    """A crescent, posterior-lateral left: an ellipsoid bent by ``bend`` (concave towards the hilum)."""

    organ: int
    rank: float
    centre: Anchor
    orientation: Orientation
    radii: tuple[Range, Range, Range]
    bend: Range
    waves: WaveSpec
    box_margin: float


@dataclass(frozen=True)
class KidneySide:
    """One kidney: its id, centre and axes (``orientation.secondary`` points laterally)."""

    organ: int
    centre: Anchor
    orientation: Orientation


@dataclass(frozen=True)
class Kidneys:
    """Both kidneys, beans lateral to the spine: both centres are drawn before either shape. Each is a deformed
    ellipsoid with a hilum notch facing antero-medially (``hilum_lift`` turns it anteriorly; the notch is
    ``notch_depth`` of the second radius from the centre) and a medulla inside the ``medulla_level`` of the
    deformed ellipsoid."""

    rank: float
    sides: tuple[KidneySide, KidneySide]
    radii: tuple[Range, Range, Range]
    waves: WaveSpec
    hilum_lift: float
    notch_depth: Range
    notch_radii: tuple[Range, Range, Range]
    medulla_waves: WaveSpec
    medulla_level: float


@dataclass(frozen=True)
class Pancreas:
    """A thin oblique tube from the head (right of midline, by the duodenum) over the aorta to the tail at the
    splenic hilum: half thicknesses ``(AP, SI)`` blend from head to body to tail; the body arches anteriorly by
    ``bulge`` and superiorly by ``lift``, with a wiggle; the splenic vein runs along its back."""

    organ: int
    rank: float
    head: Anchor
    tail: Anchor
    body_radii: tuple[Range, Range]
    head_radii: tuple[Range, Range]
    tail_radii: tuple[Range, Range]
    bulge: Range
    lift: Range
    wiggle_amplitude: Range
    wiggle_frequency: Range
    waves: WaveSpec
    vein_radius_mm: float


#: every labelled organ, in drawing order; where organs compete for a voxel the higher ``rank`` wins (firm
#: kidneys, then spleen and pancreas, then the liver, indented by its neighbours)
ORGAN_TABLE: tuple[Liver | Spleen | Kidneys | Pancreas, ...] = (
    Liver(
        organ=LIVER,
        rank=0.0,
        centre=Anchor((30.0, 18.0, 4.0), (5.0, 4.0, 3.0)),
        radii=((104.0, 114.0), (88.0, 96.0), (70.0, 76.0)),
        orientation=Orientation(*_AXIS_ALIGNED, 8.0),
        waves=WaveSpec(0.05, 0.3, 1.0),
        cut_tilt=(0.2, 0.4),
        cut_depth=(56.0, 64.0),
        cut_scale_mm=40.0,
        medial_corner=(40.0, 48.0),
        left_lobe_slope=0.25,
        left_lobe_rounding_mm=12.0,
        gallbladder=Neighbour(
            offset=(-8.0, 40.0, -36.0),
            relative=True,
            spread=3.0,
            orientation=Orientation((0.0, 0.5, -1.0), (1.0, 0.0, 0.0), 12.0),
            radii=((26.0, 34.0), (12.0, 16.0), (12.0, 16.0)),
            waves=None,
        ),
        # fundus under the left diaphragm, antrum crossing anterior to the pancreas
        stomach=Neighbour(
            offset=(-30.0, 25.0, 35.0),
            relative=False,
            spread=5.0,
            orientation=Orientation((-0.8, -0.5, 0.7), (1.0, 0.0, 0.0), 10.0),
            radii=((55.0, 65.0), (28.0, 34.0), (24.0, 30.0)),
            waves=WaveSpec(0.06, 0.3, 1.0),
        ),
        stomach_clearance=0.1,
    ),
    Spleen(
        organ=SPLEEN,
        rank=1.0,
        centre=Anchor((-92.0, -30.0, 22.0), (4.0, 4.0, 4.0)),
        orientation=Orientation((0.15, 0.5, -1.0), (1.0, 0.0, 0.0), 10.0),
        radii=((56.0, 64.0), (21.0, 26.0), (35.0, 42.0)),
        bend=(0.25, 0.45),
        waves=WaveSpec(0.05, 0.3, 1.2),
        box_margin=0.35,
    ),
    # upper pole medial and posterior
    Kidneys(
        rank=2.0,
        sides=(
            KidneySide(
                KIDNEY_R,
                Anchor((70.0, -42.0, -26.0), (3.0, 3.0, 4.0)),
                Orientation((-0.25, -0.25, 1.0), (1.0, 0.0, 0.0), 8.0),
            ),
            KidneySide(
                KIDNEY_L,
                Anchor((-70.0, -40.0, -18.0), (3.0, 3.0, 4.0)),
                Orientation((0.25, -0.25, 1.0), (-1.0, 0.0, 0.0), 8.0),
            ),
        ),
        radii=((53.0, 58.0), (27.5, 30.5), (23.5, 26.5)),
        waves=WaveSpec(0.03, 0.3, 1.0),
        hilum_lift=0.6,
        notch_depth=(0.85, 1.0),
        notch_radii=((16.0, 20.0), (10.0, 13.0), (9.0, 12.0)),
        medulla_waves=WaveSpec(0.08, 1.0, 2.0),
        medulla_level=-0.38,
    ),
    Pancreas(
        organ=PANCREAS,
        rank=1.0,
        head=Anchor((30.0, 18.0, -12.0), (4.0, 3.0, 4.0)),
        tail=Anchor((-76.0, -8.0, 16.0), (4.0, 3.0, 4.0)),
        body_radii=((10.0, 12.0), (13.0, 16.0)),
        head_radii=((14.0, 17.0), (20.0, 25.0)),
        tail_radii=((9.5, 12.0), (12.0, 15.0)),
        bulge=(18.0, 26.0),
        lift=(-5.0, 5.0),
        wiggle_amplitude=(1.5, 4.0),
        wiggle_frequency=(1.0, 2.0),
        waves=WaveSpec(0.10, 0.6, 1.8),
        vein_radius_mm=4.0,
    ),
)
