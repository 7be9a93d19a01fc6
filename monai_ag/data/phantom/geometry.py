"""Geometry of the phantom's anatomy, in world millimetres (RAS+): the voxel grid of a centred volume,
orthonormal frames and small random rotations, smooth random fields and the implicit shapes the organs
and viscera are made of (``< 0`` inside, ``0`` on the surface, about ``distance / radius``).

Every random draw takes the caller's generator, in a fixed order, so a seed fixes the shapes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "Blob",
    "Box",
    "Grid",
    "Waves",
    "ellipsoid",
    "half_extent",
    "is_empty",
    "orthonormal_frame",
    "rotated",
    "small_rotation",
    "smooth_min",
    "unit_vector",
]

#: index slices of an axis-aligned box of the volume
Box = tuple[slice, slice, slice]


class Grid:
    """World (RAS+, mm) coordinates of the voxel centres of a centred volume."""

    def __init__(self, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> None:
        self.shape = shape
        self.spacing = spacing
        self.origin = tuple(-(n - 1) / 2.0 * s for n, s in zip(shape, spacing))
        self.axes = tuple(o + s * np.arange(n, dtype=np.float64) for o, s, n in zip(self.origin, spacing, shape))

    def affine(self) -> np.ndarray:
        """The voxel-to-world matrix: ``diag(spacing)`` with the origin that centres the volume."""
        aff = np.diag([*self.spacing, 1.0])
        aff[:3, 3] = self.origin
        return aff

    def box(self, centre: Sequence[float], half: Sequence[float]) -> Box:
        """Index slices of the voxels whose centres lie within ``centre +- half``."""
        out = []
        for ax, c, h in zip(self.axes, centre, half):
            lo = int(np.searchsorted(ax, c - h, side="left"))
            hi = int(np.searchsorted(ax, c + h, side="right"))
            out.append(slice(lo, max(lo, hi)))
        return out[0], out[1], out[2]

    def offsets(self, sl: Box, centre: Sequence[float]) -> tuple[np.ndarray, ...]:
        """Broadcastable world offsets ``(dx, dy, dz)`` from ``centre`` over the box ``sl``."""
        dx = (self.axes[0][sl[0]] - centre[0])[:, None, None]
        dy = (self.axes[1][sl[1]] - centre[1])[None, :, None]
        dz = (self.axes[2][sl[2]] - centre[2])[None, None, :]
        return dx, dy, dz

    def local(self, sl: Box, centre: Sequence[float], frame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coordinates along the rows of ``frame`` (orthonormal local axes) over the box ``sl``."""
        dx, dy, dz = self.offsets(sl, centre)
        u, v, w = (r[0] * dx + r[1] * dy + r[2] * dz for r in frame)
        return u, v, w


def is_empty(sl: Box) -> bool:
    """Whether the box holds no voxel (a shape outside the field of view)."""
    return any(s.stop <= s.start for s in sl)


def unit_vector(v: Sequence[float]) -> np.ndarray:
    """``v`` scaled to length 1."""
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


def orthonormal_frame(primary: Sequence[float], secondary: Sequence[float]) -> np.ndarray:
    """Orthonormal frame (rows) whose first axis is ``primary`` and second is closest to ``secondary``."""
    e1 = unit_vector(primary)
    s = np.asarray(secondary, dtype=np.float64)
    e2 = unit_vector(s - np.dot(s, e1) * e1)
    e3 = np.cross(e1, e2)
    return np.stack([e1, e2, e3])


