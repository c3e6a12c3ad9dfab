"""Shape grammars: one small generator per category, returning primitives labelled with global part ids.

`MAKERS[category](rng, variety="basic")` draws a structural variant (e.g. a chair with or without arms,
four legs or a swivel base) and continuous proportions, and returns (primitives, variant name). The
raw units are arbitrary; `modules.data.synth` centres the shape and scales its longest bounding-box
edge to 1. Orientation follows ShapeNet: y up, the front of the object towards +z.

Two varieties:
- "basic": the grammars the shipped weights and the README figures were made with. Frozen: the same
  rng gives the same primitives, bit for bit (tests/test_shape_grammar.py holds their hash).
- "rich": more structural variants per category, swept and tapered parts (round cones along curves,
  tapered boxes), thin slats and shelves, bevelled (chamfered) boxes, armchairs, jets and propeller
  planes, tables with shelves and pedestals, ... (`RICH`); categories without a rich grammar fall back
  to basic. The 8 ONet classes outside ShapeNet-Part (bench ... watercraft) have both varieties.
"""
import numpy as np
from scipy.spatial import ConvexHull

from modules.data import categories
from modules.data.primitives import (Box, Capsule, Clipped, Cone, Cylinder, Difference, Ellipsoid, Primitive,
                                     Sphere, Torus, _frame_from_y, cylinder_between, rotation)
from modules.utils import ShapeLabError

VARIETIES = ("basic", "rich")
BASIC = {}   # category -> fn(rng) -> (prims, variant): the frozen grammars
RICH = {}    # category -> fn(rng) -> (prims, variant): the rich grammars
MAKERS = {}  # category -> fn(rng, variety="basic")


def check_variety(variety):
    if variety not in VARIETIES:
        raise ShapeLabError(f"--variety: unknown variety '{variety}'; valid: {', '.join(VARIETIES)}")
    return variety


def _dispatch(name):
    def make(rng, variety="basic"):
        fn = RICH.get(name) if check_variety(variety) == "rich" else None
        return (fn or BASIC[name])(rng)
    make.__name__ = f"make_{name}"
    make.__doc__ = f"(primitives, variant name) of one random {name}; variety 'basic' or 'rich'."
    return make


def maker(name, variety="basic"):
    """Register a grammar of one variety (MAKERS[name] dispatches on the variety)."""
    def register(fn):
        (RICH if variety == "rich" else BASIC)[name] = fn
        MAKERS.setdefault(name, _dispatch(name))
        return fn
    return register


def parts_of(name):
    """{part name: global id} of a category."""
    return {n: i for i, n in categories.part_table(name).items()}


def _pick(rng, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


ROT_Z90 = rotation("z", np.pi / 2)   # local y -> world -x (cylinders lying along x)
ROT_X90 = rotation("x", np.pi / 2)   # local y -> world +z


# ------------------------------------------------------------------ rich-variety primitives and helpers

class RoundCone(Primitive):
    """Segment a-b swept by a sphere whose radius goes linearly from ra (at a) to rb (at b): tapered legs
    and fuselages, and (chained along a curve by `sweep`) swept tubes. Exact distance (Quilez's round cone)."""
    kind = "roundcone"

    def __init__(self, part, a, b, ra, rb):
        super().__init__(part)
        self.a, self.b = np.asarray(a, float), np.asarray(b, float)
        length = max(np.linalg.norm(self.b - self.a), 1e-9)
        # a sphere that swallows the other end is not a round cone: shrink the difference of the radii
        self.ra, self.rb = float(ra), float(min(max(rb, ra - 0.95 * length), ra + 0.95 * length))

    def sdf(self, p):
        ba = self.b - self.a
        l2 = max(ba @ ba, 1e-18)
        rr = self.ra - self.rb
        a2 = l2 - rr * rr
        pa = p - self.a
        y = pa @ ba
        z = y - l2
        x2 = ((pa * l2 - y[:, None] * ba) ** 2).sum(1)
        k = np.sign(rr) * rr * rr * x2
        cap_b = np.sign(z) * a2 * z * z * l2 > k
        cap_a = np.sign(y) * a2 * y * y * l2 < k
        side = (np.sqrt(x2 * a2 / l2) + y * rr) / l2 - self.ra
        return np.where(cap_b, np.sqrt(x2 + z * z * l2) / l2 - self.rb,
                        np.where(cap_a, np.sqrt(x2 + y * y * l2) / l2 - self.ra, side))

    def aabb(self):
        return np.minimum(self.a - self.ra, self.b - self.rb), np.maximum(self.a + self.ra, self.b + self.rb)

    def transformed(self, scale, shift):
        return RoundCone(self.part, self.a * scale + shift, self.b * scale + shift, self.ra * scale, self.rb * scale)


class Polyhedron(Primitive):
    """Convex hull of points (tapered boxes, wedges, wing panels, hulls, bevelled boxes).

    SDF = the largest signed distance to a face plane: the sign is exact, inside it is the exact distance
    and outside a lower bound of it -- what the culling of `grid_sdf`/`union_sdf` needs (a block is skipped
    only when |sdf| says the surface cannot be near)."""
    kind = "polyhedron"

    def __init__(self, part, points):
        super().__init__(part)
        self.points = np.asarray(points, float)
        eq = ConvexHull(self.points).equations                # (F, 4): n . x + d <= 0 inside, |n| = 1
        self.planes = np.unique(np.round(eq, 12), axis=0)     # coplanar triangles share a plane

    def sdf(self, p):
        out = np.empty(len(p))
        for i in range(0, len(p), 65536):                     # bounded memory: (chunk, planes)
            q = p[i:i + 65536]
            out[i:i + 65536] = (q @ self.planes[:, :3].T + self.planes[:, 3]).max(1)
        return out

    def aabb(self):
        return self.points.min(0), self.points.max(0)

    def transformed(self, scale, shift):
        return Polyhedron(self.part, self.points * scale + shift)


def _place(points, center=(0, 0, 0), rot=None):
    pts = np.asarray(points, float)
    return (pts if rot is None else pts @ np.asarray(rot, float).T) + np.asarray(center, float)


def tapered_box(part, bottom, top, half_height, center=(0, 0, 0), rot=None, top_shift=(0.0, 0.0)):
    """Frustum of a box along local y: half extents (x, z) `bottom` at y=-h and `top` at y=+h, the top
    face moved by `top_shift` (x, z) (raked backs, windscreens, wedges)."""
    (bx, bz), (tx, tz), h = bottom, top, half_height
    pts = [(sx * bx, -h, sz * bz) for sx in (-1, 1) for sz in (-1, 1)]
    pts += [(sx * tx + top_shift[0], h, sz * tz + top_shift[1]) for sx in (-1, 1) for sz in (-1, 1)]
    return Polyhedron(part, _place(pts, center, rot))


def bevel_box(part, half, bevel, center=(0, 0, 0), rot=None):
    """Box with every edge and corner chamfered by `bevel` (the hull of 24 points)."""
    h = np.asarray(half, float)
    b = min(float(bevel), 0.45 * h.min())
    pts = []
    for s in [(sx, sy, sz) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]:
        for keep in range(3):          # the face of axis `keep` stays full, the other two pulled in by b
            q = h - b
            q[keep] = h[keep]
            pts.append(np.asarray(s) * q)
    return Polyhedron(part, _place(pts, center, rot))


def wing_panel(part, root, root_chord, tip_chord, span, sweep, thickness, dihedral=0.0, side=1):
    """A tapered, swept wing (or fin, if `span` is taken up the y axis by dihedral=pi/2) from the
    root leading edge `root`: chord along -z, span along side*x tilted up by `dihedral`, leading edge
    swept back by `sweep` radians; thickness tapers with the chord."""
    root = np.asarray(root, float)
    out = np.array([side * np.cos(dihedral), np.sin(dihedral), 0.0])
    up = np.array([-side * np.sin(dihedral), np.cos(dihedral), 0.0])
    tip = root + span * out + np.array([0, 0, -np.tan(sweep) * span])
    pts = []
    for base, chord in ((root, root_chord), (tip, tip_chord)):
        t = thickness * max(chord / root_chord, 0.5) / 2
        for z in (0.0, -chord):
            for s in (-1, 1):
                pts.append(base + (0, 0, z) + s * t * up)
    return Polyhedron(part, pts)


def bezier(ctrl, n):
    """n points on the Bezier curve of control points ctrl (k,3), de Casteljau."""
    ctrl = np.asarray(ctrl, float)
    out = []
    for t in np.linspace(0, 1, n):
        c = ctrl.copy()
        while len(c) > 1:
            c = (1 - t) * c[:-1] + t * c[1:]
        out.append(c[0])
    return np.array(out)


def sweep(part, points, radii):
    """A tube along a polyline whose radius varies from point to point: chained round cones."""
    radii = np.broadcast_to(np.asarray(radii, float), (len(points),))
    return [RoundCone(part, a, b, ra, rb) for a, b, ra, rb in zip(points[:-1], points[1:], radii[:-1], radii[1:])]


def shell_arc(part, radius, thickness, half_height, angle, center=(0, 0, 0), rot=None):
    """Curved slab: the part of a vertical cylindrical shell (radius outer) within +-angle/2 of local +z
    (curved chair backs, curved monitors); local y is the cylinder axis."""
    shell = Difference(Cylinder(part, radius, half_height, center=center, rot=rot),
                       Cylinder(part, radius - thickness, 2 * half_height, center=center, rot=rot))
    r = np.eye(3) if rot is None else np.asarray(rot, float)
    c = np.asarray(center, float)
    planes = [(r @ (np.cos(angle / 2) * s, 0, -np.sin(angle / 2)), c) for s in (-1, 1)]
    return Clipped(shell, planes)


@maker("airplane")
def make_airplane(rng):
    P = parts_of("airplane")
    U = rng.uniform
    length, radius = U(1.0, 1.4), U(0.045, 0.08)
    prims = [_pick(rng, [lambda: Capsule(P["body"], (0, 0, -length / 2), (0, 0, length / 2), radius),
                         lambda: Ellipsoid(P["body"], (radius, radius * U(1.0, 1.2), length / 2))])()]
    span, chord, sweep = U(0.9, 1.4), U(0.14, 0.26), U(0.0, 0.6)
    wing_y = _pick(rng, [-0.6, 0.6]) * radius
    thick = U(0.024, 0.034)
    for side in (-1, 1):
        rot = rotation("y", side * sweep)
        center = (side * span / 4, wing_y, U(-0.05, 0.08) - 0.5 * np.tan(sweep) * span / 4)
        prims.append(Box(P["wing"], (span / 4, thick, chord / 2), center=center, rot=rot, radius=0.008))
    tail_z = -length / 2 + 0.06
    tail = _pick(rng, ["conventional", "t-tail"])
    fin_h = U(0.12, 0.22)
    prims.append(Box(P["tail"], (0.016, fin_h / 2, U(0.06, 0.1)), center=(0, radius + fin_h / 2 - 0.01, tail_z),
                     rot=rotation("x", U(0.1, 0.4)), radius=0.006))
    stab_y = radius * 0.3 if tail == "conventional" else radius + fin_h - 0.02
    stab_span = U(0.25, 0.45)
    prims.append(Box(P["tail"], (stab_span / 2, 0.016, U(0.05, 0.08)), center=(0, stab_y, tail_z), radius=0.006))
    engines = _pick(rng, [0, 2, 4], p=[0.2, 0.5, 0.3])
    er, el = U(0.035, 0.055), U(0.14, 0.22)
    positions = {0: [], 2: [span * 0.17], 4: [span * 0.13, span * 0.3]}[engines]
    for x in positions:
        for side in (-1, 1):
            z = center[2] + 0.5 * np.tan(sweep) * span / 4 - np.tan(sweep) * x + chord * 0.35
            prims.append(cylinder_between(P["engine"], (side * x, wing_y - er - thick, z - el / 2),
                                          (side * x, wing_y - er - thick, z + el / 2), er, rounding=0.01))
    return prims, f"{tail}+{engines}engines"


@maker("bag")
def make_bag(rng):
    P = parts_of("bag")
    U = rng.uniform
    kind = _pick(rng, ["tote", "duffel", "satchel"])
    if kind == "duffel":
        L, r = U(0.8, 1.1), U(0.22, 0.3)
        body = Cylinder(P["body"], r, L / 2, rot=ROT_Z90, rounding=0.06)
        top, hx = r, L * 0.25
    else:
        w, h, d = U(0.6, 0.9), U(0.5, 0.8), U(0.15, 0.3) if kind == "tote" else U(0.25, 0.35)
        body = Box(P["body"], (w / 2, h / 2, d / 2), radius=U(0.02, 0.08))
        top, hx = h / 2, w * U(0.2, 0.3)
    prims = [body]
    handles = 2 if kind != "satchel" else 1
    hr = U(0.018, 0.03)
    arc = U(0.15, 0.3)
    for k in range(handles):
        z = 0.0 if handles == 1 else (k - 0.5) * (0.14 if kind == "duffel" else 0.06)
        major = (hx ** 2 + arc ** 2) / (2 * arc)   # circle through (+-hx, top) with apex top+arc
        ring = Torus(P["handle"], major, hr, center=(0, top + arc - major, z), rot=ROT_X90)
        prims.append(Clipped(ring, [((0, -1, 0), (0, top - 0.02, 0))]))
    return prims, f"{kind}+{handles}handles"


@maker("cap")
def make_cap(rng):
    P = parts_of("cap")
    U = rng.uniform
    r, h = U(0.45, 0.55), U(0.3, 0.45)
    kind = _pick(rng, ["baseball", "brimmed", "baseball-button"])
    dome = Clipped(Ellipsoid(P["panels"], (r, h, r * U(1.0, 1.12))), [((0, -1, 0), (0, 0, 0))])
    prims = [dome]
    t = U(0.02, 0.03)
    if kind == "brimmed":
        prims.append(Difference(Cylinder(P["peak"], r * U(1.3, 1.5), t, center=(0, t, 0), rounding=0.01),
                                Cylinder(P["peak"], r * 0.9, 2 * t, center=(0, t, 0))))
    else:
        peak_len = U(0.25, 0.4)
        prims.append(Clipped(Ellipsoid(P["peak"], (r * 0.9, t, r + peak_len), center=(0, t + 0.01, 0),
                                       rot=rotation("x", -U(0.05, 0.2))), [((0, 0, -1), (0, 0, r * 0.5))]))
    if kind == "baseball-button":
        prims.append(Sphere(P["panels"], U(0.04, 0.06), center=(0, h, 0)))
    return prims, kind


@maker("car")
def make_car(rng):
    P = parts_of("car")
    U = rng.uniform
    kind = _pick(rng, ["sedan", "hatchback", "pickup", "van"])
    L, W, H = U(1.6, 2.0), U(0.7, 0.85), U(0.28, 0.36)
    wr = U(0.14, 0.18)
    body_y = wr * 0.9 + H / 2
    prims = [Box(P["body"], (W / 2, H / 2, L / 2), center=(0, body_y, 0), radius=U(0.05, 0.1))]
    top = body_y + H / 2
    cab_h = U(0.25, 0.35) if kind != "van" else U(0.4, 0.55)
    if kind == "sedan":
        z0, z1 = -L * 0.3, L * 0.2
    elif kind == "hatchback":
        z0, z1 = -L / 2 + 0.05, L * 0.15
    elif kind == "pickup":
        z0, z1 = -L * 0.05, L * 0.25
        prims.append(Difference(Box(P["body"], (W / 2, 0.12, L * 0.22), center=(0, top + 0.08, -L * 0.27), radius=0.02),
                                Box(P["body"], (W / 2 - 0.04, 0.2, L * 0.22 - 0.04), center=(0, top + 0.2, -L * 0.27))))
    else:
        z0, z1 = -L / 2 + 0.03, L * 0.3
    prims.append(Box(P["roof"], (W / 2 * U(0.85, 0.95), cab_h / 2, (z1 - z0) / 2), center=(0, top + cab_h / 2 - 0.03, (z0 + z1) / 2),
                     radius=U(0.05, 0.1)))
    hood_len = L / 2 - z1 - 0.03
    if hood_len > 0.08:
        prims.append(Box(P["hood"], (W / 2 * 0.9, 0.03, hood_len / 2), center=(0, top, z1 + hood_len / 2 + 0.01), radius=0.02))
    axles = [L * 0.32, -L * 0.32] + ([-L * 0.12] if kind == "pickup" and rng.random() < 0.5 else [])
    for z in axles:
        for side in (-1, 1):
            prims.append(Cylinder(P["wheel"], wr, U(0.06, 0.08), center=(side * (W / 2 - 0.03), wr, z), rot=ROT_Z90,
                                  rounding=0.02))
    return prims, f"{kind}+{len(axles) * 2}wheels"


@maker("chair")
def make_chair(rng):
    P = parts_of("chair")
    U = rng.uniform
    w, d, seat_h, t = U(0.45, 0.6), U(0.45, 0.6), U(0.42, 0.5), U(0.04, 0.08)
    prims = [Box(P["seat"], (w / 2, t / 2, d / 2), center=(0, seat_h, 0), radius=0.015)]
    back_h, tilt = U(0.4, 0.65), U(0.0, 0.25)
    back_kind = _pick(rng, ["solid", "slatted"])
    rot = rotation("x", -tilt)
    up = rot @ np.array([0, 1.0, 0])
    base = np.array([0, seat_h + t / 2, -d / 2 + 0.03])
    if back_kind == "solid":
        prims.append(Box(P["back"], (w / 2, back_h / 2, 0.03), center=base + up * back_h / 2, rot=rot, radius=0.015))
    else:
        for x in (-w / 2 + 0.03, w / 2 - 0.03):
            prims.append(Box(P["back"], (0.025, back_h / 2, 0.025), center=base + up * back_h / 2 + (x, 0, 0), rot=rot))
        prims.append(Box(P["back"], (w / 2, 0.06, 0.025), center=base + up * (back_h - 0.06), rot=rot, radius=0.01))
        for x in np.linspace(-w / 4, w / 4, 3):
            prims.append(Box(P["back"], (0.018, back_h / 2 - 0.06, 0.018), center=base + up * back_h / 2 + (x, 0, 0), rot=rot))
    legs = _pick(rng, ["4legs", "swivel", "sled"])
    y0 = seat_h - t / 2
    if legs == "4legs":
        lr, splay = U(0.02, 0.035), U(0.0, 0.05)
        for sx in (-1, 1):
            for sz in (-1, 1):
                top = (sx * (w / 2 - 0.04), y0 + 0.01, sz * (d / 2 - 0.04))
                foot = (sx * (w / 2 - 0.04 + splay), 0, sz * (d / 2 - 0.04 + splay))
                prims.append(cylinder_between(P["leg"], foot, top, lr))
    elif legs == "swivel":
        prims.append(Cylinder(P["leg"], U(0.03, 0.045), (y0 - 0.08) / 2 + 0.01, center=(0, 0.08 + (y0 - 0.08) / 2, 0)))
        n, reach = _pick(rng, [4, 5]), U(0.25, 0.33)
        for k in range(n):
            a = 2 * np.pi * k / n
            end = np.array([reach * np.cos(a), 0.05, reach * np.sin(a)])
            prims.append(Capsule(P["leg"], (0, 0.08, 0), end, 0.022))
            prims.append(Sphere(P["leg"], 0.035, center=end - (0, 0.015, 0)))
    else:
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.03)
            pts = [(x, y0, d / 2 - 0.05), (x, 0.02, d / 2 - 0.02), (x, 0.02, -d / 2 + 0.02), (x, y0, -d / 2 + 0.05)]
            for a, b in zip(pts[:-1], pts[1:]):
                prims.append(Capsule(P["leg"], a, b, 0.02))
    arms = rng.random() < 0.45
    if arms:
        ah = U(0.18, 0.25)
        for sx in (-1, 1):
            x = sx * (w / 2 + 0.02)
            prims.append(Box(P["arm"], (0.03, 0.02, d * 0.4), center=(x, seat_h + ah, 0), radius=0.01))
            prims.append(Box(P["arm"], (0.02, ah / 2, 0.02), center=(x, seat_h + ah / 2, d * 0.3)))
    return prims, f"{back_kind}+{legs}" + ("+arms" if arms else "")


