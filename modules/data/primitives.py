"""Primitives with analytic signed distance (negative inside) for the procedural shapes.

Every primitive carries a global part id. A shape is a list of primitives; its SDF is the minimum
over them (a union), and the part of a point is the part of the primitive with the smallest SDF.
Distances are exact for boxes, spheres, capsules, cylinders, tori and cones; the ellipsoid uses the
usual first-order bound, whose sign (and so occupancy) is still exact.
All functions take points (N,3) float64 and return (N,) float64.
"""
import numpy as np


def rotation(axis, angle):
    """3x3 rotation about 'x', 'y' or 'z' by `angle` radians."""
    c, s = np.cos(angle), np.sin(angle)
    if axis == "x":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _frame_from_y(direction):
    """Rotation whose local y axis points along `direction`."""
    y = np.asarray(direction, float)
    y = y / np.linalg.norm(y)
    helper = np.array([1.0, 0, 0]) if abs(y[0]) < 0.9 else np.array([0, 0, 1.0])
    x = np.cross(helper, y)
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    return np.stack([x, y, z], 1)  # columns = local axes in world coordinates


class Primitive:
    """Base: local frame (rotation R with columns = local axes, centre t); subclasses give the local SDF."""
    kind = "primitive"

    def __init__(self, part, center=(0, 0, 0), rot=None):
        self.part = int(part)
        self.center = np.asarray(center, float)
        self.rot = np.eye(3) if rot is None else np.asarray(rot, float)

    def local(self, p):
        return (p - self.center) @ self.rot

    def sdf(self, p):
        return self.local_sdf(self.local(p))

    def local_extent(self):
        """Half extents of the local bounding box."""
        raise NotImplementedError

    def aabb(self):
        e = self.local_extent()
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * e
        world = corners @ self.rot.T + self.center
        return world.min(0), world.max(0)

    def transformed(self, scale, shift):
        """The same primitive after x -> x * scale + shift (uniform scale)."""
        q = self._scaled(scale)
        q.center = self.center * scale + shift
        return q


class Box(Primitive):
    """Box with half extents `half`, edges rounded by `radius` (0 = sharp)."""
    kind = "box"

    def __init__(self, part, half, center=(0, 0, 0), rot=None, radius=0.0):
        super().__init__(part, center, rot)
        self.half = np.asarray(half, float)
        self.radius = float(min(radius, 0.99 * self.half.min()))

    def local_sdf(self, q):
        d = np.abs(q) - (self.half - self.radius)
        outside = np.linalg.norm(np.maximum(d, 0), axis=1)
        inside = np.minimum(d.max(1), 0)
        return outside + inside - self.radius

    def local_extent(self):
        return self.half

    def _scaled(self, s):
        return Box(self.part, self.half * s, rot=self.rot, radius=self.radius * s)


class Sphere(Primitive):
    kind = "sphere"

    def __init__(self, part, radius, center=(0, 0, 0)):
        super().__init__(part, center)
        self.radius = float(radius)

    def local_sdf(self, q):
        return np.linalg.norm(q, axis=1) - self.radius

    def local_extent(self):
        return np.full(3, self.radius)

    def _scaled(self, s):
        return Sphere(self.part, self.radius * s)


class Ellipsoid(Primitive):
    kind = "ellipsoid"

    def __init__(self, part, radii, center=(0, 0, 0), rot=None):
        super().__init__(part, center, rot)
        self.radii = np.asarray(radii, float)

    def local_sdf(self, q):
        k0 = np.linalg.norm(q / self.radii, axis=1)
        k1 = np.linalg.norm(q / self.radii ** 2, axis=1)
        return np.where(k1 > 1e-12, k0 * (k0 - 1) / np.maximum(k1, 1e-12), -self.radii.min())

    def local_extent(self):
        return self.radii

    def _scaled(self, s):
        return Ellipsoid(self.part, self.radii * s, rot=self.rot)