def small_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """Random rotation matrix composed of three rotations of at most ``max_deg`` degrees."""
    a, b, c = np.deg2rad(rng.uniform(-max_deg, max_deg, 3))
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rotated(frame: np.ndarray, rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """``frame`` turned by a random :py:func:`small_rotation` of at most ``max_deg`` degrees per axis."""
    return frame @ small_rotation(rng, max_deg).T


def half_extent(frame: np.ndarray, radii: Sequence[float], margin: float) -> np.ndarray:
    """Half size of the axis-aligned box bounding an ellipsoid, enlarged by ``margin`` (fraction)."""
    r = np.asarray(radii, dtype=np.float64)
    return np.sqrt(((frame * r[:, None]) ** 2).sum(axis=0)) * (1.0 + margin) + 2.0


class Waves:
    """Smooth random field: a sum of a few random plane waves (zero mean, std ~ ``amplitude``)."""

    def __init__(self, rng: np.random.Generator, amplitude: float, fmin: float, fmax: float, n: int = 5) -> None:
        directions = rng.standard_normal((n, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        self.k = directions * (2.0 * np.pi * rng.uniform(fmin, fmax, n))[:, None]
        self.phase = rng.uniform(0.0, 2.0 * np.pi, n)
        self.scale = amplitude * math.sqrt(2.0 / n)

    def on_box(
        self,
        grid: Grid,
        sl: Box,
        centre: Sequence[float],
        frame: np.ndarray | None = None,
        scale: Sequence[float] = (1.0, 1.0, 1.0),
    ) -> np.ndarray:
        """Evaluate the field at ``p_j = frame[j] . (x - centre) / scale[j]`` over the box ``sl``.

        Each wave is linear in the world offsets, so ``sin(a(x, y) + b(z))`` is expanded into 2D and
        1D factors: this costs a few multiply-adds per voxel instead of a ``sin``.
        """
        dx, dy, dz = grid.offsets(sl, centre)
        frame = np.eye(3) if frame is None else frame
        k_world = (self.k / np.asarray(scale, dtype=np.float64)[None, :]) @ frame
        out = np.zeros((dx.shape[0], dy.shape[1], dz.shape[2]), dtype=np.float64)
        for k, ph in zip(k_world, self.phase):
            a = k[0] * dx[:, :, 0] + k[1] * dy[:, :, 0]
            b = k[2] * dz[0, 0, :] + ph
            out += np.sin(a)[:, :, None] * np.cos(b)[None, None, :]
            out += np.cos(a)[:, :, None] * np.sin(b)[None, None, :]
        out *= self.scale
        return out


def smooth_min(a: np.ndarray, b: np.ndarray, radius: float) -> np.ndarray:
    """Minimum of ``a`` and ``b`` with the corner rounded over about ``radius``."""
    return np.minimum(a, b) - radius * np.log1p(np.exp(-np.abs(a - b) / radius))


def ellipsoid(u: np.ndarray, v: np.ndarray, w: np.ndarray, radii: Sequence[float]) -> np.ndarray:
    """Normalised implicit ellipsoid: ``< 0`` inside, ``0`` on the surface, about ``distance / radius``."""
    return np.sqrt((u / radii[0]) ** 2 + (v / radii[1]) ** 2 + (w / radii[2]) ** 2) - 1.0


class Blob:
    """A randomly deformed ellipsoid in a local frame (used for organs, stomach, bowel, ...)."""

    def __init__(
        self,
        centre: Sequence[float],
        frame: np.ndarray,
        radii: Sequence[float],
        waves: Waves | None = None,
    ) -> None:
        self.centre = np.asarray(centre, dtype=np.float64)
        self.frame = frame
        self.radii = np.asarray(radii, dtype=np.float64)
        self.waves = waves

    def box(self, grid: Grid, margin: float = 0.2) -> Box:
        """The voxels of the box bounding the ellipsoid, enlarged by ``margin`` (a fraction) for the waves."""
        return grid.box(self.centre, half_extent(self.frame, self.radii, margin))

    def field(self, grid: Grid, sl: Box) -> np.ndarray:
        """The implicit shape over the box ``sl``: the ellipsoid plus the waves, in its own frame."""
        u, v, w = grid.local(sl, self.centre, self.frame)
        f = ellipsoid(u, v, w, self.radii)
        if self.waves is not None:
            f = f + self.waves.on_box(grid, sl, self.centre, self.frame, self.radii)
        return f
