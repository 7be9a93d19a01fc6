"""The anatomy simulator of the phantom: one synthetic abdominal CT volume and its organ label map.

Contrast-enhanced (portal-venous-like) abdominal CT volumes in Hounsfield units (HU)
with a label map of

    ``0`` background, ``1`` liver, ``2`` spleen, ``3`` kidney (left and right), ``4`` pancreas.

Nothing is downloaded; every case is a pure function of an integer seed, so the same seed always
gives bit-identical arrays.

Coordinate convention (explicit, as in NIfTI): arrays are indexed ``[i, j, k]`` and the affine is
``diag(spacing)`` with the origin chosen so that the field of view is centred on ``(0, 0, 0)`` mm,
i.e. world coordinates are RAS+: ``i`` increases towards the patient's **Right**, ``j`` towards
**Anterior** and ``k`` towards **Superior**. Hence the liver lies at high ``i`` (patient right), the
spleen at low ``i`` (patient left) and the spine at low ``j`` (posterior).

Anatomy (all sizes in mm, so the same seed gives the same patient at any spacing):

- air outside the body (-1000 HU); a super-elliptic body outline whose size varies along ``z``,
  with subcutaneous fat (about -100 HU), an abdominal wall muscle ring (about 50 HU) and lower ribs;
- spine with vertebral bodies (cancellous and cortical bone, 400-700 HU), intervertebral discs,
  a CSF-filled spinal canal, posterior elements, paraspinal muscles and psoas muscles;
- aorta and inferior vena cava, a splenic vein along the back of the pancreas;
- visceral fat, a stomach, a gallbladder, the duodenum and scattered bowel loops with
  20-50 HU walls/contents and gas pockets (about -900 HU) with gas-fluid levels;
- labelled organs: liver (patient right, upper abdomen, wedge shaped, its left lobe draped over the
  stomach, abutting the IVC),
  spleen (crescent, posterior-lateral left), kidneys (bean shaped with a hilum, cortex and medulla,
  lateral to the spine) and a thin oblique pancreas from the duodenal C-loop across the aorta to the
  splenic hilum, anterior to the left kidney, whose intensity overlaps bowel and soft tissue (their
  positions, sizes and random ranges: :mod:`~monai_ag.data.phantom.organ_table`; their shapes:
  :mod:`~monai_ag.data.phantom.organ_shapes`).

Each organ is an implicit surface (rotated ellipsoid-like shapes deformed by low-frequency random
waves). Where organs compete for a voxel the firmer organ wins (kidneys, then spleen/pancreas, then
liver, which is indented by its neighbours), otherwise the one the voxel is deeper inside; organs
keep a thin fat plane from bone, muscles and vessels; only the largest connected component of each
organ is kept, so the label map has no fragments, and the image is painted from the final label
map. Partial-volume blur and Gaussian noise (sigma 10-20 HU) are added last and the image is
rounded to integer HU (so it can be stored losslessly as ``int16``).

Example::

    from monai_ag.data.phantom import generate_phantom_case

    image, label, affine = generate_phantom_case(seed=0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from monai_ag.data.classes import CLASS_NAMES, class_index

from .geometry import Blob, Box, Grid, Waves, half_extent, is_empty, orthonormal_frame, rotated
from .organ_shapes import Body, OrganShape, draw_organs
from .organ_table import KIDNEY_L, KIDNEY_R, LIVER, ORGAN_CLASS_NAMES, PANCREAS, SPLEEN

__all__ = [
    "DEFAULT_PHANTOM_SHAPE",
    "DEFAULT_PHANTOM_SPACING",
    "MIN_PHANTOM_FIELD_OF_VIEW_MM",
    "PHANTOM_VERSION",
    "check_geometry",
    "check_int",
    "generate_phantom_case",
]

#: Version of the phantom model; stored in ``dataset.json`` and bumped whenever the anatomy changes.
PHANTOM_VERSION = 1
#: Default volume shape ``(x, y, z)`` in voxels: 320 x 256 x 192 mm at the default spacing.
DEFAULT_PHANTOM_SHAPE: tuple[int, int, int] = (160, 128, 96)
#: Default voxel spacing in mm.
DEFAULT_PHANTOM_SPACING: tuple[float, float, float] = (2.0, 2.0, 2.0)
#: Smallest field of view (mm, per axis) that holds all labelled organs. The body outline (up to about
#: 310 x 240 mm) fits in the default field of view; a narrower one truncates it at the sides, like a CT
#: reconstructed with a small field of view.
MIN_PHANTOM_FIELD_OF_VIEW_MM: tuple[float, float, float] = (256.0, 192.0, 184.0)
_MAX_SPACING_MM = 8.0
_MIN_VOXELS_PER_AXIS = 16
_Z_NORM_MM = 96.0  # z (mm) at which the body-shape polynomials are normalised
_ORGAN_CLEARANCE_MM = 3.0  # fat plane between organs and bone / muscle / vessels

# the organ table's internal organ ids (1, 2, ...; the kidneys are two objects) -> label values
_ORGAN_TO_LABEL = np.array([0, *(class_index(ORGAN_CLASS_NAMES[i]) for i in sorted(ORGAN_CLASS_NAMES))], dtype=np.uint8)


# ----------------------------------------------------------------------------------------------
# the phantom
# ----------------------------------------------------------------------------------------------
class _Phantom:
    """Builds one case. All random draws happen in a fixed order, so a seed fixes the case."""

    def __init__(self, seed: int, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> None:
        self.rng = np.random.default_rng(seed)
        self.grid = Grid(shape, spacing)
        self.shape = shape
        self.image = np.full(shape, -1000.0, dtype=np.float32)
        self.owner = np.zeros(shape, dtype=np.uint8)  # internal organ id, 0 = none
        self.blocked = np.zeros(shape, dtype=bool)  # non-organ solid structures (bone, muscle, vessels)

    # -- body -----------------------------------------------------------------------------------
    def body(self) -> None:
        rng, g = self.rng, self.grid
        self.ax0 = rng.uniform(134.0, 146.0)  # half width (patient left-right)
        self.ay_ant0 = rng.uniform(100.0, 110.0)  # half depth, anterior
        self.ay_post0 = rng.uniform(92.0, 99.0)  # half depth, posterior (flatter back)
        power = rng.uniform(2.2, 2.7)  # super-ellipse exponent (2 = ellipse)
        lin, quad = rng.uniform(-0.03, 0.03), rng.uniform(-0.04, 0.03)  # variation along z
        self.sx, self.sy = self.ax0 / 140.0, (self.ay_ant0 + self.ay_post0) / 200.0

        x2 = g.axes[0][:, None]
        y2 = g.axes[1][None, :]
        zn = g.axes[2] / _Z_NORM_MM
        theta = np.arctan2(y2, x2)  # 2D
        radius = np.hypot(x2, y2)  # 2D
        ay = np.where(np.sin(theta) >= 0.0, self.ay_ant0, self.ay_post0)
        r0 = (np.abs(np.cos(theta) / self.ax0) ** power + np.abs(np.sin(theta) / ay) ** power) ** (-1.0 / power)
        # separable low-frequency wobble of the outline in (angle, z)
        wobble = np.zeros(self.shape, dtype=np.float64)
        for m in (2, 3, 5):
            amp = rng.uniform(0.004, 0.010)
            ph, om, ps = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
            wobble += (amp * np.sin(m * theta + ph))[:, :, None] * np.cos(om * zn + ps)[None, None, :]
        scale_z = 1.0 + lin * zn + quad * zn**2
        skin = r0[:, :, None] * scale_z[None, None, :] * (1.0 + wobble)
        depth = skin - radius[:, :, None]  # mm below the skin (approximately), < 0 outside
        self.theta, self.depth = theta, depth

        fat0 = rng.uniform(8.0, 20.0)
        fat = fat0 * (1.0 + 0.35 * np.cos(2.0 * theta) + rng.uniform(0.0, 0.3) * np.sin(theta))  # flanks thicker
        muscle = rng.uniform(8.0, 12.0) * (1.0 + 0.2 * np.sin(theta))  # rectus anteriorly thicker
        fat3, wall_in = fat[:, :, None], (fat + muscle)[:, :, None]
        self.fat_in = fat3
        self.inside = depth > 0.0
        self.cavity = depth >= wall_in
        self.wall = self.inside & (depth >= fat3) & ~self.cavity
        subcut = self.inside & (depth < fat3)

        self.hu_fat = rng.uniform(-110.0, -90.0)
        self.hu_visceral_fat = rng.uniform(-105.0, -85.0)
        self.hu_muscle = rng.uniform(45.0, 60.0)
        img = self.image
        img[subcut] = self.hu_fat
        img[self.wall] = self.hu_muscle
        img[self.cavity] = self.hu_visceral_fat

    # -- spine, muscles and big vessels ---------------------------------------------------------
    def retroperitoneum(self) -> None:
        rng, g, img = self.rng, self.grid, self.image
        self.y_spine = -self.ay_post0 + rng.uniform(60.0, 68.0)  # vertebral body centre (y) at z = 0
        lordosis = rng.uniform(3.0, 8.0)
        half = (60.0, 75.0, 1e4)
        sl = g.box((0.0, self.y_spine - 20.0, 0.0), half)
        dx, dy, dz = g.offsets(sl, (0.0, self.y_spine, 0.0))
        zn = dz / _Z_NORM_MM
        yy = dy - lordosis * (1.0 - zn**2)  # y relative to the vertebral-body centre
        x = dx
        inside = self.inside[sl]
        sub = img[sl]
        blocked = self.blocked[sl]

        # paraspinal muscles (beneath the subcutaneous fat)
        par_r = (rng.uniform(22.0, 28.0), rng.uniform(17.0, 21.0))
        para = np.zeros(sub.shape, dtype=bool)
        for side in (-1.0, 1.0):
            para |= ((x - side * 30.0) / par_r[0]) ** 2 + ((yy + 46.0) / par_r[1]) ** 2 < 1.0
        para &= self.depth[sl] >= self.fat_in[sl[0], sl[1]]
        sub[para] = self.hu_muscle
        blocked |= para

        # psoas muscles: grow towards the pelvis
        z = dz + 0.0 * dx
        rad = 5.0 + 15.0 * np.clip((40.0 - z) / 120.0, 0.0, 1.0)
        psoas = np.zeros(sub.shape, dtype=bool)
        for side in (-1.0, 1.0):
            cx = side * (24.0 + 0.12 * np.clip(40.0 - z, 0.0, None))
            psoas |= ((x - cx) / rad) ** 2 + ((yy - 2.0) / (0.8 * rad)) ** 2 < 1.0
        psoas &= (z < 50.0) & inside
        sub[psoas] = self.hu_muscle + rng.uniform(-5.0, 5.0)
        blocked |= psoas

        # vertebrae: cancellous + cortical body, discs, arch, spinous and transverse processes, canal
        period = rng.uniform(32.0, 36.0)
        phase = rng.uniform(0.0, period)
        level = np.mod(dz + phase, period) + 0.0 * dx  # position within a vertebral segment
        disc = level < 7.0
        rho = np.sqrt((x / 24.0) ** 2 + (yy / 17.0) ** 2)
        vbody = rho < 1.0
        canal_y = -27.0
        rc = np.hypot(x, yy - canal_y)
        arch = (rc < 15.0) & (yy < canal_y + 6.0)
        spinous = (np.abs(x) < 4.0) & (yy < canal_y - 10.0) & (yy > canal_y - 36.0)
        transverse = (np.abs(yy - canal_y - 2.0) < 4.0) & (np.abs(x) < 40.0) & (level > 12.0) & (level < 24.0)
        posterior = (arch | spinous | transverse) & ~disc
        hu_cortex, hu_cancellous = rng.uniform(620.0, 720.0), rng.uniform(380.0, 460.0)
        sub[posterior] = rng.uniform(520.0, 620.0)
        sub[vbody] = np.where(rho[vbody] > 0.82, hu_cortex, hu_cancellous)
        sub[vbody & disc] = rng.uniform(70.0, 100.0)
        canal = rc < 9.0
        sub[canal] = rng.uniform(5.0, 20.0)
        blocked |= vbody | posterior | canal

        # aorta (left of midline) and IVC (right), anterior to the spine
        self.hu_artery = rng.uniform(150.0, 190.0)
        self.hu_vein = rng.uniform(120.0, 150.0)
        ra = rng.uniform(10.0, 12.0)
        aorta = ((x + 14.0 + 3.0 * zn) ** 2 + (yy - 30.0) ** 2) < ra**2
        ivc = ((x - 25.0) / rng.uniform(11.0, 14.0)) ** 2 + ((yy - 28.0) / rng.uniform(8.0, 10.0)) ** 2 < 1.0
        sub[aorta] = self.hu_artery
        sub[ivc] = self.hu_vein
        blocked |= aorta | ivc

        # organs keep a thin fat plane (a few mm) from bone, muscles and vessels
        self.no_organ = self.blocked.copy()
        if blocked.any():
            dist = ndimage.distance_transform_edt(~blocked, sampling=g.spacing)
            self.no_organ[sl] |= dist < _ORGAN_CLEARANCE_MM

    # -- organs ---------------------------------------------------------------------------------
    def _claim(self, organ: int, sl: Box, f: np.ndarray, best: np.ndarray, rank: float = 0.0) -> None:
        """Give voxels inside ``f`` to ``organ`` where it is deeper inside than any earlier organ.

        Between organs of different ``rank`` the higher rank wins (firm organs such as the kidneys keep
        their shape and indent softer ones such as the liver); within a rank the deeper one wins.
        """
        allowed = self.cavity[sl] & ~self.no_organ[sl]
        b = best[sl]
        depth = np.maximum(f, -1.0) - 2.0 * rank
        take = (f < 0.0) & (depth < b) & allowed
        self.owner[sl][take] = organ
        b[take] = depth[take]

    def organs(self) -> None:
        """Draw the organs of the organ table in its order; each takes the voxels it wins (see :meth:`_claim`)."""
        best = np.full(self.shape, np.inf, dtype=np.float32)
        shapes, self.landmarks = draw_organs(Body(self.rng, self.grid, self.sx, self.sy, self.y_spine))
        self.organ_shapes: dict[int, OrganShape] = {}
        for shape in shapes:
            self._claim(shape.organ, shape.box, shape.field, best, rank=shape.rank)
            self.organ_shapes[shape.organ] = shape
        self._remove_fragments()

    def _remove_fragments(self) -> None:
        """Keep only the largest connected component of every organ."""
        for organ, shape in self.organ_shapes.items():
            sl = shape.box
            owned = self.owner[sl] == organ
            labels, n = ndimage.label(owned)
            if n > 1:
                sizes = np.bincount(labels.ravel())
                sizes[0] = 0
                self.owner[sl][owned & (labels != int(np.argmax(sizes)))] = 0

    def paint_organs(self) -> None:
        rng, img = self.rng, self.image
        self.hu_liver = rng.uniform(80.0, 98.0)
        self.hu_spleen = rng.uniform(106.0, 116.0)
        self.hu_cortex = rng.uniform(172.0, 192.0)
        self.hu_medulla = self.hu_cortex - rng.uniform(20.0, 35.0)
        self.hu_pancreas = rng.uniform(55.0, 80.0)
        base = {
            LIVER: self.hu_liver,
            SPLEEN: self.hu_spleen,
            KIDNEY_R: self.hu_cortex,
            KIDNEY_L: self.hu_cortex,
            PANCREAS: self.hu_pancreas,
        }
        texture_amp = {LIVER: 4.0, SPLEEN: 3.0, KIDNEY_R: 4.0, KIDNEY_L: 4.0, PANCREAS: 9.0}
        for organ, shape in self.organ_shapes.items():
            sl = shape.box
            owned = self.owner[sl] == organ
            waves = Waves(rng, texture_amp[organ], 0.02, 0.06 if organ != PANCREAS else 0.12)
            value = base[organ] + waves.on_box(self.grid, sl, (0.0, 0.0, 0.0))
            if shape.medulla is not None:
                value = np.where(shape.medulla, value - (self.hu_cortex - self.hu_medulla), value)
            value = np.broadcast_to(value, owned.shape)
            img[sl][owned] = value[owned]

    # -- unlabelled soft tissue in the peritoneal cavity ---------------------------------------------
    def _free(self, sl: Box) -> np.ndarray:
        return self.cavity[sl] & ~self.blocked[sl] & (self.owner[sl] == 0)

    def _hollow(
        self,
        blob: Blob,
        wall_mm: float,
        hu_wall: float,
        hu_content: float,
        gas_fraction: float,
        margin: float = 0.2,
    ) -> None:
        """Paint a hollow viscus: wall, fluid/soft-tissue content and an anterior gas pocket."""
        g = self.grid
        hu_gas = self.rng.uniform(-950.0, -850.0)  # drawn first: the random stream must not depend on the FOV
        sl = blob.box(g, margin)
        if is_empty(sl):
            return
        f = blob.field(g, sl)
        free = self._free(sl)
        outer = (f < 0.0) & free
        inner = f < -wall_mm / float(blob.radii.min())
        sub = self.image[sl]
        sub[outer] = hu_wall
        content = outer & inner
        if gas_fraction > 0.0:
            _, dy, _ = g.offsets(sl, blob.centre)
            extent = float(half_extent(blob.frame, blob.radii, 0.0)[1])
            gas_level = extent * (1.0 - 2.0 * gas_fraction)  # gas rises anteriorly (patient supine)
            gas = content & (dy > gas_level)
            sub[content & ~gas] = hu_content
            sub[gas] = hu_gas
        else:
            sub[content] = hu_content

    def viscera(self) -> None:
        rng = self.rng
        sx, sy = self.sx, self.sy
        # gallbladder (carved out of the liver)
        self._hollow(self.landmarks.gallbladder, 2.0, rng.uniform(30.0, 45.0), rng.uniform(0.0, 20.0), 0.0, margin=0.05)
        # splenic vein behind the pancreas
        sl, vein = self.landmarks.splenic_vein
        vein = vein & self._free(sl)
        self.image[sl][vein] = self.hu_vein
        # stomach: left upper quadrant, anterior to pancreas and spleen
        self._hollow(
            self.landmarks.stomach, 5.0, rng.uniform(40.0, 55.0), rng.uniform(5.0, 30.0), rng.uniform(0.15, 0.45)
        )
        # duodenum: C-loop lateral to the pancreatic head
        head = self.landmarks.pancreas_head
        duodenum = Blob(
            head + np.array([rng.uniform(22.0, 28.0), -2.0, -4.0]),
            rotated(orthonormal_frame((0.0, 0.0, 1.0), (1.0, 0.0, 0.0)), rng, 15.0),
            (rng.uniform(30.0, 40.0), rng.uniform(10.0, 13.0), rng.uniform(10.0, 13.0)),
            Waves(rng, 0.06, 0.5, 1.5),
        )
        self._hollow(duodenum, 3.0, rng.uniform(35.0, 50.0), rng.uniform(15.0, 40.0), rng.uniform(0.0, 0.3))
        # colon (ascending right, descending left, transverse anterior) and small-bowel loops
        colon = [
            ((95.0, 5.0, -50.0), (0.0, 0.1, 1.0), 45.0, 22.0),
            ((-95.0, -5.0, -50.0), (0.0, 0.1, 1.0), 45.0, 20.0),
            ((10.0, 62.0, -18.0), (1.0, 0.0, 0.1), 75.0, 20.0),
        ]
        loops = []
        for (cx, cy, cz), axis, length, radius in colon:
            loops.append(
                (
                    np.array([cx * sx, cy * sy, cz]) + rng.uniform(-6.0, 6.0, 3),
                    rotated(orthonormal_frame(axis, (0.0, 1.0, 0.0)), rng, 12.0),
                    (length * rng.uniform(0.85, 1.1), radius * rng.uniform(0.8, 1.1), radius * rng.uniform(0.8, 1.1)),
                )
            )
        for _ in range(int(rng.integers(14, 22))):
            centre = np.array([rng.uniform(-85.0, 85.0) * sx, rng.uniform(-5.0, 80.0) * sy, rng.uniform(-92.0, 8.0)])
            axis = rng.standard_normal(3)
            radius = rng.uniform(9.0, 15.0)
            loops.append(
                (centre, orthonormal_frame(axis, rng.standard_normal(3)), (rng.uniform(18.0, 35.0), radius, radius))
            )
        for index, (centre, frame, radii) in enumerate(loops):
            kind = rng.uniform() if index >= len(colon) else 0.0  # the colon always holds some gas
            waves = Waves(rng, 0.06, 0.5, 1.5)
            blob = Blob(centre, frame, radii, waves)
            if kind < 0.35:  # gas with a fluid level
                self._hollow(blob, 3.0, rng.uniform(30.0, 45.0), rng.uniform(15.0, 35.0), rng.uniform(0.35, 0.9))
            elif kind < 0.8:  # fluid filled
                self._hollow(blob, 3.0, rng.uniform(30.0, 45.0), rng.uniform(15.0, 40.0), 0.0)
            else:  # collapsed loop: solid soft tissue
                self._hollow(blob, 3.0, rng.uniform(35.0, 55.0), rng.uniform(35.0, 55.0), 0.0)

    def ribs(self) -> None:
        rng, g = self.rng, self.grid
        z = g.axes[2]
        theta = self.theta
        lateral = np.abs(np.cos(theta))  # 1 at the flanks, 0 at anterior/posterior midline
        anterior_gap = (np.sin(theta) > 0.0) & (lateral < rng.uniform(0.35, 0.5))
        posterior_gap = (np.sin(theta) < 0.0) & (lateral < 0.25)
        hu_rib = rng.uniform(450.0, 650.0)
        first = rng.uniform(84.0, 96.0)
        drop = rng.uniform(45.0, 65.0)  # ribs slope downwards anteriorly
        in_wall = self.wall & (self.depth >= self.fat_in + 1.0)
        for i in range(-2, 5):  # ribs -2, -1 start above the field of view; their fronts come into it
            zr = first - 24.0 * i
            if zr < -20.0:
                break
            arc = ~(anterior_gap | posterior_gap)
            if zr < 40.0:  # lower (floating) ribs: posterior-lateral only
                arc &= np.sin(theta) < 0.2
            centre = zr - drop * 0.5 * (1.0 + np.sin(theta))
            rib = arc[:, :, None] & (np.abs(z[None, None, :] - centre[:, :, None]) < 4.0) & in_wall
            self.image[rib] = hu_rib
            self.blocked |= rib

    def finish(self) -> None:
        rng, g, img = self.rng, self.grid, self.image
        tex = Waves(rng, 5.0, 0.005, 0.02)
        everywhere = (slice(None), slice(None), slice(None))
        img += np.where(self.inside, tex.on_box(g, everywhere, (0.0, 0.0, 0.0)), 0.0).astype(np.float32)
        sigma = rng.uniform(0.5, 0.7)
        noise_sd = rng.uniform(10.0, 20.0)
        img = ndimage.gaussian_filter(img, sigma=sigma, mode="nearest", truncate=3.0)
        img += noise_sd * rng.standard_normal(self.shape, dtype=np.float32)
        np.rint(img, out=img)
        np.clip(img, -1024.0, 3071.0, out=img)
        self.image = img

    def build(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.body()
        self.retroperitoneum()
        self.organs()
        self.paint_organs()
        self.viscera()
        self.ribs()
        self.finish()
        label = _ORGAN_TO_LABEL[self.owner]
        return self.image, label, self.grid.affine()


# ----------------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------------
def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an ``int`` when it is an integer (not a bool) ``>= minimum``; else a ``ValueError`` naming
    ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_geometry(shape: Any, spacing: Any) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """``(shape, spacing)`` checked (3 axes, at least 16 voxels and at most 8 mm each, a field of view of at least
    :data:`MIN_PHANTOM_FIELD_OF_VIEW_MM`) and normalised to tuples; a ``ValueError`` saying what is wrong."""
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) != 3:
        raise ValueError(f"shape must be a sequence of 3 voxel counts (x, y, z), got {shape!r}.")
    if any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < _MIN_VOXELS_PER_AXIS for n in shape):
        raise ValueError(f"shape must contain 3 integers >= {_MIN_VOXELS_PER_AXIS}, got {tuple(shape)!r}.")
    if isinstance(spacing, (str, bytes)) or not isinstance(spacing, Sequence) or len(spacing) != 3:
        raise ValueError(f"spacing must be a sequence of 3 voxel sizes in mm (x, y, z), got {spacing!r}.")
    try:
        sp = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise ValueError(f"spacing must contain 3 numbers (mm), got {spacing!r}.") from None
    if not all(math.isfinite(s) and s > 0.0 for s in sp):
        raise ValueError(f"spacing must contain 3 positive finite voxel sizes in mm, got {tuple(spacing)!r}.")
    if max(sp) > _MAX_SPACING_MM:
        raise ValueError(f"spacing must be at most {_MAX_SPACING_MM} mm per axis to resolve the pancreas, got {sp!r}.")
    shp = (int(shape[0]), int(shape[1]), int(shape[2]))
    fov = tuple(n * s for n, s in zip(shp, sp))
    if any(f < m for f, m in zip(fov, MIN_PHANTOM_FIELD_OF_VIEW_MM)):
        raise ValueError(
            f"shape {shp} with spacing {sp} gives a field of view of {tuple(round(f, 1) for f in fov)} mm, "
            f"too small to hold the phantom anatomy, which needs at least {MIN_PHANTOM_FIELD_OF_VIEW_MM} mm "
            "(x, y, z); increase shape or spacing."
        )
    return shp, sp  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------
def generate_phantom_case(
    seed: int,
    shape: Sequence[int] = DEFAULT_PHANTOM_SHAPE,
    spacing: Sequence[float] = DEFAULT_PHANTOM_SPACING,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate one synthetic abdominal CT volume and its organ label map.

    The anatomy is defined in millimetres, so a given seed describes the same "patient" at any
    spacing; the image is a pure function of ``(seed, shape, spacing)`` (bit-identical on repeat).

    Args:
        seed: non-negative integer seeding the shape, position, intensity and noise variations.
        shape: volume size ``(x, y, z)`` in voxels. ``shape * spacing`` must cover at least
            :data:`MIN_PHANTOM_FIELD_OF_VIEW_MM` (256 x 192 x 184 mm, which holds every organ) and
            each axis needs at least 16 voxels. The whole body outline (with air around it) needs
            about 316 x 244 mm, as in the default 160 x 128 x 96 voxels at 2 mm; a smaller field of
            view truncates the body at its edges.
        spacing: voxel size ``(x, y, z)`` in mm, each in ``(0, 8]``.

    Returns:
        A tuple ``(image, label, affine)``:

        - ``image``: ``float32`` array of ``shape`` in HU, integer valued, within ``[-1024, 3071]``;
        - ``label``: ``uint8`` array of ``shape`` with values from :data:`monai_ag.data.classes.CLASS_NAMES`
          (``0`` background, ``1`` liver, ``2`` spleen, ``3`` kidneys, ``4`` pancreas), all present;
        - ``affine``: ``float64`` 4x4 voxel-to-world (RAS+, mm) matrix ``diag(spacing)`` with the
          origin placed so that the volume is centred on ``(0, 0, 0)``.

    Raises:
        ValueError: when ``seed``, ``shape`` or ``spacing`` is invalid, or the field of view is too
            small for the anatomy.
    """
    seed = check_int("seed", seed, 0)
    shp, sp = check_geometry(shape, spacing)
    image, label, affine = _Phantom(seed, shp, sp).build()
    counts = np.bincount(label.ravel(), minlength=len(CLASS_NAMES))
    missing = [value for value in CLASS_NAMES if counts[value] == 0]
    if missing:  # cannot happen for valid geometry; guard against silent empty classes
        raise RuntimeError(f"phantom seed={seed} shape={shp} spacing={sp} lacks labels {missing}.")
    return image, label, affine
