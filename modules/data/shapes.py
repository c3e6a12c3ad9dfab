"""Shape grammars: one small generator per category, returning primitives labelled with global part ids.

Each `make_<category>(rng)` draws a structural variant (e.g. a chair with or without arms, four
legs or a swivel base) and continuous proportions, and returns (primitives, variant name). The
raw units are arbitrary; `modules.data.synth` centres the shape and scales its longest bounding-box
edge to 1. Orientation follows ShapeNet: y up, the front of the object towards +z.
"""
import numpy as np

from modules.data import categories
from modules.data.primitives import (Box, Capsule, Clipped, Cone, Cylinder, Difference, Ellipsoid, Sphere,
                                     Torus, cylinder_between, rotation)

MAKERS = {}


def maker(name):
    def register(fn):
        MAKERS[name] = fn
        return fn
    return register


def parts_of(name):
    """{part name: global id} of a category."""
    return {n: i for i, n in categories.part_table(name).items()}


def _pick(rng, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


ROT_Z90 = rotation("z", np.pi / 2)   # local y -> world -x (cylinders lying along x)
ROT_X90 = rotation("x", np.pi / 2)   # local y -> world +z


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
