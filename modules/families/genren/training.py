"""genren training: the unpaired image + shape dataset and the GenRen task (manual optimisation, six optimizers).

Schedule (optimizer steps of the generator, the original's train.py), with the BASE lengths:
  1. mesh auto-encoder pretraining (chamfer_only_iters 5000): shape -> v -> mesh, Chamfer + normals + mesh
     regularisers; its own Adam `mesh_ae` (lr 8e-4, x0.5 at step 4000) over the PointNet and the decoder;
  2. domain-randomised pretraining (stage_2_pretrain_iters 3000): shape -> render with a random upper-hemisphere
     pose and a random two-colour texture -> image -> shape, pose and vertex colours (pseudo-supervised vision);
  3. mode I (mode_1_iters 3000): that cycle + cycle 2 (image -> shape -> image), cycle 2 weighted
     clip(0.01 -> 1 over cy2_annealing_period steps, 0.001, 0.999);
  4. mode II (mode_2_iters 3000): full cycle 1 (learned pose and texture) weighted 0.01 -> 0.99 and the
     domain-randomised one 0.99 -> 0.01, cycle 2 at full weight; the image and texture critics and the pose
     buffer start;
  5. mode III (until training.max_steps; the original's n_gen_iters 99999): full cycle 1 + cycle 2.
After each generator step the critics step: shape critic (real: shapes encoded from point clouds; fake: shapes
inferred from images), CPTC critic (predict the pose from the best inferred texture), and from mode II the image
critic (real: images, each replaced by its best re-render with probability 0.5; fake: cycle-1 renders), the
texture critic (real: best inferred UV textures; fake: sampled cycle-1 textures) and the pose buffer (best
hypotheses of cycle 2). WGAN-GP losses with gradient penalty 10 and drift 0.01.
"""
import math
import os
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset

from modules.data import genren as genren_io
from modules.engine.task import Task, check_finite
from modules.families.genren.evaluation import graphics_grid, reconstruction_grid
from modules.losses import genren as L
from modules.losses.gan import gradient_penalty
from modules.metrics import eval_mesh
from modules.utils import ShapeLabError

PHASES = ("mesh_ae", "dr_pretrain", "mode_1", "mode_2", "mode_3")


# ============================================================================ data

def split_of(key, held_out):
    """'train' or 'held_out' for an id, by a stable hash (crc32), so every run and machine agrees."""
    return "held_out" if (zlib.crc32(key.encode()) % 10000) / 10000.0 < held_out else "train"


def shape_key_of_image(stem, shape_ids):
    """The shape id an image belongs to: its stem without a trailing _NN view number when that names a shape (the
    embedded data's <id>_NN.png), else the stem itself (unpaired user folders)."""
    base, _, tail = stem.rpartition("_")
    return base if tail.isdigit() and base in shape_ids else stem


def load_rgba(path, size, no_alpha="error"):
    """(4,size,size) float: RGB in [-1,1] composited over black (the renderer's background), alpha in [0,1]; resized
    antialiased on premultiplied colour. no_alpha: 'error' refuses an image without alpha; 'white_background' takes
    the object mask = pixels that are not (near) white, as renders on white."""
    try:
        with Image.open(path) as im:
            has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
            if not has_alpha and no_alpha == "error":
                raise ShapeLabError(f"{path}: image mode {im.mode} has no alpha channel; genren needs masked RGBA "
                                    f"images (set data.no_alpha=white_background to take non-white pixels as the mask)")
            arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), np.float32) / 255.0
    except ShapeLabError:
        raise
    except Exception as err:
        raise ShapeLabError(f"{path}: not a readable image ({type(err).__name__}: {err})") from err
    if arr.shape[2] == 3:
        alpha = (arr.min(axis=2, keepdims=True) < 0.96).astype(np.float32)
        arr = np.concatenate([arr, alpha], 2)
    arr = np.concatenate([arr[..., :3] * arr[..., 3:], arr[..., 3:]], 2)          # premultiplied: over black
    if arr.shape[:2] != (size, size):          # PIL's antialiased bilinear, per channel (no 2nd premultiply)
        arr = np.stack([np.asarray(Image.fromarray(arr[..., k], "F").resize((size, size), Image.BILINEAR))
                        for k in range(4)], 2).clip(0, 1)
    x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    return torch.cat([x[:3] * 2.0 - 1.0, x[3:]], 0)


