"""ShapeNet-Part categories: synset ids, global part ids 0-49 and part names (Yi et al. 2016),
plus ShapeLab's `human` category (a DFAUST stand-in; its part ids start at 50) and the 8 ONet/R2N2
classes that ShapeNet-Part lacks (bench ... watercraft; part ids from 56 on).

The extra ONet classes have no ShapeNet-Part labels: their part names are ShapeLab's own (for part-coloured
pictures and the procedural data's labels), they are never written in the ShapeNet-Part layout, and
CATEGORIES / NUM_PART_CLASSES / global_to_category (the 16 classes, 50 ids of the PointNet classifier and
segmenter) do not include them. ALL_CATEGORIES (the meaning of `--categories all`) is unchanged; the named
sets `onet13` and `all+onet` (see NAMED_SETS) reach the extra classes.

Global part id = category offset + local label - 1, where local labels 1..k are what `.seg`
files store. Category index (0-15, alphabetical) is the PointNet one-hot position.
"""
import difflib

from modules.utils import ShapeLabError

# name: (synset, [part names in global-id order])
SHAPENET_PART = {
    "airplane": ("02691156", ["body", "wing", "tail", "engine"]),
    "bag": ("02773838", ["handle", "body"]),
    "cap": ("02954340", ["panels", "peak"]),
    "car": ("02958343", ["roof", "hood", "wheel", "body"]),
    "chair": ("03001627", ["back", "seat", "leg", "arm"]),
    "earphone": ("03261776", ["earcup", "headband", "data wire"]),
    "guitar": ("03467517", ["head", "neck", "body"]),
    "knife": ("03624134", ["blade", "handle"]),
    "lamp": ("03636649", ["base", "lampshade", "canopy", "tube"]),
    "laptop": ("03642806", ["keyboard", "screen"]),
    "motorbike": ("03790512", ["gas tank", "seat", "wheel", "handle", "light", "body"]),
    "mug": ("03797390", ["handle", "body"]),
    "pistol": ("03948459", ["barrel", "handle", "trigger and guard"]),
    "rocket": ("04099429", ["body", "fin", "nose"]),
    "skateboard": ("04225987", ["wheel", "deck", "belt for foot"]),
    "table": ("04379243", ["desktop", "leg", "support"]),
}
CATEGORIES = list(SHAPENET_PART)                      # index = PointNet one-hot position
NUM_SHAPES = len(CATEGORIES)
NUM_PART_CLASSES = 50

# Not part of ShapeNet-Part: the articulated body of the synthetic data (DFAUST stand-in).
HUMAN = ("human", "99999999", ["head", "torso", "left arm", "right arm", "left leg", "right leg"])

# ONet / 3D-R2N2 classes outside ShapeNet-Part (synsets as in ONet's metadata.yaml and R2N2's ShapeNet
# renderings); part names are ShapeLab's, not from any benchmark.
ONET_EXTRA = {
    "bench": ("02828884", ["seat", "leg", "back", "arm"]),
    "cabinet": ("02933112", ["body", "door", "drawer", "shelf", "leg"]),
    "display": ("03211117", ["screen", "frame", "stand", "base"]),
    "loudspeaker": ("03691459", ["cabinet", "driver", "stand"]),
    "rifle": ("04090263", ["barrel", "stock", "body", "magazine", "scope"]),
    "sofa": ("04256520", ["seat", "back", "arm", "cushion", "leg"]),
    "telephone": ("04401088", ["body", "screen", "handset", "keypad"]),
    "watercraft": ("04530566", ["hull", "deck", "cabin", "mast", "sail"]),
}
EXTRA_CATEGORIES = list(ONET_EXTRA)
# every category the generator knows; the position is the seed stream of modules.data.synth.shape_rng
# (append only: existing positions must never move, or same seed -> same bytes breaks)
SYNTH_CATEGORIES = CATEGORIES + [HUMAN[0]] + EXTRA_CATEGORIES
# the 13 ShapeNet classes of ONet / 3D-R2N2 / ConvONet (alphabetical by synset, as their metadata.yaml)
ONET13 = ["airplane", "bench", "cabinet", "car", "chair", "display", "lamp", "loudspeaker", "rifle", "sofa",
          "table", "telephone", "watercraft"]

