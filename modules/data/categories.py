"""ShapeNet-Part categories: synset ids, global part ids 0-49 and part names (Yi et al. 2016),
plus ShapeLab's `human` category (a DFAUST stand-in; its part ids start at 50).

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

_offsets = {}
_next = 0
for _name, (_synset, _parts) in SHAPENET_PART.items():
    _offsets[_name] = _next
    _next += len(_parts)
assert _next == NUM_PART_CLASSES
_offsets[HUMAN[0]] = NUM_PART_CLASSES

ALL_CATEGORIES = CATEGORIES + [HUMAN[0]]
SYNSETS = {name: syn for name, (syn, _) in SHAPENET_PART.items()}
SYNSETS[HUMAN[0]] = HUMAN[1]
SYNSET_TO_NAME = {syn: name for name, syn in SYNSETS.items()}


def category_name(name_or_synset):
    """Normalise 'Chair', 'chair' or '03001627' to 'chair'; unknown names list the valid ones."""
    key = str(name_or_synset).strip().lower()
    if key in SYNSETS:
        return key
    if key in SYNSET_TO_NAME:
        return SYNSET_TO_NAME[key]
    close = difflib.get_close_matches(key, ALL_CATEGORIES, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ShapeLabError(f"unknown category '{name_or_synset}'{hint}; valid categories: {', '.join(ALL_CATEGORIES)}")


def category_index(name):
    """One-hot position 0-15 (ShapeNet-Part categories only)."""
    name = category_name(name)
    if name not in CATEGORIES:
        raise ShapeLabError(f"category '{name}' is not one of the 16 ShapeNet-Part categories: {', '.join(CATEGORIES)}")
    return CATEGORIES.index(name)


def part_names(name):
    name = category_name(name)
    return HUMAN[2] if name == HUMAN[0] else SHAPENET_PART[name][1]


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