@maker("earphone")
def make_earphone(rng):
    P = parts_of("earphone")
    U = rng.uniform
    kind = _pick(rng, ["headphones-wired", "headphones-wireless", "earbuds"])
    prims = []
    if kind == "earbuds":
        sep, r = U(0.25, 0.4), U(0.05, 0.07)
        join = np.array([0, -U(0.4, 0.6), 0])
        end = join + (0, -U(0.3, 0.5), U(-0.05, 0.05))
        for side in (-1, 1):
            c = np.array([side * sep / 2, 0, 0])
            prims.append(Sphere(P["earcup"], r, center=c))
            prims.append(Capsule(P["data wire"], c + (0, -r * 0.8, 0), join, 0.014))
        prims.append(Capsule(P["data wire"], join, end, 0.014))
        return prims, kind
    half_w, cup_r, cup_t = U(0.3, 0.38), U(0.14, 0.2), U(0.06, 0.1)
    for side in (-1, 1):
        prims.append(Cylinder(P["earcup"], cup_r, cup_t / 2, center=(side * half_w, 0, 0), rot=ROT_Z90, rounding=0.03))
    band = Torus(P["headband"], half_w, U(0.025, 0.04), center=(0, U(0.05, 0.12), 0), rot=ROT_X90)
    prims.append(Clipped(band, [((0, -1, 0), (0, 0.05, 0))]))
    for side in (-1, 1):
        prims.append(Capsule(P["headband"], (side * half_w, 0.1, 0), (side * half_w, 0.0, 0), 0.025))
    if kind == "headphones-wired":
        start = np.array([-half_w, -cup_r * 0.8, 0])
        mid = start + (U(0.0, 0.1), -U(0.25, 0.35), U(-0.1, 0.1))
        prims.append(Capsule(P["data wire"], start, mid, 0.014))
        prims.append(Capsule(P["data wire"], mid, mid + (U(0.05, 0.2), -U(0.2, 0.3), 0), 0.014))
    return prims, kind


@maker("guitar")
def make_guitar(rng):
    P = parts_of("guitar")
    U = rng.uniform
    kind = _pick(rng, ["acoustic", "electric", "bass"])
    depth = U(0.08, 0.12) if kind == "acoustic" else U(0.04, 0.06)
    prims = []
    if kind == "acoustic":
        r1, r2 = U(0.2, 0.25), U(0.15, 0.19)
        prims.append(Cylinder(P["body"], r1, depth / 2, center=(0, -r1 * 0.2, 0), rot=ROT_X90, rounding=0.02))
        prims.append(Cylinder(P["body"], r2, depth / 2, center=(0, r1 * 0.7 + r2 * 0.5, 0), rot=ROT_X90, rounding=0.02))
        body_top = r1 * 0.7 + r2 * 1.4
    else:
        bw, bh = U(0.3, 0.4), U(0.35, 0.45)
        prims.append(Box(P["body"], (bw / 2, bh / 2, depth / 2), center=(0, 0, 0), radius=0.02))
        prims.append(Ellipsoid(P["body"], (0.06, U(0.1, 0.16), depth / 2), center=(-bw / 2 + 0.04, bh / 2, 0)))
        body_top = bh / 2
    neck_len = U(0.55, 0.7) * (1.25 if kind == "bass" else 1.0)
    prims.append(Box(P["neck"], (0.03, neck_len / 2, 0.02), center=(0, body_top + neck_len / 2 - 0.02, 0.0)))
    head_len = U(0.13, 0.2)
    tilt = U(0.0, 0.25) if kind == "acoustic" else 0.0
    rot = rotation("x", tilt)
    top = np.array([0, body_top + neck_len - 0.04, 0])
    prims.append(Box(P["head"], (U(0.04, 0.055), head_len / 2, 0.018), center=top + rot @ (0, head_len / 2, 0), rot=rot,
                     radius=0.008))
    return prims, kind


@maker("knife")
def make_knife(rng):
    P = parts_of("knife")
    U = rng.uniform
    kind = _pick(rng, ["kitchen", "cleaver", "dagger"])
    L, t = U(0.5, 0.75), U(0.02, 0.026)
    hl, hr = U(0.25, 0.35), U(0.03, 0.045)
    if kind == "cleaver":
        h = U(0.18, 0.25)
        blade = Box(P["blade"], (L / 2, h / 2, t / 2), center=(L / 2, -h / 2 + hr, 0), radius=0.004)
        prims = [blade]
    elif kind == "kitchen":
        h = U(0.08, 0.13)
        blade = Box(P["blade"], (L / 2, h / 2, t / 2), center=(L / 2, -h / 2 + hr, 0), radius=0.004)
        # the tip: a cut from the top edge down to the cutting edge
        n = np.array([h, L * 0.35, 0])
        prims = [Clipped(blade, [(n, (L, -h + hr, 0))])]
    else:
        h = U(0.06, 0.09)
        blade = Box(P["blade"], (L / 2, h / 2, t / 2), center=(L / 2, 0, 0), radius=0.004)
        prims = [Clipped(blade, [((h / 2, L * 0.3, 0), (L, 0, 0)), ((h / 2, -L * 0.3, 0), (L, 0, 0))])]
        prims.append(Box(P["handle"], (0.02, U(0.07, 0.1), 0.025), center=(-0.01, 0, 0), radius=0.008))
    prims.append(cylinder_between(P["handle"], (-hl, 0 if kind == "dagger" else hr * 0.2, 0),
                                  (0.0, 0 if kind == "dagger" else hr * 0.2, 0), hr, rounding=0.015))
    return prims, kind


@maker("lamp")
def make_lamp(rng):
    P = parts_of("lamp")
    U = rng.uniform
    kind = _pick(rng, ["desk-arm", "floor", "hanging", "table-globe"])
    prims = []
    if kind == "hanging":
        top = U(0.9, 1.2)
        prims.append(Cylinder(P["canopy"], U(0.08, 0.12), 0.025, center=(0, top, 0), rounding=0.01))
        shade_y = U(0.3, 0.5)
        prims.append(Capsule(P["tube"], (0, top, 0), (0, shade_y, 0), 0.02))
        r = U(0.15, 0.3)
        shade = _pick(rng, ["cone", "dome"])
        if shade == "cone":
            prims.append(Cone(P["lampshade"], r, r * U(0.2, 0.5), U(0.08, 0.15), center=(0, shade_y - 0.1, 0)))
        else:
            prims.append(Clipped(Ellipsoid(P["lampshade"], (r, U(0.12, 0.2), r), center=(0, shade_y, 0)),
                                 [((0, 1, 0), (0, shade_y + 0.05, 0))]))
        return prims, f"hanging-{shade}"
    base_r, base_h = U(0.12, 0.2), U(0.025, 0.05)
    prims.append(Cylinder(P["base"], base_r, base_h / 2, center=(0, base_h / 2, 0), rounding=0.01))
    if kind == "desk-arm":
        a = np.array([0, base_h, 0])
        b = a + (0, U(0.3, 0.45), U(-0.15, 0.0))
        c = b + (0, U(0.05, 0.2), U(0.25, 0.4))
        prims += [Capsule(P["tube"], a, b, 0.022), Capsule(P["tube"], b, c, 0.022)]
        r = U(0.08, 0.13)
        shade = Cone(P["lampshade"], r, r * 0.4, U(0.06, 0.1), center=c + (0, -0.06, 0.04), rot=rotation("x", 0.5))
        prims.append(shade)
        return prims, kind
    if kind == "floor":
        h = U(1.0, 1.5)
        prims.append(Capsule(P["tube"], (0, base_h, 0), (0, h, 0), 0.024))
        r = U(0.15, 0.22)
        shade = _pick(rng, ["drum", "cone"])
        if shade == "drum":
            prims.append(Cylinder(P["lampshade"], r, U(0.1, 0.15), center=(0, h, 0)))
        else:
            prims.append(Cone(P["lampshade"], r, r * 0.6, U(0.1, 0.15), center=(0, h, 0)))
        return prims, f"floor-{shade}"
    h = U(0.25, 0.4)
    prims.append(Capsule(P["tube"], (0, base_h, 0), (0, h, 0), 0.02))
    r = U(0.12, 0.18)
    prims.append(Sphere(P["lampshade"], r, center=(0, h + r * 0.8, 0)))
    return prims, kind


@maker("laptop")
def make_laptop(rng):
    P = parts_of("laptop")
    U = rng.uniform
    w, d, t = U(0.6, 0.8), U(0.4, 0.55), U(0.02, 0.035)
    kind = _pick(rng, ["open", "wide-open", "half-closed"])
    angle = {"open": U(1.6, 2.0), "wide-open": U(2.3, 2.9), "half-closed": U(0.5, 1.0)}[kind]
    prims = [Box(P["keyboard"], (w / 2, t / 2, d / 2), center=(0, t / 2, 0), radius=0.006)]
    st = U(0.015, 0.025)
    rot = rotation("x", -angle)          # screen hinged at the back edge, opening from lying flat
    hinge = np.array([0, t, -d / 2])
    prims.append(Box(P["screen"], (w / 2, st / 2, d / 2), center=hinge + rot @ (0, st / 2, d / 2), rot=rot, radius=0.005))
    return prims, kind


