"""Shape grammars: the frozen basic variety, the rich variety, the 8 ONet-only categories and the rich
primitives (round cone, convex polyhedron) against naive references."""
import hashlib
import json
import os

import numpy as np
import pytest
from scipy.spatial import Delaunay

from modules.data import categories
from modules.data.primitives import Box, union_sdf
from modules.data.shapes import (BASIC, MAKERS, RICH, Polyhedron, RoundCone, bevel_box, make_chair, sweep,
                                 tapered_box)
from modules.data.synth import LABEL_FAR, SynthConfig, build_shape, generate
from modules.utils import ShapeLabError

# sha256 of the primitives (class, fields, floats) and variant names that the basic grammars of the 16
# ShapeNet-Part categories draw for rng seeds 0..9 -- computed from the code before the rich variety existed
BASIC_HASH = "07fba1fead82e7214c96d23c25ce6d9a901546f590c4fec8d758f88b7261708d"
SHAPES = categories.CATEGORIES + categories.EXTRA_CATEGORIES
ONET_SYNSETS = {"bench": "02828884", "cabinet": "02933112", "display": "03211117", "loudspeaker": "03691459",
                "rifle": "04090263", "sofa": "04256520", "telephone": "04401088", "watercraft": "04530566"}


def _feed(h, obj):
    h.update(type(obj).__name__.encode())
    for key in sorted(vars(obj)):
        value = vars(obj)[key]
        h.update(key.encode())
        if hasattr(value, "sdf"):
            _feed(h, value)
        elif isinstance(value, list):          # Clipped planes: [(normal, point), ...]
            for item in value:
                for a in item:
                    h.update(np.asarray(a, np.float64).tobytes())
        else:
            h.update(np.asarray(value, np.float64).tobytes())


def test_basic_variety_is_unchanged():
    h = hashlib.sha256()
    for name in sorted(categories.CATEGORIES):
        for seed in range(10):
            prims, variant = MAKERS[name](np.random.default_rng(seed))
            h.update(variant.encode())
            for p in prims:
                _feed(h, p)
    assert h.hexdigest() == BASIC_HASH
    # the explicit variety and the plain function give the same shapes
    a, va = MAKERS["chair"](np.random.default_rng(3), "basic")
    b, vb = make_chair(np.random.default_rng(3))
    assert va == vb and len(a) == len(b)


@pytest.mark.parametrize("variety", ["basic", "rich"])
@pytest.mark.parametrize("name", SHAPES)
def test_every_category_and_variety_makes_a_labelled_mesh(name, variety):
    ids = set(categories.part_ids(name))
    res = 48
    far = LABEL_FAR * 128 / res   # LABEL_FAR is sized for the cells of the default resolution 128
    for index in range(2):
        s = build_shape(name, index, seed=0, resolution=res, variety=variety)
        assert len(s.faces) > 100 and np.isfinite(s.vertices).all()
        assert np.abs(s.vertices).max() <= 0.5 + 1e-5
        assert (s.vertices.max(0) - s.vertices.min(0)).max() == pytest.approx(1.0, abs=1e-5)
        labels = union_sdf(s.prims, s.vertices[s.faces].mean(1), far=far)[1]
        assert (labels >= 0).all(), f"{name} {variety} #{index}: faces without a part"
        assert set(np.unique(labels)) <= ids


def _variants(name, variety, n=40):
    return {MAKERS[name](np.random.default_rng(i), variety)[1] for i in range(n)}


@pytest.mark.parametrize("name", sorted(RICH))
def test_rich_draws_more_variants_than_basic(name):
    basic, rich = _variants(name, "basic"), _variants(name, "rich")
    assert len(rich) > len(basic), f"{name}: rich {len(rich)} variants, basic {len(basic)}"


def test_rich_grammars_cover_the_parts():
    for name in RICH:
        seen = set()
        for i in range(60):
            seen |= {p.part for p in MAKERS[name](np.random.default_rng(i), "rich")[0]}
        assert seen == set(categories.part_ids(name)), f"{name}: parts {set(categories.part_ids(name)) - seen} never drawn"


def test_unknown_variety_is_refused():
    with pytest.raises(ShapeLabError, match="variety"):
        MAKERS["chair"](np.random.default_rng(0), "fancy")


def test_shapenet_part_tables_unaffected():
    assert len(categories.CATEGORIES) == 16 and categories.NUM_PART_CLASSES == 50
    assert len(categories.global_to_category()) == 50
    assert categories.category_list("all") == categories.ALL_CATEGORIES == categories.CATEGORIES + ["human"]
    assert categories.part_ids("airplane") == [0, 1, 2, 3] and categories.part_ids("human")[0] == 50
    extra_ids = [i for c in categories.EXTRA_CATEGORIES for i in categories.part_ids(c)]
    assert min(extra_ids) == 56 and len(set(extra_ids)) == len(extra_ids)
    with pytest.raises(ShapeLabError, match="16 ShapeNet-Part"):
        categories.category_index("sofa")
    assert {c: categories.SYNSETS[c] for c in ONET_SYNSETS} == ONET_SYNSETS
    assert categories.category_name("04530566") == "watercraft"
    onet13 = categories.category_list("onet13")
    assert len(onet13) == 13 and sorted(categories.SYNSETS[c] for c in onet13) == [categories.SYNSETS[c] for c in onet13]
    # the seed streams of the existing categories did not move
    assert categories.SYNTH_CATEGORIES[:17] == categories.ALL_CATEGORIES
    assert set(BASIC) == set(SHAPES)