def normalize_cloud(points):
    """genren's norm_mesh: centre the bounding box and divide by its largest side -> (points', centre, scale)."""
    lo, hi = points.min(0).values, points.max(0).values
    centre, scale = (lo + hi) / 2, float((hi - lo).max().clamp_min(1e-12))
    return (points - centre) / scale, centre, scale


class GenrenUnpairedDataset(Dataset):
    """Unpaired masked images and oriented point clouds, the original's two folders.

    Sources: `root` in the genren layout (ROOT/<category>/images/*.png and shapes/X.PC.pt, X.normals.pt;
    `categories` selects folders) or the seed's flat `img_data_dir` + `shape_data_dir`. Shapes are normalised
    (bounding-box centre, largest side 1) and `n_points` are drawn without replacement per sample. Split: a
    fraction `held_out` of shape ids (crc32 of the id; images follow their shape when the file name says which,
    <id>_NN.png, else their own name) is held out; split 'train' reads the rest, 'val'/'test' the held-out part.

    Sample: image (4,S,S) RGB [-1,1] + alpha; points, normals (n,3) - in training a random shape (unpaired); in
    val/test the image's own shape when known; has_shape (bool) whether it is; image_name, shape_name.
    Every file is checked when the dataset is built (a wrong tensor shape, an unreadable or alpha-less image is
    a one-line ShapeLabError before training writes anything).
    """

    def __init__(self, split="train", root=None, categories=None, img_data_dir=None, shape_data_dir=None,
                 img_size=64, n_points=1000, held_out=0.1, no_alpha="error", max_items=None):
        if (root is None) == (img_data_dir is None and shape_data_dir is None):
            raise ShapeLabError("genren data: set data.root (genren layout) or both data.img_data_dir and "
                                "data.shape_data_dir (the seed's two folders), not both")
        pairs = []
        if root is not None:
            if not os.path.isdir(root):
                raise ShapeLabError(f"data.root {root}: no such folder (expected ROOT/<category>/images, shapes)")
            cats = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
            if categories:
                missing = sorted(set(categories) - set(cats))
                if missing:
                    raise ShapeLabError(f"data.categories {missing}: not under {root} (found: {', '.join(cats)})")
                cats = [c for c in cats if c in set(categories)]
            pairs = [(os.path.join(root, c, "images"), os.path.join(root, c, "shapes")) for c in cats]
        else:
            for key, d in (("data.img_data_dir", img_data_dir), ("data.shape_data_dir", shape_data_dir)):
                if d is None or not os.path.isdir(d):
                    raise ShapeLabError(f"{key} {d}: no such folder")
            pairs = [(img_data_dir, shape_data_dir)]
        self.size, self.n_points, self.no_alpha, self.split = int(img_size), int(n_points), no_alpha, split
        want = "train" if split == "train" else "held_out"
        self.shapes, self.images = [], []              # [(name, dir)], [(path, shape index or -1)]
        for img_dir, shape_dir in pairs:
            ids = genren_io.list_shapes(shape_dir) if os.path.isdir(shape_dir) else []
            index = {}
            for sid in ids:
                if split_of(sid, held_out) == want:
                    index[sid] = len(self.shapes)
                    self.shapes.append((sid, shape_dir))
            for path in (genren_io.list_images(img_dir) if os.path.isdir(img_dir) else []):
                stem = os.path.splitext(os.path.basename(path))[0]
                key = shape_key_of_image(stem, set(ids))
                if split_of(key, held_out) == want:
                    self.images.append((path, index.get(key, -1)))
        where = root if root is not None else f"{img_data_dir} + {shape_data_dir}"
        if not self.images or not self.shapes:
            raise ShapeLabError(f"genren data {where}: split '{split}' has {len(self.images)} images and "
                                f"{len(self.shapes)} shapes (need both; data.held_out={held_out})")
        if max_items is not None:
            self.images = self.images[:int(max_items)]
        self._clouds = [self._load_shape(i) for i in range(len(self.shapes))]      # checks every shape file
        self._pixels = {}
        for i in range(len(self.images)):                                          # checks every image
            self._image(i)

    def _load_shape(self, i):
        sid, d = self.shapes[i]
        pts, nrm = genren_io.read_shape(d, sid)
        if len(pts) < self.n_points:
            raise ShapeLabError(f"{d}/{sid}.PC.pt: {len(pts)} points, data.n_pc_points={self.n_points} asked for")
        pts, _, _ = normalize_cloud(pts)
        return pts, F.normalize(nrm, dim=1)

    def _image(self, i):
        if i not in self._pixels:
            x = load_rgba(self.images[i][0], self.size, self.no_alpha)
            self._pixels[i] = ((x + torch.tensor([1.0, 1.0, 1.0, 0.0])[:, None, None]) * 127.5
                               * torch.tensor([1.0, 1.0, 1.0, 2.0])[:, None, None]).round().to(torch.uint8)
        u = self._pixels[i].float()
        return torch.cat([u[:3] / 127.5 - 1.0, u[3:] / 255.0], 0)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        path, own = self.images[idx]
        if self.split == "train":
            s = int(np.random.randint(len(self.shapes)))
            rng = np.random
        else:
            s = own if own >= 0 else idx % len(self.shapes)
            rng = np.random.default_rng(idx)
        pts, nrm = self._clouds[s]
        sel = torch.from_numpy(rng.choice(len(pts), self.n_points, replace=False))
        return {"image": self._image(idx), "points": pts[sel], "normals": nrm[sel], "has_shape": own >= 0,
                "image_name": os.path.basename(path), "shape_name": self.shapes[s][0]}