@maker("motorbike")
def make_motorbike(rng):
    P = parts_of("motorbike")
    U = rng.uniform
    kind = _pick(rng, ["sport", "cruiser", "dirt"])
    wr = U(0.28, 0.34) if kind != "dirt" else U(0.34, 0.4)
    tube = U(0.06, 0.09)
    wheelbase = U(1.2, 1.5)
    front, rear = np.array([0, wr, wheelbase / 2]), np.array([0, wr, -wheelbase / 2])
    for c in (front, rear):
        prims_w = Torus(P["wheel"], wr - tube, tube, center=c, rot=ROT_Z90)
        if c is front:
            prims = [prims_w]
        else:
            prims.append(prims_w)
        prims.append(Cylinder(P["wheel"], wr * 0.35, 0.03, center=c, rot=ROT_Z90))
    body_y = wr + U(0.1, 0.25)
    prims.append(Box(P["body"], (0.1, 0.12, wheelbase * 0.3), center=(0, body_y - 0.05, 0), radius=0.04))
    prims.append(Capsule(P["body"], rear, (0, body_y, -wheelbase * 0.1), 0.035))
    fork_top = front + (0, U(0.45, 0.6), -U(0.15, 0.25))
    prims.append(Capsule(P["body"], front, fork_top, 0.03))
    prims.append(Ellipsoid(P["gas tank"], (0.14, 0.1, U(0.16, 0.22)), center=(0, body_y + 0.12, wheelbase * 0.12)))
    seat_len = U(0.25, 0.4)
    prims.append(Box(P["seat"], (0.12, 0.04, seat_len / 2), center=(0, body_y + 0.09, -wheelbase * 0.12 - seat_len / 4),
                     radius=0.03))
    bar_h = {"sport": 0.0, "cruiser": U(0.12, 0.2), "dirt": U(0.05, 0.1)}[kind]
    bar_w = U(0.28, 0.4)
    ht = fork_top + (0, bar_h, 0)
    if bar_h > 0:
        prims.append(Capsule(P["handle"], fork_top, ht, 0.02))
    prims.append(Capsule(P["handle"], ht - (bar_w, 0, 0), ht + (bar_w, 0, 0), 0.02))
    light = Cylinder(P["light"], U(0.06, 0.09), 0.035, center=fork_top + (0, -0.1, 0.08), rot=ROT_X90, rounding=0.01)
    prims.append(light)
    if kind == "sport":
        prims.append(Box(P["body"], (0.14, 0.15, 0.12), center=fork_top + (0, -0.2, -0.05), rot=rotation("x", 0.4),
                         radius=0.05))
    return prims, kind


@maker("mug")
def make_mug(rng):
    P = parts_of("mug")
    U = rng.uniform
    kind = _pick(rng, ["straight", "tapered", "barrel"])
    r, h, wall = U(0.3, 0.4), U(0.7, 1.0), U(0.035, 0.05)
    c = (0, h / 2, 0)
    if kind == "straight":
        outer = Cylinder(P["body"], r, h / 2, center=c, rounding=0.02)
        inner = Cylinder(P["body"], r - wall, h / 2, center=(0, h / 2 + wall, 0))
    elif kind == "tapered":
        k = U(0.7, 0.85)
        outer = Cone(P["body"], r * k, r, h / 2, center=c)
        inner = Cone(P["body"], r * k - wall, r - wall, h / 2, center=(0, h / 2 + wall, 0))
    else:
        outer = Clipped(Ellipsoid(P["body"], (r, h * 0.62, r), center=c),
                        [((0, 1, 0), (0, h, 0)), ((0, -1, 0), (0, 0, 0))])
        inner = Clipped(Ellipsoid(P["body"], (r - wall, h * 0.62 - wall, r - wall), center=c),
                        [((0, -1, 0), (0, wall, 0))])
    prims = [Difference(outer, inner)]
    hh = U(0.25, 0.35) * h
    handle = _pick(rng, ["round", "square"])
    hr = U(0.03, 0.045)
    if handle == "round":
        ring = Torus(P["handle"], hh, hr, center=(r - wall, h * U(0.45, 0.55), 0), rot=ROT_X90)
        prims.append(Clipped(ring, [((-1, 0, 0), (r - wall, 0, 0))]))
    else:
        y0, y1, x0, x1 = h * 0.25, h * 0.75, r - wall, r + U(0.18, 0.25)
        for a, b in [((x0, y0, 0), (x1, y0, 0)), ((x1, y0, 0), (x1, y1, 0)), ((x1, y1, 0), (x0, y1, 0))]:
            prims.append(Capsule(P["handle"], a, b, hr))
    return prims, f"{kind}+{handle}-handle"


@maker("pistol")
def make_pistol(rng):
    P = parts_of("pistol")
    U = rng.uniform
    kind = _pick(rng, ["semi-auto", "revolver", "long-barrel"])
    L = U(0.6, 0.8) * (1.5 if kind == "long-barrel" else 1.0)
    prims = []
    if kind == "revolver":
        prims.append(cylinder_between(P["barrel"], (0, 0.1, 0.0), (0, 0.1, L * 0.8), 0.04))
        prims.append(Cylinder(P["barrel"], 0.09, 0.07, center=(0, 0.07, 0.0), rot=ROT_X90, rounding=0.02))
        prims.append(Box(P["barrel"], (0.04, 0.07, 0.12), center=(0, 0.07, -0.12), radius=0.02))
        back = -0.2
    else:
        prims.append(Box(P["barrel"], (0.045, 0.07, L / 2), center=(0, 0.07, L / 2 - 0.2), radius=0.015))
        back = -0.18
    gl, ga = U(0.35, 0.45), U(0.2, 0.4)
    rot = rotation("x", ga)
    top = np.array([0, 0.02, back + 0.06])
    prims.append(Box(P["handle"], (0.045, gl / 2, 0.07), center=top + rot @ (0, -gl / 2, 0), rot=rot, radius=0.02))
    guard_c = np.array([0, -0.06, back + 0.2])
    ring = Torus(P["trigger and guard"], U(0.06, 0.08), 0.016, center=guard_c, rot=ROT_Z90)
    prims.append(Clipped(ring, [((0, 1, 0), (0, 0.0, 0))]))
    prims.append(Box(P["trigger and guard"], (0.014, 0.035, 0.014), center=guard_c + (0, 0.0, -0.01), rot=rotation("x", 0.3)))
    return prims, kind


@maker("rocket")
def make_rocket(rng):
    P = parts_of("rocket")
    U = rng.uniform
    r, h = U(0.08, 0.13), U(0.8, 1.2)
    prims = [Cylinder(P["body"], r, h / 2, center=(0, h / 2, 0))]
    nose = _pick(rng, ["cone", "ogive"])
    nh = U(0.2, 0.35)
    if nose == "cone":
        prims.append(Cone(P["nose"], r, 0.0, nh / 2, center=(0, h + nh / 2, 0)))
    else:
        prims.append(Clipped(Ellipsoid(P["nose"], (r, nh, r), center=(0, h, 0)), [((0, -1, 0), (0, h, 0))]))
    fins = _pick(rng, [3, 4])
    fl, fh = U(0.12, 0.22), U(0.15, 0.3)
    for k in range(fins):
        rot = rotation("y", 2 * np.pi * k / fins)
        fin = Box(P["fin"], (fl / 2, fh / 2, 0.016), center=rot @ (r + fl / 2 - 0.01, fh / 2, 0), rot=rot, radius=0.004)
        prims.append(Clipped(fin, [(rot @ (fh, fl, 0), rot @ (r, fh, 0))]))
    boosters = rng.random() < 0.3
    if boosters:
        for k in range(2):
            x = (2 * k - 1) * (r + 0.05)
            prims.append(Cylinder(P["body"], 0.045, h * 0.3, center=(x, h * 0.3, 0)))
            prims.append(Cone(P["nose"], 0.045, 0.0, 0.05, center=(x, h * 0.6 + 0.05, 0)))
    return prims, f"{nose}+{fins}fins" + ("+boosters" if boosters else "")


@maker("skateboard")
def make_skateboard(rng):
    P = parts_of("skateboard")
    U = rng.uniform
    kind = _pick(rng, ["street", "longboard", "strapped"])
    L = U(0.75, 0.85) if kind == "street" else U(0.95, 1.2)
    w, t, wr = U(0.2, 0.26), U(0.02, 0.03), U(0.03, 0.045)
    y = 2 * wr + 0.04
    flat = L * (0.7 if kind == "street" else 0.85)
    prims = [Box(P["deck"], (w / 2, t / 2, flat / 2), center=(0, y, 0), radius=0.009)]
    if kind != "longboard":
        tail = (L - flat) / 2 + 0.02
        for s in (-1, 1):
            rot = rotation("x", -s * 0.35)
            prims.append(Box(P["deck"], (w / 2, t / 2, tail / 2), center=(0, y, s * (flat / 2 - 0.01)) + rot @ (0, 0, s * tail / 2),
                             rot=rot, radius=0.009))
    for z in (flat * 0.35, -flat * 0.35):
        prims.append(Box(P["wheel"], (w * 0.3, 0.02, 0.02), center=(0, y - t / 2 - 0.02, z)))  # truck
        for s in (-1, 1):
            prims.append(Cylinder(P["wheel"], wr, 0.02, center=(s * w * 0.32, wr, z), rot=ROT_Z90, rounding=0.006))
    if kind == "strapped":
        for z in (flat * 0.22, -flat * 0.22):
            ring = Torus(P["belt for foot"], w / 2 - 0.01, 0.014, center=(0, y, z), rot=ROT_X90)
            prims.append(Clipped(ring, [((0, -1, 0), (0, y, 0))]))
    return prims, kind


@maker("table")
def make_table(rng):
    P = parts_of("table")
    U = rng.uniform
    kind = _pick(rng, ["4legs", "4legs-stretchers", "pedestal", "trestle"])
    h, t = U(0.65, 0.8), U(0.03, 0.06)
    round_top = kind == "pedestal" and rng.random() < 0.7 or (kind == "4legs" and rng.random() < 0.25)
    if round_top:
        r = U(0.4, 0.6)
        w = d = 2 * r
        prims = [Cylinder(P["desktop"], r, t / 2, center=(0, h - t / 2, 0), rounding=0.01)]
    else:
        w, d = U(0.9, 1.6), U(0.5, 0.9)
        prims = [Box(P["desktop"], (w / 2, t / 2, d / 2), center=(0, h - t / 2, 0), radius=0.01)]
    y0 = h - t
    if kind.startswith("4legs"):
        lr = U(0.02, 0.04)
        k = 0.35 if round_top else 0.5
        corners = [(sx * (w * k - 0.06), sz * (d * k - 0.06)) for sx in (-1, 1) for sz in (-1, 1)]
        for x, z in corners:
            prims.append(Box(P["leg"], (lr, y0 / 2, lr), center=(x, y0 / 2, z)) if rng.random() < 0.5
                         else Cylinder(P["leg"], lr, y0 / 2, center=(x, y0 / 2, z)))
        ys = U(0.1, 0.25) if kind == "4legs-stretchers" else y0 - 0.05
        (x0, z0), (x1, z1) = corners[0], corners[3]
        for a, b in [((x0, z0), (x0, z1)), ((x1, z0), (x1, z1)), ((x0, z0), (x1, z0)), ((x0, z1), (x1, z1))]:
            prims.append(cylinder_between(P["support"], (a[0], ys, a[1]), (b[0], ys, b[1]), 0.015))
    elif kind == "pedestal":
        prims.append(Cylinder(P["leg"], U(0.04, 0.07), y0 / 2, center=(0, y0 / 2, 0)))
        prims.append(Cylinder(P["support"], U(0.2, 0.3), 0.02, center=(0, 0.02, 0), rounding=0.01))
    else:
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.1)
            prims.append(Box(P["leg"], (0.03, y0 / 2, d * 0.35), center=(x, y0 / 2, 0)))
        prims.append(Box(P["support"], (w / 2 - 0.1, 0.04, 0.025), center=(0, y0 * 0.4, 0)))
    return prims, kind + ("-round" if round_top else "")


# ------------------------------------------------------------------ rich variety: ShapeNet-Part categories

def _legs4(P, part, w, d, top_y, style, U, inset=0.04, rng=None):
    """Four legs under a w x d top ending at height top_y: straight, tapered (round cones), square
    tapered (frusta), splayed or turned (a bulb on a tapered leg)."""
    prims = []
    r = U(0.018, 0.032)
    splay = U(0.03, 0.07) if style == "splayed" else 0.0
    for sx in (-1, 1):
        for sz in (-1, 1):
            x, z = sx * (w / 2 - inset), sz * (d / 2 - inset)
            top, foot = np.array([x, top_y, z]), np.array([x + sx * splay, 0.0, z + sz * splay])
            if style == "square-tapered":
                prims.append(tapered_box(part, (r * 0.6, r * 0.6), (r * 1.2, r * 1.2), top_y / 2,
                                         center=(x, top_y / 2, z)))
            elif style == "tapered" or style == "splayed":
                prims.append(RoundCone(part, foot, top, r * 0.55, r * 1.1))
            elif style == "turned":
                prims.append(RoundCone(part, foot, top, r * 0.7, r))
                prims.append(Ellipsoid(part, (r * 1.8, top_y * 0.12, r * 1.8), center=(x, top_y * 0.6, z)))
            else:
                prims.append(cylinder_between(part, foot, top, r))
    return prims


