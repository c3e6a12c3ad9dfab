"""The attribution methods and targets by name (what attribution.py --mode and eval_model.py --visualizer /
--target accept), and captum loaded on first use.

Light on purpose (no torch, no captum): the scripts build their argparse choices from these names, and
`--help` or a bad flag must not wait for captum's imports (seconds on a busy machine). pointcloud.py and
images.py re-export them as their METHODS / TARGETS and call `captum_attr()` inside the methods."""

POINT_METHODS = ("gbp", "ig", "grad_cam", "hirescam")                # modules/attribution/pointcloud.py
IMAGE_METHODS = ("gradcam", "gradcam++", "hirescam", "gbp", "ig")    # modules/attribution/images.py
IMAGE_TARGETS = ("loss", "occupancy")                                # single-view (svr) image targets


def captum_attr():
    """The `captum.attr` module, imported at the first attribution rather than when a script starts."""
    import captum.attr  # deferred on purpose: a heavy optional dependency only the attribution methods need
    return captum.attr