def build_dataset(cfg, split):
    return GenrenUnpairedDataset(split, root=cfg["root"], categories=cfg["categories"],
                                 img_data_dir=cfg["img_data_dir"], shape_data_dir=cfg["shape_data_dir"],
                                 img_size=cfg["img_size"], n_points=cfg["n_pc_points"], held_out=cfg["held_out"],
                                 no_alpha=cfg["no_alpha"], max_items=None if split == "train" else cfg["val_items"])


# ============================================================================ the task

def _best(x, idx):
    """x (B,H,...) -> (B,...) at hypothesis idx (B,)."""
    return x[torch.arange(x.shape[0], device=x.device), idx]


def _set_lr(optim, name, lr):
    """Set an optimizer's learning rate for this step (the mesh-AE milestones), robust to the engine's LambdaLR."""
    sched = optim.schedulers[name]
    sched.base_lrs = [lr for _ in sched.base_lrs]
    for group in optim.optimizers[name].param_groups:
        group["lr"] = lr


class GenRenTask(Task):
    """The cycle-consistent generative renderer's schedule through the engine's manual optimisation.

    Optimizers (task.optimizers.<name>): mesh_ae, generator, image_critic, shape_critic, texture_critic,
    cptc_critic. Logs every loss term as train/<phase>/<term>, the phase index and the cycle-2 weight."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self._topology = None
        self._lr_mesh_ae = cfg["optimizers"]["mesh_ae"]["lr"]

    # -- bookkeeping -------------------------------------------------------------------------------------------
    def parameter_groups(self, model):
        c = model.critics
        return {"mesh_ae": model.mesh_ae_parameters(), "generator": model.generator_parameters(),
                "image_critic": list(c["image"].parameters()), "shape_critic": list(c["shape"].parameters()),
                "texture_critic": list(c["texture"].parameters()), "cptc_critic": list(c["cptc"].parameters())}

    def boundaries(self):
        c = self.cfg
        b1 = c["chamfer_only_iters"]
        b2 = b1 + c["stage_2_pretrain_iters"]
        b3 = b2 + c["mode_1_iters"]
        return b1, b2, b3, b3 + c["mode_2_iters"]

    def phase(self, step):
        """Name of the phase of generator step `step` (0-based)."""
        return PHASES[sum(step >= b for b in self.boundaries())]

    def cy2_weight(self, step):
        c, (_, b2, _, _) = self.cfg, self.boundaries()
        if c["cy2_annealing_period"] == 0:
            return 1.0
        prog = (step - b2) / c["cy2_annealing_period"]
        return float(np.clip(prog + (1 - prog) * c["initial_cy2_weight"], 0.001, 0.999))

    def cy1_balance(self, step):
        """(full cycle-1 weight, domain-randomised weight) in mode II: 0.01 -> 0.99 linearly."""
        _, _, b3, _ = self.boundaries()
        prog = (step - b3) / max(1, self.cfg["mode_2_iters"])
        full = 0.01 * (1 - prog) + 0.99 * prog
        return full, 1.0 - full

    def topology(self, model):
        if self._topology is None:
            self._topology = L.mesh_topology(model.template_faces.cpu(), model.nV)
        return self._topology

    # -- loss pieces -----------------------------------------------------------------------------------------------
    def mesh_terms(self, model, verts, delta, v, points, normals, half_mesh_reg=True):
        c, topo = self.cfg, self.topology(model)
        cham, nrm = L.chamfer_and_normals(verts, model.template_faces, points, normals, c["n_template_point_samples"])
        return {"cham_o": c["w_cham_orig"] * cham, "normals_o": c["w_normals_orig"] * nrm,
                "mesh_reg": c["w_mesh_reg"] * L.mesh_regularization(verts, topo) / (2.0 if half_mesh_reg else 1.0),
                "delta_reg": c["w_delta_reg"] * L.perturbation_variance(delta, model.template_faces),
                "v_reg": c["w_v_reg"] * L.sliced_wasserstein_to_normal(v, c["v_swd_nprojs"])}

    def cycle1_common(self, model, fwd, back, points, normals):
        c = self.cfg
        terms = self.mesh_terms(model, fwd["verts"], fwd["delta"], fwd["v"], points, normals)
        terms.update(
            l2_con=c["w_l2_con"] * (fwd["verts"].detach() - back["verts"]).pow(2).mean(),
            v_recon=c["w_v_recon"] * (fwd["v"].detach() - back["v"]).abs().mean(),
            rot_recon=c["w_rot_recon"] * L.weighted_rotation_loss(fwd["R"].detach(), back["R"], back["probs"]),
            t_recon=c["w_t_recon"] * (fwd["t"].detach() - back["t"]).pow(2).mean(),
            rot_div=c["w_R_negent"] * L.rotation_negentropy(back["R"], back["probs"]))
        return terms

    def dr_cycle1_loss(self, model, points, normals):
        out = model.cycle_1_domain_randomized(points, normals)
        fwd, back = out["forward"], out["back"]
        terms = self.cycle1_common(model, fwd, back, points, normals)
        terms["tex_recon"] = self.cfg["w_texture_recon_PTS2_FDR"] * (
            fwd["colors"][:, None].detach() - back["colors"]).abs().mean()
        return terms, out

    def full_cycle1_loss(self, model, points, normals, pose_adv):
        c = self.cfg
        out = model.cycle_1(points, normals)
        fwd, back = out["forward"], out["back"]
        terms = self.cycle1_common(model, fwd, back, points, normals)
        terms.update(
            adv_img=c["w_adv_img"] * -model.critics["image"](fwd["renders"]).mean(),
            recon_xi_T=c["w_xi_T"] * (fwd["xi_T"][:, None] - back["xi_T"]).pow(2).mean(),
            adv_tex=c["w_texture_realism"] * -model.critics["texture"](fwd["texture_image"]).mean())
        if pose_adv:
            terms["pose_adv"] = c["w_pose_adv"] * L.pose_distribution_loss(
                fwd["R"][:, 0], fwd["t"][:, 0], model.pose_buffer_R, model.pose_buffer_t)
        return terms, out

    def cycle2_loss(self, model, images):
        c, topo = self.cfg, self.topology(model)
        out = model.cycle_2(images)
        B, H = out["probs"].shape
        best = model.best_hypothesis(out).detach()
        xi_best = _best(out["xi_T"], best)
        crit = model.critics["image"]
        with torch.no_grad():
            real_feats = [f.repeat_interleave(H, dim=0) for f in crit.features(images)]
        fake_feats = crit.features(out["renders"].flatten(0, 1))
        terms = {
            "img_l1": c["w_img_recon_l1"] * L.weighted_image_l1(images, out["renders"], out["probs"]),
            "img_pd": c["w_img_recon_pd"] * L.weighted_feature_distance(real_feats, fake_feats, out["probs"]),
            "rot_div": c["w_R_negent"] * L.rotation_negentropy(out["R"], out["probs"]),
            "shape_adv": c["w_shape_adv_loss"] * -model.critics["shape"](out["v"], out["verts"]).mean(),
            "xi_T_reg": c["w_xi_T_adv_loss"] * L.sliced_wasserstein_to_normal(xi_best, c["num_swd_projections_xi_T"]),
            "mesh_reg": c["w_mesh_reg"] * L.mesh_regularization(out["verts"], topo),
            "delta_reg": c["w_delta_reg"] * L.perturbation_variance(out["delta"], model.template_faces),
            "v_reg": c["w_v_reg_cy2"] * L.sliced_wasserstein_to_normal(out["v"], c["v_swd_nprojs"]),
            "xi_T_match": c["w_hyp_xi_T_match"] * (xi_best.detach()[:, None] - out["xi_T"]).pow(2).mean(),
            "t_match": c["w_hyp_t_match"] * (_best(out["t"], best).detach()[:, None] - out["t"]).pow(2).mean(),
            "adv_cptc": c["w_adversarial_cptc_cy2"] * -L.rotation_angle(
                model.critics["cptc"](_best(out["texture_images"], best)), _best(out["R"], best).detach()).mean()}
        return terms, out, best

    # -- critics ---------------------------------------------------------------------------------------------------
    def wgan_step(self, optim, name, critic, real, fake, gp_weight):
        optim.zero_grad(name)
        mix = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device)
        loss = L.wgan_critic_loss_with_drift(critic(real), critic(fake), self.cfg["drift_mag_weight"]) \
            + gp_weight * gradient_penalty(critic, real, fake, mix)
        optim.backward(loss)
        optim.step(name)
        return float(loss.detach())

    def critic_steps(self, model, optim, phase, real_shape, c1, c2, best, images):
        c, logs = self.cfg, {}
        crit = model.critics
        # shape critic: real = shapes encoded from point clouds (cycle 1's v and mesh), fake = inferred from images
        sc = crit["shape"]
        optim.zero_grad("shape_critic")
        real = torch.cat([real_shape[0].detach(), sc.reduce(real_shape[1].detach().flatten(1))], 1)
        fake = torch.cat([c2["v"].detach(), sc.reduce(c2["verts"].detach().flatten(1))], 1)
        mix = torch.rand(real.shape[0], 1, device=real.device)
        loss = L.wgan_critic_loss_with_drift(sc.critic(real), sc.critic(fake), c["drift_mag_weight"]) \
            + c["shape_critic_gp_pen_weight"] * gradient_penalty(sc.critic, real.detach(), fake, mix)
        optim.backward(loss)
        optim.step("shape_critic")
        logs["critic/shape"] = float(loss.detach())
        # CPTC critic: predict the pose from the best inferred texture
        best_tex = _best(c2["texture_images"], best).detach()
        best_R = _best(c2["R"], best).detach()
        optim.zero_grad("cptc_critic")
        loss = L.rotation_angle(crit["cptc"](best_tex), best_R).mean()
        optim.backward(loss)
        optim.step("cptc_critic")
        logs["critic/cptc"] = float(loss.detach())
        if phase in ("mode_2", "mode_3"):
            # image critic: reals, each swapped for its best re-render with probability p; fakes = cycle-1 renders
            rerender = _best(c2["renders"], best).detach()
            swap = (torch.rand(images.shape[0], 1, 1, 1, device=images.device)
                    < c["img_critic_use_cy2_renders_chance"]).float()
            real_imgs = images * (1 - swap) + rerender * swap
            logs["critic/image"] = self.wgan_step(optim, "image_critic", crit["image"], real_imgs,
                                                  c1["forward"]["renders"].detach(), c["img_critic_gp_pen_weight"])
            logs["critic/texture"] = self.wgan_step(optim, "texture_critic", crit["texture"], best_tex,
                                                    c1["forward"]["texture_image"].detach(),
                                                    c["tex_critic_gp_pen_weight"])
            # pose buffer: the best hypotheses of cycle 2 replace random entries
            with torch.no_grad():
                n = min(best_R.shape[0], model.pose_buffer_R.shape[0])
                slots = torch.randperm(model.pose_buffer_R.shape[0], device=best_R.device)[:n]
                model.pose_buffer_R[slots] = best_R[:n]
                model.pose_buffer_t[slots] = _best(c2["t"], best).detach()[:n]
        return logs

    # -- one iteration -----------------------------------------------------------------------------------------------
    def training_step(self, model, batch, optim, step):
        c, phase = self.cfg, self.phase(step)
        points, normals, images = batch["points"], batch["normals"], batch["image"]
        logs = {"phase": float(PHASES.index(phase))}
        if phase == "mesh_ae":
            n_drops = sum(step >= m for m in c["gen_lr_pt1_ms"])
            _set_lr(optim, "mesh_ae", self._lr_mesh_ae * c["gen_lr_pt1_gamma"] ** n_drops)
            v = model.encode_shape(points, normals)
            delta, verts = model.deform(v)
            terms = self.mesh_terms(model, verts, delta, v, points, normals, half_mesh_reg=False)
            loss = sum(terms.values())
            check_finite(loss, step)
            optim.zero_grad("mesh_ae")
            optim.backward(loss)
            optim.step("mesh_ae")
            logs.update({f"mesh_ae/{k}": float(t.detach()) for k, t in terms.items()})
            return loss.detach(), logs

        optim.zero_grad("generator")
        if phase == "dr_pretrain":
            terms, _ = self.dr_cycle1_loss(model, points, normals)
            loss = sum(terms.values())
            check_finite(loss, step)
            optim.backward(loss)
            optim.step("generator")
            logs.update({f"dr/{k}": float(t.detach()) for k, t in terms.items()})
            return loss.detach(), logs

        # modes I-III: cycle 1 (domain-randomised, full, or both) + annealed cycle 2
        total, c1 = 0.0, None
        if phase in ("mode_1", "mode_2"):
            w_dr = 1.0 if phase == "mode_1" else self.cy1_balance(step)[1]
            dr_terms, dr_out = self.dr_cycle1_loss(model, points, normals)
            total = total + w_dr * sum(dr_terms.values())
            logs.update({f"dr/{k}": float(t.detach()) for k, t in dr_terms.items()})
            real_shape = (dr_out["forward"]["v"], dr_out["forward"]["verts"])
        if phase in ("mode_2", "mode_3"):
            w_full = 1.0 if phase == "mode_3" else self.cy1_balance(step)[0]
            c1_terms, c1 = self.full_cycle1_loss(model, points, normals, pose_adv=True)
            total = total + w_full * sum(c1_terms.values())
            logs.update({f"cy1/{k}": float(t.detach()) for k, t in c1_terms.items()})
            real_shape = (c1["forward"]["v"], c1["forward"]["verts"])
        w2 = self.cy2_weight(step)
        c2_terms, c2, best = self.cycle2_loss(model, images)
        total = total + w2 * sum(c2_terms.values())
        logs.update({f"cy2/{k}": float(t.detach()) for k, t in c2_terms.items()})
        logs["cy2_weight"] = w2
        check_finite(total, step)
        optim.backward(total)
        optim.step("generator")
        logs.update(self.critic_steps(model, optim, phase, real_shape, c1, c2, best, images))
        return total.detach(), logs

    # -- validation ------------------------------------------------------------------------------------------------
    def validate(self, model, batch):
        """Held-out images: vision cycle metrics (image -> shape after undoing the predicted pose against the image's
        own shape: ONet chamfer-L1 and F-score@1%; silhouette IoU and L1 of the best re-render) and the mesh AE's
        squared Chamfer on the held-out shapes (the pretraining objective)."""
        images, points, normals = batch["image"], batch["points"], batch["normals"]
        out = model.cycle_2(images)
        best = model.best_hypothesis(out)
        rer = _best(out["renders"], best)
        inter = ((rer[:, 3] > 0.5) & (images[:, 3] > 0.5)).flatten(1).sum(1).float()
        union = ((rer[:, 3] > 0.5) | (images[:, 3] > 0.5)).flatten(1).sum(1).float().clamp_min(1)
        v = model.encode_shape(points, normals)
        _, ae_verts = model.deform(v)
        ae, _ = L.chamfer_and_normals(ae_verts, model.template_faces, points, normals,
                                      self.cfg["n_template_point_samples"])
        res = {"silhouette_iou": float((inter / union).mean()), "image_l1": float((images - rer).abs().mean()),
               "ae_chamfer": float(ae)}
        has = batch["has_shape"]
        if bool(has.any()):
            faces = model.template_faces.cpu().numpy()
            cl1, fs = [], []
            for i in torch.nonzero(has).flatten().tolist():
                m = eval_mesh((out["verts"][i].cpu().numpy(), faces), points[i].cpu().numpy(),
                              normals[i].cpu().numpy(), n_samples=2000)
                cl1.append(m["chamfer-L1"])
                fs.append(m["f-score"])
            res.update({"chamfer_l1": float(np.mean(cl1)), "f_score": float(np.mean(fs))})
        res["loss"] = res.get("chamfer_l1", res["ae_chamfer"])
        return res

    def log_visuals(self, writer, model, batch, step):
        n = min(self.cfg["visuals"], batch["image"].shape[0])
        if n == 0:
            return
        writer.add_image("val/vision_cycle", reconstruction_grid(model, batch["image"][:n]), step)
        writer.add_image("val/graphics_cycle", graphics_grid(model, batch["points"][:n], batch["normals"][:n]), step)


def phase_lengths(cfg):
    """{phase: number of steps} for a task section (the last phase: until training.max_steps)."""
    t = GenRenTask(cfg)
    b = (0,) + t.boundaries()
    return {p: (b[i + 1] - b[i] if i + 1 < len(b) else math.inf) for i, p in enumerate(PHASES)}
