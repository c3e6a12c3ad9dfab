"""Mesh pictures from the z-buffer rasterizer (exact occlusion, real cameras), and a small CLI.

    python -m modules.vis.render MESH.obj --out render.png [--views 8] [--gif turntable.gif]
           [--size 224] [--fov 30] [--elevation 20] [--cameras_npz cameras.npz]

Unlike `save_mesh_png` (matplotlib, painter's algorithm), these pictures come from
`modules.geometry.rasterizer`, so they are what a network sees as a rendered input, and the
cameras can be saved (ONet `cameras.npz` convention) next to them.

Dataset-style renders (`render_views`): one rasterization per view at `supersample` times the size,
then any number of shadings of the same fragments (a material colour, a procedural texture, part
colours), box-filtered down to the image size with a fractional alpha (anti-aliased mask):
  * lighting="studio": smooth (vertex-normal) shading, a key light above-left of the camera, a fill
    light from the right, ambient, and a Blinn-Phong highlight per material (R2N2-style renders);
  * lighting="simple3dviz": brightness acos(n . dir(light -> point)) / pi with the light at the camera,
    as simple-3dviz's mesh shader (the DFAUST renders of Neural Parts); two-sided.
"""
import argparse
import math

import numpy as np
import torch
from PIL import Image

from modules.geometry.cameras import onet_camera_arrays, orbit_cameras
from modules.geometry.io import load_mesh
from modules.geometry.rasterizer import rasterize, render_mesh, to_uint8_image
from modules.utils import ShapeLabError, atomic_write, cli_main

# Plausible ShapeNet-like materials: (name, RGB in [0,1], specular strength). One per shape, so the
# colour says nothing about part identity.
MATERIAL_PALETTE = (
    ("oak", (0.62, 0.43, 0.25), 0.08), ("light wood", (0.78, 0.64, 0.45), 0.08),
    ("walnut", (0.33, 0.21, 0.13), 0.10), ("black plastic", (0.09, 0.09, 0.10), 0.35),
    ("dark grey", (0.27, 0.28, 0.30), 0.20), ("grey", (0.52, 0.53, 0.55), 0.20),
    ("light grey", (0.76, 0.76, 0.77), 0.15), ("white", (0.90, 0.90, 0.88), 0.15),
    ("beige fabric", (0.80, 0.72, 0.58), 0.02), ("brown leather", (0.40, 0.25, 0.16), 0.25),
    ("red", (0.62, 0.12, 0.11), 0.25), ("navy", (0.16, 0.21, 0.40), 0.20),
    ("blue", (0.30, 0.42, 0.62), 0.25), ("olive", (0.36, 0.40, 0.24), 0.10),
    ("aluminium", (0.72, 0.74, 0.77), 0.60), ("brass", (0.70, 0.55, 0.30), 0.55),
)
STUDIO_LIGHTS = (((-0.45, -0.75, -0.5), 0.65), ((0.8, -0.15, -0.55), 0.25))  # camera space: (towards light, strength)
STUDIO_AMBIENT = 0.28


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


def material_color(rng, jitter=0.06):
    """(rgb (3,), specular, name): one palette material with a small brightness/tint jitter."""
    name, rgb, spec = MATERIAL_PALETTE[int(rng.integers(len(MATERIAL_PALETTE)))]
    rgb = np.clip(np.asarray(rgb) * (1 + rng.uniform(-jitter, jitter)) + rng.uniform(-jitter, jitter, 3) / 3, 0, 1)
    return rgb, spec, name


def procedural_texture(points, rng):
    """(N,3) RGB in [0,1]: a texture varied per shape (genren-style textured meshes): two palette
    colours mixed by stripes along a random direction plus smooth value noise (sum of random sinusoids)."""
    p = np.asarray(points, np.float64)
    a, _, _ = material_color(rng)
    b, _, _ = material_color(rng)
    d = rng.normal(size=3)
    d /= np.linalg.norm(d)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 8) * (p @ d) + rng.uniform(0, 2 * np.pi))
    noise = np.zeros(len(p))
    for _ in range(4):
        k = rng.normal(size=3) * rng.uniform(3, 12)
        noise += np.sin(p @ k + rng.uniform(0, 2 * np.pi))
    mix = np.clip(rng.uniform(0.3, 0.8) * stripes + 0.25 * noise / 2 + rng.uniform(-0.1, 0.1), 0, 1)
    return a * (1 - mix[:, None]) + b * mix[:, None]