_offsets = {}
_next = 0
for _name, (_synset, _parts) in SHAPENET_PART.items():
    _offsets[_name] = _next
    _next += len(_parts)
assert _next == NUM_PART_CLASSES
_offsets[HUMAN[0]] = NUM_PART_CLASSES
_next = NUM_PART_CLASSES + len(HUMAN[2])
for _name, (_synset, _parts) in ONET_EXTRA.items():
    _offsets[_name] = _next
    _next += len(_parts)

ALL_CATEGORIES = CATEGORIES + [HUMAN[0]]
SYNSETS = {name: syn for name, (syn, _) in SHAPENET_PART.items()}
SYNSETS[HUMAN[0]] = HUMAN[1]
SYNSETS.update({name: syn for name, (syn, _) in ONET_EXTRA.items()})
SYNSET_TO_NAME = {syn: name for name, syn in SYNSETS.items()}

# `preprocess.py synth --categories NAME`: named sets ('all' keeps its meaning: 16 ShapeNet-Part + human)
NAMED_SETS = {
    "all": ALL_CATEGORIES,
    "shapenet_part": CATEGORIES,
    "onet13": ONET13,
    "onet_extra": EXTRA_CATEGORIES,
    "all+onet": SYNTH_CATEGORIES,
}


def category_name(name_or_synset):
    """Normalise 'Chair', 'chair' or '03001627' to 'chair'; unknown names list the valid ones."""
    key = str(name_or_synset).strip().lower()
    if key in SYNSETS:
        return key
    if key in SYNSET_TO_NAME:
        return SYNSET_TO_NAME[key]
    close = difflib.get_close_matches(key, SYNTH_CATEGORIES, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ShapeLabError(f"unknown category '{name_or_synset}'{hint}; valid categories: {', '.join(SYNTH_CATEGORIES)}")


def category_list(text):
    """'chair,04256520' or a named set ('all', 'onet13', 'all+onet', ...; see NAMED_SETS) -> category names."""
    key = str(text or "all").strip().lower()
    if key in NAMED_SETS:
        return list(NAMED_SETS[key])
    names = [category_name(c) for c in key.split(",") if c.strip()]
    if not names:
        raise ShapeLabError(f"--categories '{text}': no category named; give names, synsets or one of "
                            f"{', '.join(NAMED_SETS)}")
    return names


def is_shapenet_part(name):
    """True for the 16 ShapeNet-Part categories (the only ones with .pts/.seg labels)."""
    return category_name(name) in SHAPENET_PART


def category_index(name):
    """One-hot position 0-15 (ShapeNet-Part categories only)."""
    name = category_name(name)
    if name not in CATEGORIES:
        raise ShapeLabError(f"category '{name}' is not one of the 16 ShapeNet-Part categories: {', '.join(CATEGORIES)}")
    return CATEGORIES.index(name)


def part_names(name):
    name = category_name(name)
    if name == HUMAN[0]:
        return HUMAN[2]
    return SHAPENET_PART[name][1] if name in SHAPENET_PART else ONET_EXTRA[name][1]


def part_ids(name):
    """Global part ids of a category, e.g. part_ids('chair') == [12, 13, 14, 15]."""
    name = category_name(name)
    return [_offsets[name] + i for i in range(len(part_names(name)))]


def part_table(name):
    """{global part id: part name} of a category."""
    return dict(zip(part_ids(name), part_names(name)))


def check_part_id(name, part_id):
    """Raise a ShapeLabError listing the valid ids and names when part_id is not in the category."""
    table = part_table(name)
    if int(part_id) not in table:
        valid = ", ".join(f"{i} ({n})" for i, n in table.items())
        raise ShapeLabError(f"part id {part_id} does not belong to category '{category_name(name)}'; valid part ids: {valid}")
    return int(part_id)


def global_to_category():
    """Array-like list: global part id (0-49) -> ShapeNet-Part category name."""
    out = []
    for name in CATEGORIES:
        out += [name] * len(part_names(name))
    return out
