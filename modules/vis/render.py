"""Mesh pictures from the z-buffer rasterizer (exact occlusion, real cameras), and a small CLI.

    python -m modules.vis.render MESH.obj --out render.png [--views 8] [--gif turntable.gif]
           [--size 224] [--fov 30] [--elevation 20] [--cameras_npz cameras.npz]

Unlike `save_mesh_png` (matplotlib, painter's algorithm), these pictures come from
`modules.geometry.rasterizer`, so they are what a network sees as a rendered input, and the
cameras can be saved (ONet `cameras.npz` convention) next to them.
"""
import argparse
import math

import numpy as np
import torch
from PIL import Image

from modules.geometry.cameras import orbit_cameras
from modules.geometry.rasterizer import render_mesh, to_uint8_image
from modules.utils import ShapeLabError, atomic_write, cli_main


def framing(vertices, fov_deg, margin=1.1):
    """(target, distance): the bounding-box centre and a distance at which the bounding sphere fits the view."""
    v = torch.as_tensor(vertices).detach().double()
    lo, hi = v.min(0).values, v.max(0).values
    centre = (lo + hi) / 2
    radius = float((v - centre).norm(dim=1).max().clamp_min(1e-6))
    return centre.tolist(), margin * radius / math.sin(math.radians(fov_deg) / 2)


def turntable_cameras(vertices, n_views=24, fov_deg=30.0, elevation_deg=20.0, width=224, height=224,
                      start_azimuth_deg=30.0, margin=1.1):
    """Cameras circling the mesh (y up), framed so the whole shape is visible in every view."""
    target, distance = framing(vertices, fov_deg, margin)
    return orbit_cameras(n_views, distance=distance, elevation_deg=elevation_deg, target=target,
                         start_azimuth_deg=start_azimuth_deg, fov_deg=fov_deg, width=width, height=height)


def render_image(vertices, faces, camera, vertex_colors=None, face_colors=None, background=(1.0, 1.0, 1.0),
                 ambient=0.3, light_dir=None, rgba=False, supersample=1):
    """(H,W,3) uint8 picture (or (H,W,4) with a coverage alpha when rgba=True) of one rendered view.

    supersample=s renders at s times the size and averages s x s blocks (anti-aliased edges, fractional
    alpha), as genren does with SoftRas (128 px rendered, pooled to 64)."""
    if supersample < 1 or int(supersample) != supersample:
        raise ShapeLabError(f"supersample must be a positive integer, got {supersample}")
    s = int(supersample)
    cam = camera.resized(camera.width * s, camera.height * s) if s > 1 else camera
    with torch.no_grad():
        out = render_mesh(vertices, faces, cam, vertex_colors=vertex_colors, face_colors=face_colors,
                          light_dir=light_dir, ambient=ambient, background=background)
        pixels = out["rgba"]
        if s > 1:
            pixels = torch.nn.functional.avg_pool2d(pixels.permute(2, 0, 1)[None], s)[0].permute(1, 2, 0)
    img = to_uint8_image(pixels)
    return img if rgba else img[..., :3]


def save_image_png(path, image):
    """Write an (H,W,3|4) uint8 array as PNG, atomically."""
    with atomic_write(path, suffix=".png") as tmp:
        Image.fromarray(np.asarray(image)).save(tmp, format="PNG")
    return path


def save_render_png(path, vertices, faces, camera=None, rgba=False, **render_kwargs):
    """Render one view (default: a framed 3/4 view at 224x224) and write it as PNG."""
    camera = camera or turntable_cameras(vertices, n_views=1)[0]
    return save_image_png(path, render_image(vertices, faces, camera, rgba=rgba, **render_kwargs))


def save_render_gif(path, vertices, faces, n_views=24, fps=8, size=224, fov_deg=30.0, elevation_deg=20.0,
                    **render_kwargs):
    """360-degree turntable GIF rendered with the rasterizer."""
    from modules.vis.plots import save_gif
    cams = turntable_cameras(vertices, n_views, fov_deg, elevation_deg, size, size)
    return save_gif(path, [render_image(vertices, faces, c, **render_kwargs) for c in cams], fps=fps)


def _parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m modules.vis.render",
                                description="Render a mesh (.obj/.off/.ply) with the z-buffer rasterizer.")
    p.add_argument("mesh", help="input mesh file (.obj, .off, .ply)")
    p.add_argument("--out", default="render.png", help="output PNG; with --views > 1 a grid of all views")
    p.add_argument("--views", type=int, default=1, help="number of views evenly spaced in azimuth")
    p.add_argument("--gif", default=None, help="also write a turntable GIF of the views here")
    p.add_argument("--fps", type=float, default=8, help="GIF frames per second")
    p.add_argument("--size", type=int, default=224, help="image width and height in pixels")
    p.add_argument("--fov", type=float, default=30.0, help="vertical field of view in degrees")
    p.add_argument("--elevation", type=float, default=20.0, help="camera elevation above the xz-plane (degrees)")
    p.add_argument("--color", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                   help="mesh colour in [0,1] (default: the mesh's vertex colours, else grey)")
    p.add_argument("--supersample", type=int, default=2,
                   help="render at this many times the size and average (anti-aliasing); 1 = off")
    p.add_argument("--rgba", action="store_true", help="single view: keep a transparent background (alpha = coverage)")
    p.add_argument("--cameras_npz", default=None,
                   help="save the cameras here in ONet's cameras.npz convention (world_mat_i, camera_mat_i)")
    args = p.parse_args(argv)
    if args.views < 1 or args.size < 1 or args.supersample < 1 or not 0 < args.fov < 180:
        p.error("--views, --size and --supersample must be positive and --fov in (0, 180)")
    return args


@cli_main
def main(argv=None):
    from modules.geometry.io import load_mesh
    args = _parse_args(argv)
    mesh = load_mesh(args.mesh)
    v = torch.tensor(np.asarray(mesh.vertices), dtype=torch.float32)
    f = torch.tensor(np.asarray(mesh.faces), dtype=torch.long)
    kwargs = {}
    if args.color is not None:
        kwargs["face_colors"] = torch.tensor(args.color, dtype=torch.float32)
        kwargs["face_colors"] = kwargs["face_colors"].expand(len(f), 3)
    else:
        vc = getattr(mesh.visual, "vertex_colors", None)
        if getattr(mesh.visual, "kind", None) == "vertex" and vc is not None and len(vc) == len(v):
            kwargs["vertex_colors"] = torch.tensor(np.asarray(vc)[:, :3] / 255.0, dtype=torch.float32)
    cams = turntable_cameras(v, args.views, args.fov, args.elevation, args.size, args.size)
    images = [render_image(v, f, c, rgba=args.rgba and args.views == 1, supersample=args.supersample, **kwargs)
              for c in cams]
    if len(images) == 1:
        save_image_png(args.out, images[0])
    else:
        from modules.vis.plots import save_panels_png
        save_panels_png(args.out, [{"image": im} for im in images], ncols=min(len(images), 6),
                        panel_size=args.size / 100.0)
    print(f"wrote {args.out} ({len(images)} view(s), {len(f)} faces)")
    if args.gif:
        from modules.vis.plots import save_gif
        save_gif(args.gif, [im[..., :3] for im in images], fps=args.fps)
        print(f"wrote {args.gif}")
    if args.cameras_npz:
        from modules.data.onet import write_cameras_npz
        mats = [c.to_onet() for c in cams]
        write_cameras_npz(args.cameras_npz, [m[0] for m in mats], [m[1] for m in mats])
        print(f"wrote {args.cameras_npz}")


if __name__ == "__main__":
    main()