def vertex_normals(vertices, faces):
    """(V,3) unit area-weighted vertex normals."""
    tri = vertices[faces]
    n = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    vn = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), n.repeat_interleave(3, dim=0))
    return vn / vn.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _shading_terms(frags, v, f, camera, lighting, smooth=True):
    """Per covered pixel: (pixel ids (P,), face ids (P,), diffuse (P,), half-vector term (P,) or None)."""
    pix = torch.nonzero(frags.mask.reshape(-1)).squeeze(1)
    fid = frags.face_index.reshape(-1)[pix]
    bary = frags.bary.reshape(-1, 3)[pix]
    tri = f[fid]
    pos = (bary[:, :, None] * v[tri]).sum(1)
    if smooth:
        n = (bary[:, :, None] * vertex_normals(v, f)[tri]).sum(1)
    else:
        t = v[tri]
        n = torch.linalg.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
    n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-12)
    to_eye = camera.center.to(v.dtype) - pos
    to_eye = to_eye / to_eye.norm(dim=1, keepdim=True).clamp_min(1e-12)
    n = torch.where(((n * to_eye).sum(1) < 0)[:, None], -n, n)            # two-sided: face the viewer
    if lighting == "simple3dviz":
        cos = (n * -to_eye).sum(1).clamp(-1, 1)                           # n . dir(light -> point), light at the eye
        return pix, fid, torch.arccos(cos) / math.pi, None
    if lighting != "studio":
        raise ShapeLabError(f"lighting must be 'studio' or 'simple3dviz', got {lighting!r}")
    Rt = camera.R.to(v.dtype).transpose(0, 1)
    diffuse = torch.full((len(pix),), STUDIO_AMBIENT, dtype=v.dtype)
    spec = torch.zeros(len(pix), dtype=v.dtype)
    for direction, strength in STUDIO_LIGHTS:
        l_cam = torch.tensor(direction, dtype=v.dtype)
        l = Rt @ (l_cam / l_cam.norm())                                     # camera -> world direction
        diffuse += strength * (n @ l).clamp_min(0)
        h = l[None] + to_eye
        h = h / h.norm(dim=1, keepdim=True).clamp_min(1e-12)
        spec += strength * (n * h).sum(1).clamp_min(0) ** 24
    return pix, fid, diffuse, spec


def render_views(vertices, faces, cameras, shadings, supersample=2, lighting="studio", smooth=True):
    """Dataset renders: for each camera, one float (H,W,4) RGBA in [0,1] per shading (alpha = coverage,
    fractional at anti-aliased edges; RGB un-premultiplied, 0 where alpha = 0).

    vertices (V,3), faces (F,3); shadings: list of dicts with one of "color" (3,) or "vertex_colors" (V,3),
    and optional "specular" (strength of the highlight; studio lighting only). Returns a list (cameras)
    of lists (shadings) of tensors. The mesh is rasterized once per camera for all shadings.
    """
    if supersample < 1 or int(supersample) != supersample:
        raise ShapeLabError(f"supersample must be a positive integer, got {supersample}")
    s = int(supersample)
    v = torch.as_tensor(np.asarray(vertices, np.float64) if not torch.is_tensor(vertices) else vertices).double()
    f = torch.as_tensor(np.asarray(faces) if not torch.is_tensor(faces) else faces).long()
    colours = []
    for i, sh in enumerate(shadings):
        if ("color" in sh) == ("vertex_colors" in sh):
            raise ShapeLabError(f"shading {i}: give exactly one of 'color' (3,) or 'vertex_colors' (V,3)")
        c = torch.as_tensor(np.asarray(sh.get("color", sh.get("vertex_colors")), np.float64))
        if c.shape not in ((3,), (len(v), 3)):
            raise ShapeLabError(f"shading {i}: colours must have shape (3,) or ({len(v)},3), got {tuple(c.shape)}")
        colours.append((c, float(sh.get("specular", 0.0))))
    out = []
    with torch.no_grad():
        for camera in cameras:
            cam = camera.resized(camera.width * s, camera.height * s) if s > 1 else camera
            frags = rasterize(v, f, cam)
            pix, fid, diffuse, spec = _shading_terms(frags, v, f, cam, lighting, smooth)
            H, W = cam.height, cam.width
            bary = frags.bary.reshape(-1, 3)[pix]
            alpha = frags.mask.reshape(1, 1, H, W).double()
            views = []
            for c, strength in colours:
                base = c.expand(len(pix), 3) if c.ndim == 1 else (bary[:, :, None] * c[f[fid]]).sum(1)
                rgb_p = base * diffuse[:, None]
                if spec is not None and strength > 0:
                    rgb_p = rgb_p + strength * spec[:, None]
                rgb = torch.zeros(H * W, 3, dtype=v.dtype).index_put((pix,), rgb_p.clamp(0, 1))
                rgb = rgb.t().reshape(1, 3, H, W)
                if s > 1:   # box filter premultiplied colour, then un-premultiply
                    a = torch.nn.functional.avg_pool2d(alpha, s)
                    rgb = torch.nn.functional.avg_pool2d(rgb, s) / a.clamp_min(1e-12)
                else:
                    a = alpha
                views.append(torch.cat([rgb, a], 1)[0].permute(1, 2, 0).clamp(0, 1).float())
            out.append(views)
    return out


def composite(rgba, background=(1.0, 1.0, 1.0)):
    """(H,W,4) RGBA (float in [0,1] or uint8) over a background colour -> (H,W,3) of the same kind."""
    a = np.asarray(rgba)
    scale = 255.0 if a.dtype == np.uint8 else 1.0
    x = a.astype(np.float64) / scale
    rgb = x[..., :3] * x[..., 3:4] + np.asarray(background, np.float64) * (1 - x[..., 3:4])
    return np.round(rgb * 255).astype(np.uint8) if scale == 255.0 else rgb


def save_cameras_npz(path, cameras):
    """ONet-convention cameras.npz (world_mat_i, camera_mat_i in pixel units) for the CLI's
    --cameras_npz; datasets write theirs through modules.data.onet.write_cameras_npz."""
    with atomic_write(path, suffix=".npz") as tmp:
        np.savez(tmp, **onet_camera_arrays(cameras))
    return path


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
def main(argv=None, write_cameras=None):
    """write_cameras(path, cameras): how --cameras_npz is written (default `save_cameras_npz`)."""
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
        (write_cameras or save_cameras_npz)(args.cameras_npz, cams)
        print(f"wrote {args.cameras_npz}")


if __name__ == "__main__":
    main()