class Cylinder(Primitive):
    """Solid cylinder along local y: radius, half height, optional edge rounding."""
    kind = "cylinder"

    def __init__(self, part, radius, half_height, center=(0, 0, 0), rot=None, rounding=0.0):
        super().__init__(part, center, rot)
        self.radius, self.half_height = float(radius), float(half_height)
        self.rounding = float(min(rounding, 0.99 * min(radius, half_height)))

    def local_sdf(self, q):
        r = self.rounding
        dx = np.hypot(q[:, 0], q[:, 2]) - (self.radius - r)
        dy = np.abs(q[:, 1]) - (self.half_height - r)
        outside = np.hypot(np.maximum(dx, 0), np.maximum(dy, 0))
        return outside + np.minimum(np.maximum(dx, dy), 0) - r

    def local_extent(self):
        return np.array([self.radius, self.half_height, self.radius])

    def _scaled(self, s):
        return Cylinder(self.part, self.radius * s, self.half_height * s, rot=self.rot, rounding=self.rounding * s)


def cylinder_between(part, a, b, radius, rounding=0.0):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return Cylinder(part, radius, np.linalg.norm(b - a) / 2, center=(a + b) / 2, rot=_frame_from_y(b - a),
                    rounding=rounding)


class Capsule(Primitive):
    """Segment a-b swept by a sphere of `radius` (limbs, tubes, handles)."""
    kind = "capsule"

    def __init__(self, part, a, b, radius):
        a, b = np.asarray(a, float), np.asarray(b, float)
        super().__init__(part, (a + b) / 2, _frame_from_y(b - a) if np.linalg.norm(b - a) > 1e-12 else None)
        self.half_length = np.linalg.norm(b - a) / 2
        self.radius = float(radius)

    def local_sdf(self, q):
        y = np.clip(q[:, 1], -self.half_length, self.half_length)
        return np.sqrt(q[:, 0] ** 2 + (q[:, 1] - y) ** 2 + q[:, 2] ** 2) - self.radius

    def local_extent(self):
        return np.array([self.radius, self.half_length + self.radius, self.radius])

    def _scaled(self, s):
        c = Capsule(self.part, np.zeros(3), np.array([0, 1.0, 0]), self.radius * s)
        c.rot, c.half_length = self.rot, self.half_length * s
        return c


class Torus(Primitive):
    """Ring in the local xz plane: major radius R, tube radius r."""
    kind = "torus"

    def __init__(self, part, major, minor, center=(0, 0, 0), rot=None):
        super().__init__(part, center, rot)
        self.major, self.minor = float(major), float(minor)

    def local_sdf(self, q):
        return np.hypot(np.hypot(q[:, 0], q[:, 2]) - self.major, q[:, 1]) - self.minor

    def local_extent(self):
        return np.array([self.major + self.minor, self.minor, self.major + self.minor])

    def _scaled(self, s):
        return Torus(self.part, self.major * s, self.minor * s, rot=self.rot)


class Cone(Primitive):
    """Capped cone (frustum) along local y: radius r_bottom at y=-h, r_top at y=+h (either may be 0)."""
    kind = "cone"

    def __init__(self, part, r_bottom, r_top, half_height, center=(0, 0, 0), rot=None):
        super().__init__(part, center, rot)
        self.r1, self.r2, self.h = float(r_bottom), float(r_top), float(half_height)

    def local_sdf(self, q):
        # exact capped-cone distance in the (radial, axial) half plane
        x = np.hypot(q[:, 0], q[:, 2])
        y = q[:, 1]
        r1, r2, h = self.r1, self.r2, self.h
        cap_r = np.where(y < 0, r1, r2)
        ca = np.stack([x - np.minimum(x, cap_r), np.abs(y) - h], 1)
        k1 = np.array([r2, h])
        k2 = np.array([r2 - r1, 2 * h])
        t = np.clip(((k1[0] - x) * k2[0] + (k1[1] - y) * k2[1]) / (k2 @ k2), 0, 1)
        cb = np.stack([x - k1[0] + k2[0] * t, y - k1[1] + k2[1] * t], 1)
        sign = np.where((cb[:, 0] < 0) & (ca[:, 1] < 0), -1.0, 1.0)
        return sign * np.sqrt(np.minimum((ca ** 2).sum(1), (cb ** 2).sum(1)))

    def local_extent(self):
        r = max(self.r1, self.r2)
        return np.array([r, self.h, r])

    def _scaled(self, s):
        return Cone(self.part, self.r1 * s, self.r2 * s, self.h * s, rot=self.rot)


def shape_aabb(prims):
    lo = np.min([p.aabb()[0] for p in prims], 0)
    hi = np.max([p.aabb()[1] for p in prims], 0)
    return lo, hi