@maker("chair", "rich")
def make_chair_rich(rng):
    """Chairs, armchairs and stools: 4 seats x 6 backs x 7 bases x 4 arm styles."""
    P = parts_of("chair")
    U = rng.uniform
    w, d, seat_h = U(0.42, 0.62), U(0.42, 0.6), U(0.4, 0.5)
    seat = _pick(rng, ["box", "bevel", "round", "cushion"])
    t = U(0.03, 0.07) if seat != "cushion" else U(0.09, 0.14)
    if seat == "round":
        w = d = max(w, d)
        prims = [Cylinder(P["seat"], w / 2, t / 2, center=(0, seat_h, 0), rounding=0.01)]
    elif seat == "bevel":
        prims = [bevel_box(P["seat"], (w / 2, t / 2, d / 2), U(0.01, 0.02), center=(0, seat_h, 0))]
    else:
        prims = [Box(P["seat"], (w / 2, t / 2, d / 2), center=(0, seat_h, 0), radius=0.015 if seat == "box" else 0.04)]
    back = _pick(rng, ["solid", "slatted", "ladder", "curved", "tapered", "none"], p=[0.2, 0.17, 0.17, 0.17, 0.17, 0.12])
    back_h, tilt = U(0.35, 0.7), U(0.0, 0.3)
    rot = rotation("x", -tilt)
    up = rot @ np.array([0, 1.0, 0])
    # a round seat is narrower at the back: the back stands at 0.75 r, where the seat is 1.3 r wide
    base = np.array([0, seat_h + t / 2, -d / 2 + 0.03 if seat != "round" else -0.75 * d / 2])
    bw = w if seat != "round" else 0.6 * w     # back width
    lw, ld = (w, d) if seat != "round" else (0.72 * w, 0.72 * d)   # leg footprint
    bt = U(0.022, 0.04)
    if back == "solid":
        prims.append(Box(P["back"], (bw / 2, back_h / 2, bt), center=base + up * back_h / 2, rot=rot, radius=0.012))
    elif back == "tapered":
        prims.append(tapered_box(P["back"], (bw / 2, bt), (bw / 2 * U(0.55, 0.85), bt * 0.8), back_h / 2,
                                 center=base + up * back_h / 2, rot=rot))
    elif back == "curved":
        R = U(0.5, 0.9) * bw
        prims.append(shell_arc(P["back"], R, bt, back_h * 0.3, 2 * np.arcsin(min(0.95, bw / 2 / R)),
                               center=base + up * back_h * 0.7 + rot @ (0, 0, R - bt), rot=rot @ rotation("y", np.pi)))
        for x in (-bw / 2 + 0.04, bw / 2 - 0.04):
            prims.append(Box(P["back"], (0.02, back_h / 2, 0.02), center=base + up * back_h / 2 + (x, 0, 0.01), rot=rot))
    elif back in ("slatted", "ladder"):
        for x in (-bw / 2 + 0.025, bw / 2 - 0.025):
            prims.append(Box(P["back"], (0.022, back_h / 2, 0.022), center=base + up * back_h / 2 + (x, 0, 0), rot=rot))
        n = int(rng.integers(2, 6))
        if back == "slatted":
            prims.append(Box(P["back"], (bw / 2, 0.04, 0.02), center=base + up * (back_h - 0.04), rot=rot, radius=0.008))
            for x in np.linspace(-bw / 2 + 0.07, bw / 2 - 0.07, n):
                prims.append(Box(P["back"], (0.016, back_h / 2 - 0.05, 0.012), center=base + up * (back_h / 2 - 0.01) + (x, 0, 0), rot=rot))
        else:
            for y in np.linspace(back_h * 0.3, back_h - 0.03, n):
                prims.append(Box(P["back"], (bw / 2 - 0.02, 0.025, 0.012), center=base + up * y, rot=rot))
    legs = _pick(rng, ["straight", "tapered", "square-tapered", "turned", "swivel", "sled", "cantilever"])
    y0 = seat_h - t / 2
    if legs in ("straight", "tapered", "square-tapered", "turned"):
        prims += _legs4(P, P["leg"], lw, ld, y0 + 0.01, legs, U)
        if rng.random() < 0.4:   # H stretcher
            ys, lx = U(0.1, 0.2), lw / 2 - 0.05
            for sx in (-1, 1):
                prims.append(cylinder_between(P["leg"], (sx * lx, ys, -ld / 2 + 0.05), (sx * lx, ys, ld / 2 - 0.05), 0.012))
            prims.append(cylinder_between(P["leg"], (-lx, ys, 0), (lx, ys, 0), 0.012))
            legs += "+stretcher"
    elif legs == "swivel":
        prims.append(Cylinder(P["leg"], U(0.03, 0.045), (y0 - 0.08) / 2 + 0.01, center=(0, 0.08 + (y0 - 0.08) / 2, 0)))
        n, reach = _pick(rng, [4, 5]), U(0.25, 0.33)
        for k in range(n):
            a = 2 * np.pi * k / n
            end = np.array([reach * np.cos(a), 0.04, reach * np.sin(a)])
            prims.append(RoundCone(P["leg"], (0, 0.08, 0), end, 0.03, 0.018))
            prims.append(Sphere(P["leg"], 0.03, center=end - (0, 0.01, 0)))
    elif legs == "sled":
        for sx in (-1, 1):
            x = sx * (lw / 2 - 0.03)
            pts = bezier([(x, y0, ld / 2 - 0.05), (x, -0.05, ld / 2 + 0.05), (x, 0.0, -ld / 2), (x, y0, -ld / 2 + 0.05)], 7)
            prims += sweep(P["leg"], pts, 0.018)
    else:   # cantilever: one bent tube per side, front edge down to the floor, back along the floor
        for sx in (-1, 1):
            x = sx * (lw / 2 - 0.03)
            pts = bezier([(x, y0, ld / 2 - 0.05), (x, y0 * 0.4, ld / 2 + 0.08), (x, 0.0, ld / 2), (x, 0.0, -ld / 2)], 7)
            prims += sweep(P["leg"], pts, 0.018)
        prims.append(cylinder_between(P["leg"], (-lw / 2 + 0.03, 0.0, -d / 2), (lw / 2 - 0.03, 0.0, -d / 2), 0.018))
    arms = "none" if back == "none" else _pick(rng, ["none", "bar", "panel", "swept"], p=[0.4, 0.2, 0.2, 0.2])
    ah = U(0.17, 0.25)
    for sx in (-1, 1):
        x = sx * (w / 2 + 0.025)
        if arms == "bar":
            prims.append(Box(P["arm"], (0.03, 0.018, d * 0.42), center=(x, seat_h + ah, -d * 0.05), radius=0.008))
            prims.append(RoundCone(P["arm"], (x, seat_h, d * 0.3), (x, seat_h + ah, d * 0.3), 0.02, 0.015))
        elif arms == "panel":   # armchair: solid sides from the floor to the arm rest
            prims.append(bevel_box(P["arm"], (0.04, (seat_h + ah - 0.06) / 2, d / 2), 0.015, center=(x, (seat_h + ah + 0.06) / 2, 0)))
        elif arms == "swept":
            pts = bezier([(x, seat_h + ah * 0.9, -d / 2 + 0.04), (x, seat_h + ah * 1.2, d * 0.2), (x, seat_h + ah, d / 2),
                          (x, seat_h, d / 2 - 0.04)], 7)
            prims += sweep(P["arm"], pts, np.linspace(0.022, 0.016, 7))
    if arms == "panel":    # armchair: the side panels carry the seat on short legs
        prims = [p for p in prims if p.part != P["leg"]] + _legs4(P, P["leg"], w + 0.1, d, 0.07, "tapered", U, 0.03)
        legs = "short"
    return prims, f"{seat}-seat+{back}-back+{legs}+{arms}-arms"