def test_new_category_layouts_use_synsets(tmp_path):
    out = str(tmp_path / "synth")
    cfg = SynthConfig(out=out, formats=("onet", "ifnet", "r2n2", "shapenet_part"), views=1, resolution=24,
                      n_surface=2000, n_uniform=2000, variety="rich")
    summary = generate(cfg, ["sofa"], 1, jobs=1, progress=False)
    assert not summary["failed"]
    syn = ONET_SYNSETS["sofa"]
    for path in (f"onet/{syn}/synth_00000/points.npz", f"ifnet/{syn}/synth_00000/boundary_0.01_samples.npz",
                 f"r2n2/ShapeNetRendering/{syn}/synth_00000/rendering", f"r2n2/ShapeNetVox32/{syn}/synth_00000/model.binvox"):
        assert os.path.exists(os.path.join(out, path)), path
    assert not os.path.exists(os.path.join(out, "shapenet_part"))   # no ShapeNet-Part labels for sofas
    with open(os.path.join(out, ".done", syn, "synth_00000.json")) as f:
        assert json.load(f)["variant"] in _variants("sofa", "rich", 200)
    with pytest.raises(ShapeLabError, match="shapenet_part"):
        generate(SynthConfig(out=out, formats=("shapenet_part",), views=0), ["bench"], 1, progress=False)


def test_round_cone_is_an_exact_distance():
    rng = np.random.default_rng(0)
    cone = RoundCone(0, (-0.2, -0.1, 0.0), (0.25, 0.2, 0.1), 0.15, 0.05)
    p = rng.uniform(-0.7, 0.7, (1500, 3))
    d = cone.sdf(p)
    # naive reference: distance to the union of spheres swept along the segment (dense), minus radius
    t = np.linspace(0, 1, 1001)
    centres = cone.a + t[:, None] * (cone.b - cone.a)
    radii = cone.ra + t * (cone.rb - cone.ra)
    ref = np.min(np.linalg.norm(p[:, None] - centres[None], axis=2) - radii[None], axis=1)
    np.testing.assert_allclose(d, ref, atol=2e-3)
    lo, hi = cone.aabb()
    inside = p[d < 0]
    assert (inside >= lo).all() and (inside <= hi).all()
    s = cone.transformed(2.0, np.array([0.1, 0.0, -0.3]))
    np.testing.assert_allclose(s.sdf(p * 2 + [0.1, 0.0, -0.3]), 2 * d, atol=1e-9)


def test_polyhedron_sign_exact_and_distance_a_lower_bound():
    rng = np.random.default_rng(1)
    p = rng.uniform(-0.6, 0.6, (5000, 3))
    box = Box(0, (0.3, 0.2, 0.1))
    poly = Polyhedron(0, [(sx * 0.3, sy * 0.2, sz * 0.1) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    exact, bound = box.sdf(p), poly.sdf(p)
    np.testing.assert_allclose(bound[exact < 0], exact[exact < 0], atol=1e-12)      # inside: exact
    assert (bound <= exact + 1e-12).all() and ((bound > 0) == (exact > 0)).all()      # outside: a lower bound
    for prim in (tapered_box(0, (0.3, 0.2), (0.1, 0.05), 0.25, top_shift=(0.05, 0.0)), bevel_box(0, (0.3, 0.2, 0.1), 0.05)):
        inside = Delaunay(prim.points).find_simplex(p) >= 0
        assert np.array_equal(prim.sdf(p) < 0, inside)
    # the bevel cuts the corners: the box corner is outside, the face centres inside
    bev = bevel_box(0, (0.3, 0.2, 0.1), 0.05)
    assert bev.sdf(np.array([[0.29, 0.19, 0.09]]))[0] > 0 and bev.sdf(np.array([[0.29, 0.0, 0.0]]))[0] < 0


def test_sweep_follows_the_polyline():
    pts = np.array([(0, 0, 0), (0.3, 0.0, 0), (0.3, 0.3, 0.0)])
    tube = sweep(0, pts, [0.05, 0.04, 0.02])
    d, _ = union_sdf(tube, pts)
    np.testing.assert_allclose(d, [-0.05, -0.04, -0.02], atol=1e-12)
    assert union_sdf(tube, np.array([[0.15, 0.2, 0.0]]))[0][0] > 0   # the corner is not filled