def union_sdf(prims, points, far=None):
    """(sdf (N,), part id (N,) of the nearest primitive) of the union at `points` (N,3).

    With `far`, each primitive is evaluated only at points within `far` of its bounding box; points
    farther than `far` from every primitive get sdf = +inf and part -1. The sign (occupancy) and the
    part of any point closer than `far` to the shape are unchanged, and it is much faster.
    """
    points = np.asarray(points, np.float64)
    sdf = np.full(len(points), np.inf)
    label = np.full(len(points), -1, np.int64)
    cols = [np.ascontiguousarray(points[:, a]) for a in range(3)] if far is not None else None
    for p in prims:
        if far is None:
            idx = slice(None)
        else:
            lo, hi = p.aabb()
            inside = (cols[0] >= lo[0] - far) & (cols[0] <= hi[0] + far)
            for a in (1, 2):
                inside &= (cols[a] >= lo[a] - far) & (cols[a] <= hi[a] + far)
            idx = np.flatnonzero(inside)
            if len(idx) == 0:
                continue
        d = p.sdf(points[idx])
        cur = sdf[idx]
        better = d < cur
        if isinstance(idx, slice):
            sdf[better], label[better] = d[better], p.part
        else:
            sdf[idx[better]], label[idx[better]] = d[better], p.part
    return sdf, label


def grid_sdf(prims, resolution, box_min, box_max, block=4):
    """SDF of the union on a (R,R,R) corner-aligned grid (axis 0 = x), for marching cubes.

    Coarse to fine: the SDF at the centre of each block of block^3 grid points decides whether the
    surface can pass near the block (|sdf| below the block's half diagonal plus a cell); only those
    blocks are evaluated point by point. Far blocks take the centre value, whose sign is right for
    all their points, so no grid edge with a sign change is ever approximated.
    """
    coords = np.linspace(box_min, box_max, resolution)
    step = coords[1] - coords[0]
    nb = -(-resolution // block)
    centres = box_min + (np.arange(nb) * block + (block - 1) / 2) * step
    cpts = np.stack(np.meshgrid(centres, centres, centres, indexing="ij"), -1).reshape(-1, 3)
    reach = (np.sqrt(3) * (block - 1) / 2 + 1.5) * step
    csdf, _ = union_sdf(prims, cpts, far=2 * reach)
    csdf = np.minimum(csdf, box_max - box_min).reshape(nb, nb, nb)
    grid = np.repeat(np.repeat(np.repeat(csdf, block, 0), block, 1), block, 2)[:resolution, :resolution, :resolution].copy()
    near = np.argwhere(np.abs(csdf) < reach)
    if len(near):
        offs = np.stack(np.meshgrid(*[np.arange(block)] * 3, indexing="ij"), -1).reshape(-1, 3)
        idx = (near[:, None, :] * block + offs[None]).reshape(-1, 3)
        idx = idx[np.all(idx < resolution, axis=1)]
        sdf, _ = union_sdf(prims, coords[idx], far=2 * step)
        grid[idx[:, 0], idx[:, 1], idx[:, 2]] = np.minimum(sdf, box_max - box_min)
    return grid


class Clipped(Primitive):
    """`inner` cut by half spaces: keeps the side where n . (p - point) <= 0 for every (n, point)."""
    kind = "clipped"

    def __init__(self, inner, planes):
        super().__init__(inner.part)
        self.inner = inner
        self.planes = [(np.asarray(n, float) / np.linalg.norm(n), np.asarray(pt, float)) for n, pt in planes]

    def sdf(self, p):
        d = self.inner.sdf(p)
        for n, pt in self.planes:
            d = np.maximum(d, (p - pt) @ n)
        return d

    def aabb(self):
        return self.inner.aabb()

    def transformed(self, scale, shift):
        return Clipped(self.inner.transformed(scale, shift), [(n, pt * scale + shift) for n, pt in self.planes])


class Difference(Primitive):
    """`outer` minus `hole` (hollow mugs, open bags)."""
    kind = "difference"

    def __init__(self, outer, hole):
        super().__init__(outer.part)
        self.outer, self.hole = outer, hole

    def sdf(self, p):
        return np.maximum(self.outer.sdf(p), -self.hole.sdf(p))

    def aabb(self):
        return self.outer.aabb()

    def transformed(self, scale, shift):
        return Difference(self.outer.transformed(scale, shift), self.hole.transformed(scale, shift))