@maker("airplane", "rich")
def make_airplane_rich(rng):
    """Airliners, business jets, fighter jets, single- and twin-propeller planes: tapered fuselage, swept
    and tapered wing panels, conventional / T / twin / V tails."""
    P = parts_of("airplane")
    U = rng.uniform
    kind = _pick(rng, ["airliner", "bizjet", "fighter", "prop", "twin-prop"])
    L = U(1.0, 1.4)
    r = U(0.05, 0.08) if kind != "fighter" else U(0.04, 0.06)
    nose = L / 2
    # fuselage: round cones nose -> body -> tail cone (tail raised)
    body = [(0, 0, nose), (0, 0, nose - U(0.08, 0.18)), (0, 0, -L * 0.2), (0, r * 0.6, -L / 2)]
    radii = [r * 0.25, r, r, r * 0.3] if kind != "fighter" else [r * 0.1, r * 0.8, r, r * 0.8]
    prims = sweep(P["body"], np.array(body, float), radii)
    if kind == "fighter":
        span, root_c, tip_c, sweep_a, wy = U(0.5, 0.8), U(0.4, 0.6), U(0.04, 0.12), U(0.5, 0.9), 0.0
    elif kind in ("prop", "twin-prop"):
        span, root_c, tip_c, sweep_a, wy = U(1.0, 1.5), U(0.16, 0.24), U(0.1, 0.18), U(0.0, 0.08), _pick(rng, [-0.6, 0.7]) * r
    else:
        span, root_c, tip_c, sweep_a, wy = U(0.9, 1.4), U(0.22, 0.32), U(0.06, 0.12), U(0.35, 0.6), -0.5 * r
    wz = U(0.05, 0.15) if kind != "fighter" else U(-0.05, 0.1)
    dihedral = U(0.0, 0.1)
    for side in (-1, 1):
        prims.append(wing_panel(P["wing"], (0, wy, wz + root_c / 2), root_c, tip_c, span / 2, sweep_a, 0.036, dihedral, side))
    tail = _pick(rng, ["conventional", "t-tail", "twin", "v-tail"] if kind == "fighter" else ["conventional", "t-tail"])
    tz = -L / 2 + 0.16
    fin_h, fin_c = U(0.15, 0.25), U(0.12, 0.2)
    if tail == "twin":
        for side in (-1, 1):
            prims.append(wing_panel(P["tail"], (side * r * 0.8, r * 0.5, tz + fin_c), fin_c, fin_c * 0.5, fin_h, 0.5, 0.03,
                                    np.pi / 2 - 0.25, side))
    elif tail == "v-tail":
        for side in (-1, 1):
            prims.append(wing_panel(P["tail"], (0, r * 0.6, tz + fin_c), fin_c, fin_c * 0.5, fin_h, 0.5, 0.03, 0.7, side))
    else:
        prims.append(wing_panel(P["tail"], (0, r * 0.5, tz + fin_c), fin_c, fin_c * 0.55, fin_h, 0.6, 0.03, np.pi / 2, 1))
    if tail != "v-tail":
        sy = r * 0.5 if tail != "t-tail" else r * 0.5 + fin_h * 0.95
        sz = tz + fin_c * 0.8 - (np.tan(0.6) * fin_h if tail == "t-tail" else 0)
        for side in (-1, 1):
            prims.append(wing_panel(P["tail"], (0, sy, sz), fin_c * 0.9, fin_c * 0.45, U(0.15, 0.25), 0.4, 0.028, 0.0, side))
    engines = 0
    if kind == "airliner":
        engines = _pick(rng, [2, 4])
        er, el = U(0.04, 0.06), U(0.15, 0.22)
        for k, x in enumerate([span * 0.18, span * 0.34][:engines // 2]):
            for side in (-1, 1):
                z = wz + root_c / 2 - np.tan(sweep_a) * x + 0.08
                prims.append(cylinder_between(P["engine"], (side * x, wy - er - 0.01, z - el / 2 + 0.06),
                                              (side * x, wy - er - 0.01, z + el / 2 + 0.06), er, rounding=0.012))
    elif kind == "bizjet":   # engines on the rear fuselage
        engines = 2
        for side in (-1, 1):
            prims.append(cylinder_between(P["engine"], (side * (r + 0.05), r * 0.7, -L * 0.3), (side * (r + 0.05), r * 0.7, -L * 0.14),
                                          0.045, rounding=0.012))
            prims.append(Box(P["engine"], (0.03, 0.012, 0.05), center=(side * (r + 0.02), r * 0.7, -L * 0.22)))
    elif kind == "fighter":  # the jet nozzle at the back
        engines = 1
        prims.append(Cone(P["engine"], r * 0.7, r * 0.9, 0.05, center=(0, r * 0.6, -L / 2 - 0.04), rot=ROT_X90))
    else:
        nprop = 1 if kind == "prop" else 2
        engines = nprop
        hubs = [np.array([0, 0, nose + 0.02])] if nprop == 1 else \
            [np.array([s * span * 0.2, wy, wz + root_c / 2 + 0.12]) for s in (-1, 1)]
        blades = _pick(rng, [2, 3, 4])
        for hub in hubs:
            if nprop == 2:   # nacelle
                prims.append(RoundCone(P["engine"], hub - (0, 0, 0.25), hub, 0.035, 0.045))
            prims.append(Cone(P["engine"], 0.045, 0.0, 0.035, center=hub + (0, 0, 0.035), rot=ROT_X90))
            bl = U(0.07, 0.11)
            for k in range(blades):
                a = 2 * np.pi * k / blades + U(0, 1)
                rz = rotation("z", a)
                prims.append(Box(P["engine"], (0.02, bl, 0.014), center=hub + rz @ (0, bl, 0), rot=rz @ rotation("y", 0.4),
                                 radius=0.004))
    return prims, f"{kind}+{tail}+{engines}engines"


@maker("table", "rich")
def make_table_rich(rng):
    """Tables and desks: 5 tops x 8 supports, with optional shelves and aprons."""
    P = parts_of("table")
    U = rng.uniform
    h, t = U(0.6, 0.8), U(0.025, 0.06)
    top = _pick(rng, ["rect", "bevel", "round", "oval", "thin"])
    if top in ("round", "oval"):
        rx = U(0.4, 0.6)
        rz = rx if top == "round" else rx * U(0.55, 0.75)
        w, d = 2 * rx, 2 * rz
        slab = Clipped(Ellipsoid(P["desktop"], (rx, t * 4, rz), center=(0, h - t / 2, 0)),
                       [((0, 1, 0), (0, h, 0)), ((0, -1, 0), (0, h - t, 0))])
    else:
        w, d = U(0.8, 1.6), U(0.45, 0.9)
        if top == "bevel":
            slab = bevel_box(P["desktop"], (w / 2, t / 2, d / 2), U(0.008, 0.015), center=(0, h - t / 2, 0))
        else:
            t = U(0.02, 0.03) if top == "thin" else t
            slab = Box(P["desktop"], (w / 2, t / 2, d / 2), center=(0, h - t / 2, 0), radius=0.006)
    prims = [slab]
    y0 = h - t
    round_top = top in ("round", "oval")
    support = _pick(rng, ["4legs", "4legs-tapered", "4legs-shelf", "pedestal", "pedestal-feet", "trestle", "panel",
                          "desk-drawers"] if not round_top else ["4legs", "4legs-tapered", "pedestal", "pedestal-feet", "tripod"])
    k = 0.36 if round_top else 0.5
    lw, ld = (w * k * 2 - 0.12), (d * k * 2 - 0.12)
    if support.startswith("4legs"):
        style = "tapered" if support == "4legs-tapered" else _pick(rng, ["straight", "square-tapered", "turned"])
        prims += _legs4(P, P["leg"], lw + 0.08, ld + 0.08, y0 + 0.005, style, U)
        if support == "4legs-shelf":    # a lower shelf between the legs
            prims.append(Box(P["support"], (lw / 2, U(0.012, 0.02), ld / 2), center=(0, U(0.1, 0.25), 0)))
        if not round_top and rng.random() < 0.6:    # apron rails under the top
            ah = U(0.04, 0.08)
            for sz in (-1, 1):
                prims.append(Box(P["support"], (lw / 2, ah / 2, 0.012), center=(0, y0 - ah / 2, sz * ld / 2)))
            for sx in (-1, 1):
                prims.append(Box(P["support"], (0.012, ah / 2, ld / 2), center=(sx * lw / 2, y0 - ah / 2, 0)))
            support += "+apron"
    elif support == "tripod":
        for a in 2 * np.pi * np.arange(3) / 3 + U(0, 1):
            foot = (0.42 * w * np.cos(a), 0, 0.42 * d * np.sin(a))
            prims.append(RoundCone(P["leg"], foot, (0.25 * w * np.cos(a), y0, 0.25 * d * np.sin(a)), 0.015, 0.028))
    elif support.startswith("pedestal"):
        col = U(0.04, 0.07)
        pts = np.array([(0, 0.02, 0), (0, y0 * 0.5, 0), (0, y0, 0)])
        prims += sweep(P["leg"], pts, [col * U(1.2, 1.8), col, col * U(1.0, 1.5)])
        if support == "pedestal":
            prims.append(Cylinder(P["support"], U(0.18, 0.3), 0.02, center=(0, 0.02, 0), rounding=0.01))
        else:
            n = _pick(rng, [3, 4])
            for a in 2 * np.pi * np.arange(n) / n + np.pi / 4:
                prims.append(RoundCone(P["support"], (0, 0.04, 0), (0.3 * np.cos(a), 0.015, 0.3 * np.sin(a)), 0.035, 0.015))
        if rng.random() < 0.5 and not round_top:
            prims.append(Box(P["support"], (min(w, 0.8) * 0.35, 0.02, min(d, 0.8) * 0.35), center=(0, y0 - 0.02, 0)))
    elif support == "trestle":
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.12)
            prims.append(tapered_box(P["leg"], (0.03, d * 0.38), (0.03, d * 0.12), y0 / 2, center=(x, y0 / 2, 0)))
        prims.append(Box(P["support"], (w / 2 - 0.12, 0.035, 0.02), center=(0, y0 * 0.35, 0)))
    elif support == "panel":   # waterfall sides
        for sx in (-1, 1):
            prims.append(Box(P["leg"], (U(0.015, 0.03), y0 / 2, d / 2 - 0.01), center=(sx * (w / 2 - 0.03), y0 / 2, 0)))
        if rng.random() < 0.5:
            prims.append(Box(P["support"], (w / 2 - 0.05, y0 * 0.3, 0.012), center=(0, y0 * 0.7, -d / 2 + 0.05)))
    else:   # desk with a drawer block on one side and a leg pair on the other
        side = _pick(rng, [-1, 1])
        bw = U(0.25, 0.4)
        prims.append(Box(P["support"], (bw / 2, y0 / 2, d / 2 - 0.02), center=(side * (w / 2 - bw / 2 - 0.01), y0 / 2, 0),
                         radius=0.005))
        for k3, y in enumerate(np.linspace(y0 * 0.2, y0 * 0.8, 3)):
            prims.append(Box(P["support"], (bw / 2 - 0.02, y0 / 8, 0.012), center=(side * (w / 2 - bw / 2 - 0.01), y, d / 2 - 0.012)))
        for sz in (-1, 1):
            prims.append(Box(P["leg"], (0.025, y0 / 2, 0.025), center=(-side * (w / 2 - 0.05), y0 / 2, sz * (d / 2 - 0.05))))
    return prims, f"{top}-top+{support}"


@maker("car", "rich")
def make_car_rich(rng):
    """Sedans, hatchbacks, coupes, SUVs, pickups, vans and buses with raked (tapered) cabins and bevelled bodies."""
    P = parts_of("car")
    U = rng.uniform
    kind = _pick(rng, ["sedan", "hatchback", "coupe", "suv", "pickup", "van", "bus"])
    L = U(1.6, 2.0) if kind != "bus" else U(2.4, 3.0)
    W = U(0.7, 0.85)
    H = {"suv": U(0.36, 0.45), "bus": U(0.5, 0.6), "coupe": U(0.22, 0.28)}.get(kind, U(0.28, 0.36))
    wr = U(0.14, 0.18) if kind not in ("suv", "pickup") else U(0.17, 0.21)
    body_y = wr * 0.9 + H / 2
    prims = [bevel_box(P["body"], (W / 2, H / 2, L / 2), U(0.04, 0.09), center=(0, body_y, 0))]
    top = body_y + H / 2
    if kind == "bus":
        cab_h = U(0.45, 0.6)
        z0, z1 = -L / 2 + 0.04, L / 2 - 0.06
    else:
        cab_h = {"van": U(0.4, 0.55), "suv": U(0.3, 0.4), "coupe": U(0.2, 0.26)}.get(kind, U(0.25, 0.35))
        z0, z1 = {"sedan": (-L * 0.3, L * 0.18), "hatchback": (-L / 2 + 0.06, L * 0.12), "coupe": (-L * 0.28, L * 0.1),
                  "suv": (-L / 2 + 0.06, L * 0.15), "pickup": (-L * 0.05, L * 0.22), "van": (-L / 2 + 0.04, L * 0.3)}[kind]
    rake = {"bus": 0.02, "van": 0.12}.get(kind, U(0.15, 0.3)) * (z1 - z0)
    back_rake = 0.02 if kind in ("hatchback", "suv", "van", "bus") else U(0.1, 0.25) * (z1 - z0)
    zc = (z0 + z1) / 2
    half = (z1 - z0) / 2
    cabin = Polyhedron(P["roof"], [(sx * W / 2 * 0.94, top - 0.03, z) for sx in (-1, 1) for z in (z0, z1)] +
                       [(sx * W / 2 * U(0.78, 0.88), top + cab_h - 0.03, z) for sx in (-1, 1)
                        for z in (zc - half + back_rake, zc + half - rake)])
    prims.append(cabin)
    hood_len = L / 2 - z1 - 0.03
    if hood_len > 0.08:
        prims.append(Box(P["hood"], (W / 2 * 0.9, 0.025, hood_len / 2), center=(0, top, z1 + hood_len / 2 + 0.01), radius=0.02))
    if kind == "pickup":
        prims.append(Difference(Box(P["body"], (W / 2, 0.12, L * 0.22), center=(0, top + 0.08, -L * 0.27), radius=0.02),
                                Box(P["body"], (W / 2 - 0.04, 0.2, L * 0.22 - 0.04), center=(0, top + 0.2, -L * 0.27))))
    axles = [L * 0.32, -L * 0.32]
    if kind == "bus" or (kind == "pickup" and rng.random() < 0.5):
        axles.append(-L * 0.18)
    for z in axles:
        for side in (-1, 1):
            prims.append(Cylinder(P["wheel"], wr, U(0.06, 0.08), center=(side * (W / 2 - 0.03), wr, z), rot=ROT_Z90, rounding=0.02))
    return prims, f"{kind}+{len(axles) * 2}wheels"


@maker("lamp", "rich")
def make_lamp_rich(rng):
    """The basic lamps plus swept (gooseneck) arms, tripod floor lamps and tapered bases."""
    P = parts_of("lamp")
    U = rng.uniform
    kind = _pick(rng, ["basic", "gooseneck", "tripod", "bulb-base"], p=[0.4, 0.2, 0.2, 0.2])
    if kind == "basic":
        prims, variant = BASIC["lamp"](rng)
        return prims, variant
    prims = []
    if kind == "tripod":
        h = U(1.0, 1.4)
        for a in 2 * np.pi * np.arange(3) / 3:
            prims.append(RoundCone(P["tube"], (0.3 * np.cos(a), 0, 0.3 * np.sin(a)), (0, h * 0.7, 0), 0.015, 0.02))
        prims.append(Cylinder(P["base"], 0.04, 0.03, center=(0, h * 0.7, 0)))
        prims.append(Capsule(P["tube"], (0, h * 0.7, 0), (0, h - 0.1, 0), 0.018))
        r = U(0.18, 0.26)
        prims.append(Cone(P["lampshade"], r, r * U(0.6, 0.9), U(0.1, 0.16), center=(0, h, 0)))
        return prims, "tripod"
    base_r, base_h = U(0.1, 0.18), U(0.03, 0.06)
    if kind == "bulb-base":   # table lamp with a turned (swept) body
        prims.append(Cylinder(P["base"], base_r, base_h / 2, center=(0, base_h / 2, 0), rounding=0.01))
        h = U(0.3, 0.45)
        pts = np.array([(0, base_h, 0), (0, h * 0.35, 0), (0, h * 0.75, 0), (0, h, 0)])
        prims += sweep(P["base"], pts, [base_r * 0.5, base_r * U(0.8, 1.2), base_r * 0.35, 0.02])
        r = U(0.14, 0.22)
        shade = _pick(rng, ["drum", "cone"])
        prims.append(Cylinder(P["lampshade"], r, U(0.08, 0.12), center=(0, h + 0.08, 0)) if shade == "drum"
                     else Cone(P["lampshade"], r, r * 0.6, U(0.08, 0.12), center=(0, h + 0.08, 0)))
        return prims, f"bulb-base-{shade}"
    prims.append(tapered_box(P["base"], (base_r, base_r * 0.8), (base_r * 0.6, base_r * 0.5), base_h / 2, center=(0, base_h / 2, 0)))
    h = U(0.35, 0.5)
    pts = bezier([(0, base_h, 0), (0, h, 0), (0, h * 1.2, h * 0.5), (0, h * 0.9, h * U(0.6, 0.8))], 8)
    prims += sweep(P["tube"], pts, 0.014)
    r = U(0.06, 0.09)
    prims.append(Cone(P["lampshade"], r, r * 0.3, U(0.05, 0.08), center=pts[-1] + (0, -0.04, 0.02), rot=rotation("x", 0.3)))
    return prims, "gooseneck"


@maker("rocket", "rich")
def make_rocket_rich(rng):
    """Rockets with tapered stages, swept fins (wing panels) and strap-on boosters."""
    P = parts_of("rocket")
    U = rng.uniform
    r, h = U(0.07, 0.12), U(0.8, 1.2)
    stages = _pick(rng, [1, 2, 3])
    ys = np.linspace(0, h, stages + 1)
    rad = r
    prims = []
    for k in range(stages):
        r_top = rad * (U(0.7, 0.95) if k < stages - 1 else 1.0)
        prims.append(Cone(P["body"], rad, r_top, (ys[k + 1] - ys[k]) / 2, center=(0, (ys[k] + ys[k + 1]) / 2, 0)))
        rad = r_top
    nose = _pick(rng, ["cone", "ogive", "capsule"])
    nh = U(0.2, 0.35)
    if nose == "cone":
        prims.append(Cone(P["nose"], rad, 0.0, nh / 2, center=(0, h + nh / 2, 0)))
    elif nose == "ogive":
        prims.append(Clipped(Ellipsoid(P["nose"], (rad, nh, rad), center=(0, h, 0)), [((0, -1, 0), (0, h, 0))]))
    else:
        prims.append(RoundCone(P["nose"], (0, h + rad * 0.5, 0), (0, h + nh, 0), rad, rad * 0.3))
    fins = _pick(rng, [3, 4, 6])
    fl, fc = U(0.12, 0.22), U(0.15, 0.3)
    swept_back = U(0.2, 0.7)
    for k in range(fins):
        a = 2 * np.pi * k / fins
        out = np.array([np.cos(a), 0.0, np.sin(a)])
        root = out * r * 0.9 + (0, fc, 0)
        # a fin: a wing panel in the plane (out, y); chord runs down the body
        pts = [root, root - (0, fc, 0), root + out * fl - (0, fc * swept_back, 0), root + out * fl - (0, fc * (swept_back + 0.4), 0)]
        n = np.cross(out, (0, 1, 0)) * 0.01
        prims.append(Polyhedron(P["fin"], [q + s * n for q in pts for s in (-1, 1)]))
    boosters = _pick(rng, [0, 2, 4], p=[0.5, 0.3, 0.2])
    for k in range(boosters):
        a = 2 * np.pi * k / boosters
        c = np.array([np.cos(a), 0, np.sin(a)]) * (r + 0.045)
        prims.append(Cylinder(P["body"], 0.045, h * 0.3, center=c + (0, h * 0.3, 0)))
        prims.append(Cone(P["nose"], 0.045, 0.0, 0.05, center=c + (0, h * 0.6 + 0.05, 0)))
    return prims, f"{stages}stage+{nose}+{fins}fins+{boosters}boosters"


# ------------------------------------------------------------------ the ONet classes outside ShapeNet-Part
# One grammar per category; `rich` unlocks more structural variants and the swept/tapered/bevelled parts.

def _extra(name):
    """Register one grammar fn(rng, rich) as both the basic and the rich maker of an extra category."""
    def register(fn):
        maker(name)(lambda rng: fn(rng, False))
        maker(name, "rich")(lambda rng: fn(rng, True))
        return fn
    return register


def _slab(part, half, center, rich, rng, radius=0.01):
    """A box, or in the rich variety sometimes a bevelled one."""
    if rich and rng.random() < 0.5:
        return bevel_box(part, half, min(half) * 0.8 if min(half) < 0.02 else rng.uniform(0.01, 0.025), center=center)
    return Box(part, half, center=center, radius=radius)


@_extra("bench")
def make_bench(rng, rich=False):
    P = parts_of("bench")
    U = rng.uniform
    kinds = ["backless", "park", "slab-legs"] + (["slatted-park", "picnic", "storage", "curved-backless"] if rich else [])
    kind = _pick(rng, kinds)
    L, d, sh = U(1.2, 1.9), U(0.32, 0.48), U(0.4, 0.48)
    t = U(0.04, 0.07)
    prims = []
    if kind in ("slatted-park", "picnic"):
        n = int(rng.integers(3, 6))
        gap = U(0.01, 0.025)
        sw = (d - gap * (n - 1)) / n
        for k in range(n):
            prims.append(Box(P["seat"], (L / 2, 0.018, sw / 2), center=(0, sh, -d / 2 + sw / 2 + k * (sw + gap)), radius=0.005))
        t = 0.036
    elif kind == "curved-backless":
        pts = bezier([(-L / 2, sh - 0.06, 0), (-L / 6, sh + 0.02, 0), (L / 6, sh + 0.02, 0), (L / 2, sh - 0.06, 0)], 6)
        for a, b in zip(pts[:-1], pts[1:]):
            c, v = (a + b) / 2, b - a
            prims.append(Box(P["seat"], (np.linalg.norm(v) / 2 + 0.01, t / 2, d / 2), center=c,
                             rot=rotation("z", np.arctan2(v[1], v[0]))))
    elif kind == "storage":
        prims.append(_slab(P["seat"], (L / 2, sh / 2, d / 2), (0, sh / 2, 0), True, rng))
    else:
        prims.append(_slab(P["seat"], (L / 2, t / 2, d / 2), (0, sh, 0), rich, rng))
    y0 = sh - t / 2
    if kind in ("slab-legs", "curved-backless"):
        for sx in (-1, 1):
            x = sx * (L / 2 - U(0.05, 0.15))
            leg = (tapered_box(P["leg"], (0.03, d * 0.45), (0.03, d * 0.35), y0 / 2, center=(x, y0 / 2, 0)) if rich
                   else Box(P["leg"], (0.03, y0 / 2, d * 0.42), center=(x, y0 / 2, 0)))
            prims.append(leg)
    elif kind == "picnic":   # A-frame legs
        for sx in (-1, 1):
            x = sx * (L / 2 - 0.15)
            for sz in (-1, 1):
                prims.append(cylinder_between(P["leg"], (x, 0, sz * d * 0.55), (x, y0, 0), 0.022))
            prims.append(Box(P["leg"], (0.02, 0.025, d * 0.45), center=(x, y0 - 0.03, 0)))
    elif kind != "storage":
        nleg = 4 if L < 1.5 or not rich else 6
        xs = np.linspace(-L / 2 + 0.07, L / 2 - 0.07, nleg // 2)
        style = _pick(rng, ["straight", "tapered", "square-tapered"]) if rich else "straight"
        for x in xs:
            for sz in (-1, 1):
                z = sz * (d / 2 - 0.05)
                if style == "tapered":
                    prims.append(RoundCone(P["leg"], (x, 0, z), (x, y0 + 0.01, z), 0.014, 0.026))
                elif style == "square-tapered":
                    prims.append(tapered_box(P["leg"], (0.014, 0.014), (0.025, 0.025), (y0 + 0.01) / 2, center=(x, (y0 + 0.01) / 2, z)))
                else:
                    prims.append(Box(P["leg"], (0.025, (y0 + 0.01) / 2, 0.025), center=(x, (y0 + 0.01) / 2, z)))
    has_back = kind in ("park", "slatted-park", "storage")
    if has_back:
        bh, tilt = U(0.3, 0.45), U(0.1, 0.3)
        rot = rotation("x", -tilt)
        up = rot @ np.array([0, 1.0, 0])
        base = np.array([0, sh + t / 2, -d / 2 + 0.03])
        if kind == "slatted-park":
            n = int(rng.integers(2, 5))
            for y in np.linspace(bh * 0.25, bh - 0.04, n):
                prims.append(Box(P["back"], (L / 2, 0.035, 0.016), center=base + up * y, rot=rot, radius=0.005))
            for x in np.linspace(-L / 2 + 0.07, L / 2 - 0.07, 2 if L < 1.5 else 3):
                prims.append(Box(P["back"], (0.025, bh / 2, 0.02), center=base + up * bh / 2 + (x, 0, -0.01), rot=rot))
        else:
            prims.append(Box(P["back"], (L / 2, bh / 2, 0.025), center=base + up * bh / 2, rot=rot, radius=0.01))
    arms = has_back and rich and rng.random() < 0.5
    if arms:
        ah = U(0.18, 0.25)
        for sx in (-1, 1):
            x = sx * (L / 2 - 0.02)
            pts = bezier([(x, sh, d / 2 - 0.04), (x, sh + ah * 1.1, d / 2), (x, sh + ah, -d / 4), (x, sh + ah * 0.9, -d / 2 + 0.02)], 6)
            prims += sweep(P["arm"], pts, 0.02)
    return prims, kind + ("+arms" if arms else "")


@_extra("cabinet")
def make_cabinet(rng, rich=False):
    P = parts_of("cabinet")
    U = rng.uniform
    kinds = ["doors", "drawers", "bookcase"] + (["sideboard", "wardrobe", "glass-top", "nightstand"] if rich else [])
    kind = _pick(rng, kinds)
    w, h, d = {"wardrobe": (U(0.8, 1.2), U(1.6, 2.0), U(0.5, 0.6)), "sideboard": (U(1.3, 1.8), U(0.6, 0.8), U(0.4, 0.5)),
               "nightstand": (U(0.4, 0.5), U(0.45, 0.6), U(0.35, 0.45))}.get(kind, (U(0.6, 1.0), U(0.7, 1.5), U(0.35, 0.55)))
    legs = rich and kind != "wardrobe" and rng.random() < 0.5
    y_base = U(0.08, 0.16) if legs else 0.0
    hh = (h - y_base) / 2
    cy = y_base + hh
    if kind in ("bookcase", "glass-top"):
        wall = U(0.02, 0.035)
        body = Difference(Box(P["body"], (w / 2, hh, d / 2), center=(0, cy, 0)),
                          Box(P["body"], (w / 2 - wall, hh - wall, d / 2), center=(0, cy, wall)))
        prims = [body]
        top = y_base + h * (0.45 if kind == "glass-top" else 1.0)
        n = int(rng.integers(2, 6 if rich else 4))
        for y in np.linspace(y_base + wall, top - wall, n + 1)[1:-1]:
            prims.append(Box(P["shelf"], (w / 2 - wall, U(0.01, 0.015), d / 2 - wall), center=(0, y, wall / 2)))
        if kind == "glass-top":     # doors on the lower part
            prims.append(Box(P["shelf"], (w / 2 - wall, 0.012, d / 2 - wall), center=(0, top, wall / 2)))
            for sx in (-1, 1):
                prims.append(Box(P["door"], (w / 4 - 0.01, (top - y_base) / 2 - 0.02, 0.012), center=(sx * w / 4, (top + y_base) / 2, d / 2 + 0.008)))
        variant = f"{kind}+{n}shelves"
    else:
        prims = [_slab(P["body"], (w / 2, hh, d / 2), (0, cy, 0), rich, rng, radius=0.008)]
        if rich and rng.random() < 0.5:   # an overhanging top
            prims.append(bevel_box(P["body"], (w / 2 + 0.02, 0.02, d / 2 + 0.02), 0.01, center=(0, h + 0.015, 0)))
        ft = 0.012
        nd = {"drawers": int(rng.integers(3, 6)), "nightstand": int(rng.integers(1, 3)),
              "sideboard": int(rng.integers(0, 2))}.get(kind, 0)
        ytop = y_base + h - 0.03
        ydr = ytop - (nd * (h - 0.06) / max(nd, 3) if kind != "drawers" else h - 0.06)
        for k in range(nd):
            y0 = ydr + (ytop - ydr) * k / nd
            y1 = ydr + (ytop - ydr) * (k + 1) / nd
            prims.append(Box(P["drawer"], (w / 2 - 0.03, (y1 - y0) / 2 - 0.01, ft), center=(0, (y0 + y1) / 2, d / 2 + ft * 0.6), radius=0.004))
            prims.append(Box(P["drawer"], (0.05, 0.012, 0.014), center=(0, (y0 + y1) / 2, d / 2 + 2 * ft), radius=0.005))
        ndoor = {"doors": _pick(rng, [1, 2]), "wardrobe": 2, "sideboard": _pick(rng, [2, 3, 4]), "nightstand": 1}.get(kind, 0)
        if ndoor:
            y0, y1 = y_base + 0.03, (ydr if nd else ytop)
            dw = (w - 0.06) / ndoor
            for k in range(ndoor):
                x = -w / 2 + 0.03 + dw * (k + 0.5)
                prims.append(Box(P["door"], (dw / 2 - 0.008, (y1 - y0) / 2 - 0.005, ft), center=(x, (y0 + y1) / 2, d / 2 + ft * 0.6), radius=0.004))
                kx = x + (dw / 2 - 0.05) * (1 if k % 2 == 0 else -1)
                prims.append(Capsule(P["door"], (kx, (y0 + y1) / 2 - 0.06, d / 2 + 2 * ft), (kx, (y0 + y1) / 2 + 0.06, d / 2 + 2 * ft), 0.012))
        variant = f"{kind}+{nd}drawers+{ndoor}doors"
    if legs:
        style = _pick(rng, ["tapered", "square-tapered", "straight"])
        prims += _legs4(P, P["leg"], w, d, y_base + 0.01, style, U, inset=0.05)
        variant += f"+{style}-legs"
    return prims, variant


@_extra("display")
def make_display(rng, rich=False):
    P = parts_of("display")
    U = rng.uniform
    kinds = ["monitor", "crt", "tv-feet"] + (["curved", "wall", "arm-mount", "all-in-one"] if rich else [])
    kind = _pick(rng, kinds)
    prims = []
    if kind == "crt":
        s = U(0.5, 0.7)
        w, h = s * U(1.1, 1.35), s
        depth = U(0.45, 0.7) * s
        cy = h / 2 + 0.05
        prims.append(Box(P["frame"], (w / 2, h / 2, 0.06), center=(0, cy, 0), radius=0.02))
        prims.append(tapered_box(P["frame"], (w * 0.45, h * 0.45), (w * 0.28, h * 0.28), depth / 2, center=(0, cy, -depth / 2),
                                 rot=ROT_X90.T))
        prims.append(Box(P["screen"], (w / 2 - 0.05, h / 2 - 0.05, 0.015), center=(0, cy, 0.065), radius=0.02))
        prims.append(Box(P["base"], (w * 0.3, 0.025, depth * 0.35), center=(0, 0.025, -depth * 0.3), radius=0.01))
        return prims, kind
    w = U(0.9, 1.4)
    h = w * U(0.5, 0.65)
    bez, pt = U(0.015, 0.04), U(0.025, 0.05)
    housing = ""
    stand_h = U(0.1, 0.25)
    cy = stand_h + h / 2 + 0.05 if kind not in ("wall",) else h / 2
    if kind == "curved":
        R = U(1.2, 2.5) * w
        ang = 2 * np.arcsin(min(0.95, w / 2 / R))
        prims.append(shell_arc(P["frame"], R, pt, h / 2, ang, center=(0, cy, -R + pt)))
        prims.append(shell_arc(P["screen"], R + 0.012, 0.014, h / 2 - bez, ang * (1 - 2 * bez / w), center=(0, cy, -R + pt)))
    else:
        back = kind == "all-in-one" or (rich and rng.random() < 0.4)
        prims.append(Box(P["frame"], (w / 2, h / 2, pt / 2), center=(0, cy, 0), radius=0.008))
        prims.append(Box(P["screen"], (w / 2 - bez, h / 2 - bez, 0.008), center=(0, cy, pt / 2), radius=0.004))
        if back:    # a tapered housing on the back
            bd = U(0.04, 0.1)
            prims.append(tapered_box(P["frame"], (w * 0.4, h * 0.4), (w * 0.25, h * 0.25), bd / 2, center=(0, cy, -pt / 2 - bd / 2 + 0.005),
                                     rot=ROT_X90.T))
            housing = "+housing" if kind != "all-in-one" else ""
    if kind in ("monitor", "curved", "all-in-one"):
        base = _pick(rng, ["rect", "round", "v"]) if rich else "rect"
        neck_top = np.array([0, cy - h * 0.2, -pt / 2 - 0.03])
        neck_bot = np.array([0, 0.03, -U(0.05, 0.15)])
        prims.append(RoundCone(P["stand"], neck_bot, neck_top, 0.03, 0.025) if rich else
                     Box(P["stand"], (0.04, (neck_top[1] - neck_bot[1]) / 2, 0.015), center=(neck_top + neck_bot) / 2,
                         rot=_frame_from_y(neck_top - neck_bot)))
        if base == "round":
            prims.append(Cylinder(P["base"], U(0.15, 0.22), 0.015, center=neck_bot - (0, 0.015, 0), rounding=0.008))
        elif base == "v":
            for sx in (-1, 1):
                prims.append(RoundCone(P["base"], neck_bot, neck_bot + (sx * 0.2, -0.02, 0.18), 0.03, 0.02))
        else:
            prims.append(Box(P["base"], (U(0.15, 0.25), 0.015, U(0.1, 0.15)), center=neck_bot - (0, 0.015, -0.03), radius=0.008))
        housing += f"+{base}-base" if rich else ""
    elif kind == "tv-feet":
        for sx in (-1, 1):
            x = sx * w * U(0.3, 0.45)
            prims.append(Box(P["stand"], (0.015, (cy - h / 2) / 2 + 0.01, 0.015), center=(x, (cy - h / 2) / 2, 0)))
            prims.append(Box(P["base"], (0.03, 0.012, 0.12), center=(x, 0.012, 0.0), radius=0.006))
    elif kind == "arm-mount":
        pts = np.array([(0, cy, -pt), (0, cy - 0.05, -0.25), (0, 0.15, -0.35), (0, 0.0, -0.3)])
        prims += sweep(P["stand"], pts, [0.03, 0.025, 0.025, 0.03])
        prims.append(Box(P["base"], (0.06, 0.03, 0.08), center=(0, 0.0, -0.3), radius=0.01))
    else:   # wall mount plate
        prims.append(Box(P["stand"], (w * 0.2, h * 0.2, 0.02), center=(0, cy, -pt / 2 - 0.02)))
    return prims, kind + housing


@_extra("loudspeaker")
def make_loudspeaker(rng, rich=False):
    P = parts_of("loudspeaker")
    U = rng.uniform
    kinds = ["bookshelf", "tower", "cylinder"] + (["on-stand", "subwoofer", "tapered-tower", "soundbar", "horn"] if rich else [])
    kind = _pick(rng, kinds)
    prims = []

    def driver(center, r, depth=0.02):
        c = np.asarray(center, float)
        return [Cylinder(P["driver"], r, depth, center=c, rot=ROT_X90, rounding=0.006),
                Sphere(P["driver"], r * 0.3, center=c + (0, 0, depth * 0.5))]
    if kind == "cylinder":
        r, h = U(0.18, 0.3), U(0.4, 0.8)
        prims.append(Cylinder(P["cabinet"], r, h / 2, center=(0, h / 2, 0), rounding=U(0.01, 0.05)))
        prims.append(Cylinder(P["driver"], r * 0.8, 0.015, center=(0, h + 0.01, 0), rounding=0.005))
        return prims, kind
    if kind == "soundbar":
        w, h, d = U(1.0, 1.4), U(0.1, 0.16), U(0.1, 0.16)
        prims.append(bevel_box(P["cabinet"], (w / 2, h / 2, d / 2), 0.02, center=(0, h / 2, 0)))
        n = int(rng.integers(2, 6))
        for x in np.linspace(-w * 0.38, w * 0.38, n):
            prims += driver((x, h / 2, d / 2), h * 0.32, 0.012)
        return prims, f"{kind}+{n}drivers"
    w = U(0.3, 0.45) if kind != "subwoofer" else U(0.45, 0.6)
    d = U(0.25, 0.4) if kind != "subwoofer" else w
    h = {"tower": U(0.9, 1.2), "tapered-tower": U(0.9, 1.2), "subwoofer": w}.get(kind, U(0.45, 0.6))
    y0 = U(0.6, 0.75) if kind == "on-stand" else (U(0.03, 0.06) if rich and kind.endswith("tower") else 0.0)
    cy = y0 + h / 2
    if kind == "tapered-tower":
        prims.append(tapered_box(P["cabinet"], (w / 2, d / 2), (w * 0.35, d * 0.4), h / 2, center=(0, cy, 0)))
        front = lambda y: d / 2 - (d / 2 - d * 0.4) * (y - y0) / h  # noqa: E731
    else:
        prims.append(_slab(P["cabinet"], (w / 2, h / 2, d / 2), (0, cy, 0), rich, rng))
        front = lambda y: d / 2  # noqa: E731
    n = {"tower": int(rng.integers(2, 5)), "tapered-tower": 3, "subwoofer": 1}.get(kind, 2)
    if kind == "horn":
        n = 1
        prims.append(Cone(P["driver"], w * 0.08, w * 0.3, 0.05, center=(0, y0 + h * 0.72, d / 2 + 0.03), rot=ROT_X90))
    ys = np.linspace(y0 + h * 0.25, y0 + h * 0.8, n) if n > 1 else [y0 + h * (0.5 if kind == "subwoofer" else 0.35)]
    for k, y in enumerate(ys):
        r = w * (0.4 if kind == "subwoofer" else (0.3 if k == 0 else 0.18))
        if kind == "tapered-tower":
            r *= 1 - 0.35 * (y - y0) / h
        prims += driver((0, y, front(y)), r)
    if kind == "on-stand":
        prims.append(Box(P["stand"], (w * 0.4, 0.015, d * 0.4), center=(0, y0 - 0.015, 0)))
        prims.append(RoundCone(P["stand"], (0, 0.02, 0), (0, y0 - 0.02, 0), 0.05, 0.035))
        prims.append(Box(P["stand"], (w * 0.5, 0.02, d * 0.5), center=(0, 0.02, 0), radius=0.008))
    elif y0 > 0:
        for sx in (-1, 1):
            for sz in (-1, 1):
                prims.append(Cone(P["stand"], 0.005, 0.025, y0 / 2, center=(sx * w * 0.35, y0 / 2, sz * d * 0.35)))
    return prims, f"{kind}+{n}drivers"


@_extra("rifle")
def make_rifle(rng, rich=False):
    P = parts_of("rifle")
    U = rng.uniform
    kinds = ["bolt-action", "assault", "shotgun"] + (["sniper", "carbine", "double-barrel"] if rich else [])
    kind = _pick(rng, kinds)
    L = U(1.0, 1.3) * (1.25 if kind == "sniper" else 0.85 if kind == "carbine" else 1.0)
    br = U(0.012, 0.018)
    prims = []
    body_len = U(0.25, 0.35)
    prims.append(_slab(P["body"], (0.03, U(0.045, 0.06), body_len / 2), (0, 0.0, 0.05), rich, rng, radius=0.01))
    front = 0.05 + body_len / 2
    bl = L * U(0.4, 0.5)
    if kind == "double-barrel":
        for sx in (-1, 1):
            prims.append(cylinder_between(P["barrel"], (sx * br, 0.02, front - 0.02), (sx * br, 0.02, front + bl), br))
    elif rich:
        prims.append(RoundCone(P["barrel"], (0, 0.02, front - 0.02), (0, 0.02, front + bl), br * 1.5, br))
    else:
        prims.append(cylinder_between(P["barrel"], (0, 0.02, front - 0.02), (0, 0.02, front + bl), br))
    if kind in ("bolt-action", "sniper", "shotgun", "double-barrel"):   # wooden forestock under the barrel
        prims.append(Box(P["stock"], (0.025, 0.03, bl * 0.3), center=(0, -0.015, front + bl * 0.25), radius=0.01))
    if kind == "shotgun":
        prims.append(Capsule(P["barrel"], (0, -0.02, front + 0.05), (0, -0.02, front + bl * 0.8), br * 1.1))
    back = 0.05 - body_len / 2
    sl = L * U(0.28, 0.36)
    stock_style = _pick(rng, ["solid", "skeleton", "tapered"]) if rich else "solid"
    if stock_style == "tapered" or kind in ("bolt-action", "sniper", "double-barrel") and rich:
        prims.append(Polyhedron(P["stock"], [(sx * 0.03, y, z) for sx in (-1, 1) for y, z in
                                             [(0.04, back + 0.02), (-0.05, back + 0.02), (0.03, back - sl), (-0.12, back - sl)]]))
        stock_style = "tapered"
    elif stock_style == "skeleton":
        pts = np.array([(0, 0.03, back), (0, 0.03, back - sl), (0, -0.1, back - sl), (0, -0.04, back)])
        prims += sweep(P["stock"], np.vstack([pts, pts[:1]]), 0.015)
    else:
        drop = 0.0 if kind in ("assault", "carbine") else 0.03
        prims.append(Box(P["stock"], (0.028, 0.05, sl / 2), center=(0, -0.02 - drop, back - sl / 2 + 0.01),
                         rot=rotation("x", -0.12 if drop else 0.0), radius=0.012))
    if kind in ("assault", "carbine", "sniper"):   # pistol grip and magazine
        prims.append(Box(P["body"], (0.022, 0.06, 0.025), center=(0, -0.09, back + 0.05), rot=rotation("x", 0.35), radius=0.01))
        if kind != "sniper":
            if rich:   # a curved magazine: boxes along an arc
                for k in range(4):
                    a = 0.15 * k
                    c = np.array([0, -0.07 - 0.045 * k, 0.12 + 0.02 * k * k * 0.5])
                    prims.append(Box(P["magazine"], (0.018, 0.028, 0.03), center=c, rot=rotation("x", a)))
            else:
                prims.append(Box(P["magazine"], (0.018, 0.08, 0.03), center=(0, -0.12, 0.12), rot=rotation("x", 0.2)))
    else:
        prims.append(Box(P["body"], (0.02, 0.05, 0.02), center=(0, -0.08, back + 0.06), rot=rotation("x", 0.4), radius=0.008))
        if kind == "bolt-action":
            prims.append(Box(P["magazine"], (0.018, 0.025, 0.04), center=(0, -0.07, 0.08), radius=0.006))
    scope = kind in ("sniper", "bolt-action") and (not rich or rng.random() < 0.8)
    if scope:
        sr = U(0.02, 0.03)
        prims.append(cylinder_between(P["scope"], (0, 0.1, -0.05), (0, 0.1, 0.2), sr))
        prims.append(Cone(P["scope"], sr, sr * 1.4, 0.03, center=(0, 0.1, 0.22), rot=ROT_X90))
        for z in (0.0, 0.15):
            prims.append(Box(P["scope"], (0.012, 0.03, 0.012), center=(0, 0.07, z)))
    if rich and kind == "sniper":   # bipod
        for sx in (-1, 1):
            prims.append(Capsule(P["barrel"], (0, 0.0, front + bl * 0.7), (sx * 0.08, -0.22, front + bl * 0.75), 0.01))
    return prims, f"{kind}+{stock_style}-stock" + ("+scope" if scope else "")


@_extra("sofa")
def make_sofa(rng, rich=False):
    P = parts_of("sofa")
    U = rng.uniform
    kinds = ["sofa", "loveseat", "armless"] + (["sectional", "chaise", "rolled-arm", "chesterfield"] if rich else [])
    kind = _pick(rng, kinds)
    seats = {"loveseat": 2, "sectional": 3}.get(kind, int(rng.integers(2, 4)) if kind != "armless" else int(rng.integers(1, 4)))
    cw = U(0.5, 0.65)
    W, D = seats * cw, U(0.75, 0.95)
    base_y, base_h = U(0.08, 0.15), U(0.18, 0.26)
    leg_y = base_y
    prims = [_slab(P["seat"], (W / 2, base_h / 2, D / 2), (0, base_y + base_h / 2, 0), rich, rng, radius=0.03)]
    top = base_y + base_h
    bh = U(0.35, 0.5)
    bt = U(0.15, 0.22)
    if rich and rng.random() < 0.4:
        prims.append(tapered_box(P["back"], (W / 2, bt / 2), (W / 2, bt * 0.35), bh / 2 + base_h / 2,
                                 center=(0, base_y + (base_h + bh) / 2, -D / 2 + bt / 2), top_shift=(0, -bt * 0.2)))
    else:
        prims.append(Box(P["back"], (W / 2, (bh + base_h) / 2, bt / 2), center=(0, base_y + (bh + base_h) / 2, -D / 2 + bt / 2), radius=0.04))
    cush_h = U(0.08, 0.14)
    cushions = kind != "chesterfield" and (not rich or rng.random() < 0.8)
    if cushions:
        cd = D - bt - 0.02
        for k in range(seats):
            x = -W / 2 + cw * (k + 0.5)
            prims.append(Box(P["cushion"], (cw / 2 - 0.01, cush_h / 2, cd / 2), center=(x, top + cush_h / 2 - 0.01, -D / 2 + bt + cd / 2),
                             radius=0.04))
            if rich and rng.random() < 0.5:   # back cushions
                prims.append(Box(P["cushion"], (cw / 2 - 0.02, bh * 0.38, 0.07), center=(x, top + cush_h + bh * 0.35, -D / 2 + bt + 0.06),
                                 rot=rotation("x", -0.15), radius=0.05))
    if kind == "sectional":   # the L: an extra seat block along +z on one side
        side = _pick(rng, [-1, 1])
        ext = U(0.6, 0.9)
        x = side * (W / 2 - cw / 2)
        prims.append(Box(P["seat"], (cw / 2, base_h / 2, ext / 2), center=(x, base_y + base_h / 2, D / 2 + ext / 2 - 0.02), radius=0.03))
        prims.append(Box(P["cushion"], (cw / 2 - 0.01, cush_h / 2, ext / 2), center=(x, top + cush_h / 2 - 0.01, D / 2 + ext / 2 - 0.02),
                         radius=0.04))
    if kind == "chaise":
        prims.append(Box(P["cushion"], (cw / 2, cush_h / 2, 0.35), center=(-W / 2 + cw / 2, top + cush_h / 2, D / 2 + 0.3), radius=0.04))
        prims.append(Box(P["seat"], (cw / 2, base_h / 2, 0.35), center=(-W / 2 + cw / 2, base_y + base_h / 2, D / 2 + 0.3), radius=0.03))
    arms = kind != "armless" and not (kind == "chaise" and rng.random() < 0.3)
    if arms:
        aw = U(0.1, 0.2)
        ah = U(0.15, 0.28)
        for sx in (-1, 1):
            x = sx * (W / 2 + aw / 2 - 0.01)
            prims.append(Box(P["arm"], (aw / 2, (base_h + ah) / 2, D / 2), center=(x, base_y + (base_h + ah) / 2, 0), radius=0.03))
            if kind in ("rolled-arm", "chesterfield"):   # a roll on top of the arm
                prims.append(Cylinder(P["arm"], aw * 0.75, D / 2, center=(x + sx * aw * 0.2, top + ah, 0), rot=ROT_X90, rounding=0.03))
        if kind == "chesterfield":   # back as high as the rolled arms, curving round
            pts = np.array([(-W / 2 - aw / 2, top + ah, -D / 2 + 0.1), (0, top + ah + 0.05, -D / 2 + 0.08), (W / 2 + aw / 2, top + ah, -D / 2 + 0.1)])
            prims += sweep(P["back"], pts, 0.1)
    style = _pick(rng, ["block", "tapered", "turned", "bun"]) if rich else "block"
    xs = (-W / 2 - (0.05 if arms else -0.05), W / 2 + (0.05 if arms else -0.05))
    for x in xs:
        for z in (-D / 2 + 0.06, D / 2 - 0.06):
            if style == "tapered":
                prims.append(RoundCone(P["leg"], (x, 0, z + 0.02 * np.sign(z)), (x, leg_y + 0.01, z), 0.012, 0.025))
            elif style == "turned":
                prims.append(Cone(P["leg"], 0.018, 0.03, (leg_y + 0.01) / 2, center=(x, (leg_y + 0.01) / 2, z)))
            elif style == "bun":
                prims.append(Ellipsoid(P["leg"], (0.04, (leg_y + 0.01) / 2, 0.04), center=(x, (leg_y + 0.01) / 2, z)))
            else:
                prims.append(Box(P["leg"], (0.025, (leg_y + 0.01) / 2, 0.025), center=(x, (leg_y + 0.01) / 2, z)))
    return prims, f"{kind}+{seats}seats" + ("" if arms else "+no-arms") + ("" if cushions else "+no-cushions") + (f"+{style}-legs" if rich else "")


@_extra("telephone")
def make_telephone(rng, rich=False):
    P = parts_of("telephone")
    U = rng.uniform
    kinds = ["smartphone", "desk-phone", "flip-phone"] + (["candybar", "cordless", "rotary", "phablet-bump"] if rich else [])
    kind = _pick(rng, kinds)
    prims = []
    if kind in ("smartphone", "phablet-bump"):
        h, w, t = U(0.9, 1.1), U(0.45, 0.55), U(0.05, 0.09)
        prims.append(Box(P["body"], (w / 2, h / 2, t / 2), center=(0, h / 2, 0), radius=U(0.02, 0.04)))
        prims.append(Box(P["screen"], (w / 2 - 0.03, h / 2 - U(0.03, 0.09), 0.01), center=(0, h / 2, t / 2 - 0.003), radius=0.01))
        if kind == "phablet-bump":
            prims.append(bevel_box(P["body"], (0.08, 0.1, 0.015), 0.008, center=(-w / 2 + 0.12, h - 0.15, -t / 2 - 0.01)))
            for k in range(2):
                prims.append(Cylinder(P["body"], 0.03, 0.015, center=(-w / 2 + 0.12, h - 0.1 - 0.1 * k, -t / 2 - 0.025), rot=ROT_X90))
        return prims, kind
    if kind in ("candybar", "flip-phone"):
        h, w, t = U(0.9, 1.1), U(0.4, 0.5), U(0.1, 0.16)
        if kind == "flip-phone":
            half = h / 2
            prims.append(Box(P["body"], (w / 2, half / 2, t / 4), center=(0, half / 2, 0), radius=0.02))
            a = U(2.4, 2.9)
            rot = rotation("x", -(np.pi - a))
            hinge = np.array([0, half, -t / 4])
            prims.append(Cylinder(P["body"], t / 4, w / 2 - 0.03, center=hinge, rot=ROT_Z90))
            prims.append(Box(P["body"], (w / 2, half / 2, t / 4), center=hinge + rot @ (0, half / 2, t / 4), rot=rot, radius=0.02))
            prims.append(Box(P["screen"], (w / 2 - 0.05, half / 2 - 0.06, 0.01), center=hinge + rot @ (0, half / 2, t / 2), rot=rot, radius=0.01))
            key_face, key_y0, key_y1 = t / 4, 0.05, half - 0.05
        else:
            prims.append(_slab(P["body"], (w / 2, h / 2, t / 2), (0, h / 2, 0), True, rng, radius=0.04))
            prims.append(Box(P["screen"], (w / 2 - 0.05, h * 0.18, 0.01), center=(0, h * 0.7, t / 2), radius=0.01))
            key_face, key_y0, key_y1 = t / 2, 0.08, h * 0.45
        for r in range(4):
            for c in range(3):
                y = key_y0 + (key_y1 - key_y0) * (r + 0.5) / 4
                prims.append(Box(P["keypad"], (w * 0.11, (key_y1 - key_y0) / 10, 0.012), center=((c - 1) * w * 0.3, y, key_face + 0.004),
                                 radius=0.008))
        return prims, kind
    # desk phones: a wedge base with keypad / dial, the handset lying on top
    w, d = U(0.7, 0.9), U(0.6, 0.8)
    hb, hf = U(0.2, 0.3), U(0.08, 0.12)
    if kind == "cordless":
        prims.append(bevel_box(P["body"], (w * 0.3, 0.05, d * 0.35), 0.02, center=(0, 0.05, 0)))
        hs = np.array([0, 0.1, -d * 0.2])
        prims.append(Box(P["handset"], (0.09, 0.4, 0.05), center=hs + (0, 0.38, 0), rot=rotation("x", -0.2), radius=0.04))
        prims.append(Box(P["keypad"], (0.06, 0.12, 0.01), center=hs + (0, 0.3, 0.06), rot=rotation("x", -0.2), radius=0.01))
        return prims, kind
    prims.append(Polyhedron(P["body"], [(sx * w / 2, y, z) for sx in (-1, 1) for y, z in
                                        [(0, -d / 2), (0, d / 2), (hb, -d / 2), (hf, d / 2)]]) if rich else
                 Box(P["body"], (w / 2, hb / 2, d / 2), center=(0, hb / 2, 0), radius=0.03))
    slope = np.arctan2(hb - hf, d) if rich else 0.0
    face = rotation("x", slope)
    mid = np.array([0, (hb + hf) / 2 if rich else hb, d * 0.15])
    if kind == "rotary":
        prims.append(Torus(P["keypad"], 0.14, 0.025, center=mid + (0, 0.02, 0), rot=face))
        prims.append(Cylinder(P["keypad"], 0.06, 0.015, center=mid + (0, 0.02, 0), rot=face))
    else:
        for r in range(4):
            for c in range(3):
                prims.append(Box(P["keypad"], (0.035, 0.012, 0.025), center=mid + face @ ((c - 1) * 0.1, 0.01, (r - 1.5) * 0.075), rot=face,
                                 radius=0.006))
    # handset on top of the back: two ear/mouth pieces joined by a (swept, in rich) grip
    hy = hb + 0.06
    ends = [np.array([-w * 0.42, hy, -d * 0.32]), np.array([w * 0.42, hy, -d * 0.32])]
    if rich:
        prims += sweep(P["handset"], bezier([ends[0], (0, hy + 0.12, -d * 0.32), ends[1]], 6), 0.035)
    else:
        prims.append(Capsule(P["handset"], ends[0], ends[1], 0.035))
    for e in ends:
        prims.append(Ellipsoid(P["handset"], (0.08, 0.05, 0.1), center=e + (0, -0.01, 0)))
    return prims, kind


@_extra("watercraft")
def make_watercraft(rng, rich=False):
    P = parts_of("watercraft")
    U = rng.uniform
    kinds = ["sailboat", "motorboat", "ship"] + (["catamaran", "canoe", "submarine", "yacht", "container-ship"] if rich else [])
    kind = _pick(rng, kinds)
    prims = []

    def hull(L, B, depth, z0=0.0, x0=0.0, bow=0.3, keel=0.35):
        """Convex hull: deck outline (pointed bow at +z, transom at -z) over a narrower keel line."""
        top = [(x0 + sx * B / 2, 0, z0 + z) for sx in (-1, 1) for z in (-L / 2, L / 2 - L * bow)] + [(x0, 0, z0 + L / 2)]
        bot = [(x0 + sx * B * keel / 2, -depth, z0 + z) for sx in (-1, 1) for z in (-L / 2 + 0.04, L / 2 - L * bow)] + \
              [(x0, -depth * 0.6, z0 + L / 2 - L * 0.05)]
        return Polyhedron(P["hull"], top + bot)
    if kind == "submarine":
        L, r = U(1.4, 1.8), U(0.08, 0.12)
        prims += sweep(P["hull"], np.array([(0, 0, L / 2), (0, 0, L * 0.3), (0, 0, -L * 0.25), (0, 0, -L / 2)]),
                       [r * 0.4, r, r, r * 0.2])
        prims.append(bevel_box(P["cabin"], (0.03, 0.08, 0.12), 0.015, center=(0, r + 0.06, L * 0.15)))
        prims.append(Box(P["deck"], (r * 0.5, 0.012, L * 0.3), center=(0, r * 0.95, 0)))
        for sx in (-1, 1):
            prims.append(wing_panel(P["hull"], (0, 0, -L / 2 + 0.15), 0.1, 0.06, r + 0.08, 0.3, 0.025, 0.0, sx))
        prims.append(wing_panel(P["hull"], (0, 0, -L / 2 + 0.15), 0.1, 0.06, r + 0.08, 0.3, 0.025, np.pi / 2, 1))
        prims.append(Capsule(P["mast"], (0, r + 0.14, L * 0.18), (0, r + 0.26, L * 0.18), 0.01))
        return prims, kind
    if kind == "canoe":
        L = U(1.3, 1.7)
        B, depth = L * U(0.12, 0.16), L * U(0.05, 0.07)
        shell = Clipped(Ellipsoid(P["hull"], (B / 2, depth * 2, L / 2)), [((0, 1, 0), (0, 0, 0))])
        prims.append(Difference(shell, Clipped(Ellipsoid(P["hull"], (B / 2 - 0.025, depth * 2 - 0.025, L / 2 - 0.04)),
                                               [((0, 1, 0), (0, 0.1, 0))])))
        for z in (-L * 0.2, L * 0.2):
            prims.append(Box(P["deck"], (B / 2 - 0.03, 0.012, 0.04), center=(0, -depth * 0.4, z)))
        return prims, kind
    L = U(1.4, 1.8) if kind not in ("sailboat", "catamaran") else U(1.0, 1.3)
    B = L * (U(0.25, 0.35) if kind in ("sailboat", "yacht", "motorboat") else U(0.14, 0.2))
    depth = L * U(0.08, 0.14)
    if kind == "catamaran":
        for sx in (-1, 1):
            prims.append(hull(L, B * 0.45, depth, x0=sx * B * 0.8, bow=0.25, keel=0.3))
        prims.append(Box(P["deck"], (B * 1.0, 0.02, L * 0.3), center=(0, 0.02, -L * 0.05)))
    else:
        prims.append(hull(L, B, depth, bow=U(0.2, 0.35)))
        # deck: a thin plate on the hull's flat top, slightly inset (visible as its own part)
        prims.append(Box(P["deck"], (B / 2 - 0.03, 0.012, L * 0.3), center=(0, 0.012, -L * 0.1)))
    if kind in ("sailboat", "catamaran", "yacht"):
        mh = L * U(0.8, 1.2)
        mz = L * U(0.0, 0.15)
        prims.append(Capsule(P["mast"], (0, 0, mz), (0, mh, mz), 0.014))
        foot = L * U(0.3, 0.45)
        prims.append(Polyhedron(P["sail"], [(s * 0.01, y, z) for s in (-1, 1) for y, z in
                                            [(0.06, mz - 0.03), (0.06, mz - foot), (mh - 0.03, mz - 0.03)]]))
        if kind != "catamaran" and (kind == "yacht" or rng.random() < 0.5):   # jib
            prims.append(Polyhedron(P["sail"], [(s * 0.01, y, z) for s in (-1, 1) for y, z in
                                                [(0.06, mz + 0.03), (0.06, L / 2 - L * 0.12), (mh * 0.85, mz + 0.03)]]))
            kind += "+jib"
        prims.append(Capsule(P["mast"], (0, 0.06, mz), (0, 0.06, mz - foot), 0.01))   # boom
        if kind.startswith("yacht"):
            prims.append(bevel_box(P["cabin"], (B * 0.3, 0.05, L * 0.12), 0.03, center=(0, 0.05, -L * 0.15)))
        return prims, kind
    if kind == "motorboat":
        cab = _pick(rng, ["cabin", "console"]) if rich else "cabin"
        if cab == "cabin":
            prims.append(tapered_box(P["cabin"], (B * 0.38, L * 0.15), (B * 0.3, L * 0.08), 0.06, center=(0, 0.07, L * 0.02),
                                     top_shift=(0, -L * 0.04)))
        else:
            prims.append(Box(P["cabin"], (B * 0.18, 0.06, 0.05), center=(0, 0.07, 0.0)))
            prims.append(Box(P["cabin"], (B * 0.2, 0.04, 0.008), center=(0, 0.16, 0.04), rot=rotation("x", -0.4)))
        prims.append(Box(P["hull"], (0.04, 0.06, 0.04), center=(0, -depth * 0.3, -L / 2 - 0.03)))   # outboard motor
        return prims, f"{kind}+{cab}"
    if kind == "container-ship":
        n = int(rng.integers(3, 7))
        for k in range(n):
            z = -L * 0.3 + (L * 0.55) * k / max(n - 1, 1)
            prims.append(Box(P["cabin"], (B * 0.42, U(0.03, 0.08), L * 0.045), center=(0, 0.05, z)))
        prims.append(Box(P["cabin"], (B * 0.4, 0.12, L * 0.05), center=(0, 0.12, -L * 0.42)))
        return prims, f"{kind}+{n}stacks"
    # ship: superstructure, funnels, masts
    levels = int(rng.integers(1, 4 if rich else 3))
    for k in range(levels):
        prims.append(Box(P["cabin"], (B * (0.38 - 0.08 * k), 0.04, L * (0.18 - 0.04 * k)), center=(0, 0.04 + 0.08 * k, -L * 0.05),
                         radius=0.01))
    nf = int(rng.integers(1, 3))
    for k in range(nf):
        z = -L * 0.05 - L * 0.12 * k
        prims.append(tapered_box(P["cabin"], (0.04, 0.06), (0.035, 0.05), 0.08, center=(0, 0.08 * levels + 0.08, z), top_shift=(0, -0.02))
                     if rich else Cylinder(P["cabin"], 0.04, 0.08, center=(0, 0.08 * levels + 0.08, z)))
    prims.append(Capsule(P["mast"], (0, 0.08 * levels, L * 0.15), (0, 0.08 * levels + L * 0.15, L * 0.15), 0.01))
    return prims, f"ship+{levels}levels+{nf}funnels"


# ------------------------------------------------------------------ human (DFAUST stand-in)

MOTIONS = ("walk", "wave", "squat", "jumping-jacks", "punch")


def human_body(rng):
    """Per-sequence body proportions."""
    U = rng.uniform
    return dict(height=U(0.9, 1.1), girth=U(0.85, 1.2), arm=U(0.9, 1.1), leg=U(0.9, 1.1))


def human_pose(motion, phase, amp):
    """Joint angles (radians) at `phase` (0..2pi) of a smooth periodic motion."""
    s, c = np.sin(phase), np.cos(phase)
    pose = dict(l_shoulder=0.1, r_shoulder=0.1, l_elbow=0.2, r_elbow=0.2, l_hip=0.0, r_hip=0.0,
                l_knee=0.05, r_knee=0.05, l_abduct=0.15, r_abduct=0.15, crouch=0.0, leg_abduct=0.05, fwd=0.0)
    if motion == "walk":
        pose.update(l_shoulder=0.5 * amp * s, r_shoulder=-0.5 * amp * s, l_hip=-0.45 * amp * s, r_hip=0.45 * amp * s,
                    l_knee=0.3 + 0.3 * amp * max(c, 0), r_knee=0.3 + 0.3 * amp * max(-c, 0))
    elif motion == "wave":
        pose.update(r_abduct=1.2 + 0.6 * amp, r_elbow=0.9 + 0.5 * amp * s)
    elif motion == "squat":
        k = 0.5 * (1 - c) * amp
        pose.update(l_hip=-1.1 * k, r_hip=-1.1 * k, l_knee=2.0 * k, r_knee=2.0 * k, crouch=k,
                    l_shoulder=-1.2 * k, r_shoulder=-1.2 * k, fwd=0.3 * k)
    elif motion == "jumping-jacks":
        k = 0.5 * (1 - c) * amp
        pose.update(l_abduct=0.15 + 2.0 * k, r_abduct=0.15 + 2.0 * k, leg_abduct=0.05 + 0.35 * k)
    else:  # punch
        pose.update(l_shoulder=-1.4 * amp * max(s, 0), l_elbow=1.8 * (1 - amp * max(s, 0)),
                    r_shoulder=-1.4 * amp * max(-s, 0), r_elbow=1.8 * (1 - amp * max(-s, 0)))
    return pose


def make_human_frame(body, pose):
    """Capsule/ellipsoid body in a pose; parts head, torso, left/right arm, left/right leg."""
    P = parts_of("human")
    H, G = body["height"], body["girth"]
    leg_len, arm_len = 0.46 * H * body["leg"], 0.36 * H * body["arm"]
    hip_y = leg_len + 0.02
    # crouch: knees bend so the hips drop by the vertical loss of the legs (feet stay on the floor)
    thigh, shin = leg_len * 0.5, leg_len * 0.5
    prims = []
    feet_y = []
    for side, hip_key, knee_key, part in ((1, "l_hip", "l_knee", "left leg"), (-1, "r_hip", "r_knee", "right leg")):
        hip_a, knee_a = pose[hip_key], pose[knee_key]
        d_thigh = np.array([side * np.sin(pose["leg_abduct"]), -np.cos(hip_a), -np.sin(hip_a)])
        d_shin = np.array([side * np.sin(pose["leg_abduct"]), -np.cos(hip_a + knee_a), -np.sin(hip_a + knee_a)])
        feet_y.append(-(thigh * d_thigh[1] + shin * d_shin[1]))
        prims.append((part, side, d_thigh, d_shin))
    drop = leg_len - max(feet_y)
    hip_y -= drop
    out = []
    for part, side, d_thigh, d_shin in prims:
        hip = np.array([side * 0.09 * G, hip_y, 0])
        knee = hip + thigh * d_thigh / np.linalg.norm(d_thigh)
        foot = knee + shin * d_shin / np.linalg.norm(d_shin)
        out += [Capsule(P[part], hip, knee, 0.065 * G), Capsule(P[part], knee, foot, 0.05 * G),
                Ellipsoid(P[part], (0.045 * G, 0.035, 0.1), center=foot + (0, -0.01, 0.05))]
    fwd = pose["fwd"]
    torso_len = 0.3 * H
    up = np.array([0, np.cos(fwd), np.sin(fwd)])
    pelvis = np.array([0, hip_y + 0.04, 0])
    chest = pelvis + up * torso_len
    out.append(Capsule(P["torso"], pelvis, chest, 0.13 * G))
    out.append(Ellipsoid(P["torso"], (0.17 * G, 0.1, 0.1 * G), center=pelvis + up * 0.02))
    neck = chest + up * 0.12
    out.append(Capsule(P["head"], chest + up * 0.06, neck, 0.045))
    out.append(Ellipsoid(P["head"], (0.085, 0.11, 0.095), center=neck + up * 0.1))
    for side, sh_key, el_key, ab_key, part in ((1, "l_shoulder", "l_elbow", "l_abduct", "left arm"),
                                               (-1, "r_shoulder", "r_elbow", "r_abduct", "right arm")):
        shoulder = chest + np.array([side * 0.17 * G, 0, 0])
        sw, ab, el = pose[sh_key], pose[ab_key], pose[el_key]
        d_up = np.array([side * np.sin(ab), -np.cos(ab) * np.cos(sw), -np.cos(ab) * np.sin(sw)])
        elbow = shoulder + 0.5 * arm_len * d_up
        # the forearm bends forward/up from the upper arm by the elbow angle
        d_lo = d_up * np.cos(el) + np.array([0, 0, 1.0]) * np.sin(el) if ab < 1.0 else \
            d_up * np.cos(el) + np.array([0, 1.0, 0]) * np.sin(el)
        d_lo /= np.linalg.norm(d_lo)
        hand = elbow + 0.5 * arm_len * d_lo
        out += [Capsule(P[part], shoulder, elbow, 0.045 * G), Capsule(P[part], elbow, hand, 0.037 * G),
                Sphere(P[part], 0.045, center=hand + d_lo * 0.03)]
    return out


FRAMES_PER_SEQUENCE = 20


def human_sequence_params(rng):
    return dict(body=human_body(rng), motion=_pick(rng, list(MOTIONS)), amp=rng.uniform(0.6, 1.0),
                phase0=rng.uniform(0, 2 * np.pi))


def make_human(seq_params, frame):
    phase = seq_params["phase0"] + 2 * np.pi * frame / FRAMES_PER_SEQUENCE
    return make_human_frame(seq_params["body"], human_pose(seq_params["motion"], phase, seq_params["amp"])), \
        seq_params["motion"]
