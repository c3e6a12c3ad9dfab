"""The mesh fit of fit_data.py converges at the seed's step size: the starting sphere encloses the target
closely (init_radius) and the Laplacian weight decays (smooth_final). With the seed's unit sphere the same
budget is spent shrinking, so the first test fails if either default regresses to the seed's."""
import numpy as np
import pytest
import torch

from modules.families.svr.fitting import INIT_RADIUS, SMOOTH_FINAL, fit, smooth_weight
from modules.geometry import ico_sphere, voxelize_mesh

pytestmark = pytest.mark.usefixtures("single_thread")


def ellipsoid_target(axes=(0.46, 0.4, 0.43), level=3):
    s = ico_sphere(level)
    v = (s.verts_packed() * torch.tensor(axes)).numpy()
    f = s.faces_packed().numpy()
    return {"voxels": voxelize_mesh(v, f, 32), "vertices": v, "faces": f, "name": "ellipsoid"}


def test_mesh_fit_converges_at_the_seed_lr_where_the_seed_sphere_does_not():
    target = ellipsoid_target()
    # 1000 samples leave gaps of ~0.05 on this surface, so even a perfect fit scores only ~95: 85 is the bar
    kw = dict(lr=4e-4, max_iter=200, n_points=1000, w_smooth=0.1, progress=False, eval_every=200)
    ours = fit("mesh", target, None, **kw)
    assert ours["metrics"]["f1@0.05"] >= 85.0, ours["metrics"]       # measured 89.3
    # the seed's unit sphere (init_radius=1) cannot pass: Adam moves a vertex ~lr per step, 200 * 4e-4 = 0.08,
    # and every vertex starts >= 0.54 from the target, so its F1@0.05 is 0 here (not run: it would double the time)
    assert ours["trace"][-1]["f1@0.05"] == ours["metrics"]["f1@0.05"]


def test_smooth_weight_decays_geometrically_from_w_smooth_to_its_final_fraction():
    assert smooth_weight(0.1, 0.1, 0, 1000) == pytest.approx(0.1)
    assert smooth_weight(0.1, 0.1, 999, 1000) == pytest.approx(0.01)
    assert smooth_weight(0.1, 0.1, 333, 1000) == pytest.approx(0.1 * 0.1 ** (333 / 999))
    w = [smooth_weight(0.2, 0.05, i, 50) for i in range(50)]
    assert np.all(np.diff(w) < 0) and np.allclose(np.diff(np.log(w)), np.log(0.05) / 49)
    assert smooth_weight(0.1, 1.0, 500, 1000) == 0.1            # 1: the seed's constant weight
    assert 0 < SMOOTH_FINAL < 1 and 0 < INIT_RADIUS < 1


def test_tracing_the_metric_leaves_the_fit_unchanged():
    target = ellipsoid_target(level=2)
    a = fit("mesh", target, None, lr=1e-2, max_iter=12, n_points=200, progress=False)
    b = fit("mesh", target, None, lr=1e-2, max_iter=12, n_points=200, progress=False, eval_every=4)
    np.testing.assert_array_equal(a["result"]["vertices"], b["result"]["vertices"])
    assert [r["iteration"] for r in b["trace"]] == [4, 8, 12] and a["trace"] == []


@pytest.mark.parametrize("kw, needle", [({"init_radius": 0.0}, "--init_radius"), ({"smooth_final": 1.5}, "--smooth_final"),
                                        ({"eval_every": -1}, "--eval_every")])
def test_bad_mesh_fit_options_are_refused_in_one_line(kw, needle):
    from modules.utils import ShapeLabError
    with pytest.raises(ShapeLabError, match=needle):
        fit("mesh", ellipsoid_target(level=1), None, max_iter=1, n_points=10, progress=False, **kw)
