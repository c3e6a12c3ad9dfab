import pytest
import torch

import modules.families  # noqa: F401  (registers every family's models, datasets, tasks and generators)
from modules.families.pointnet.weights import load_segmenter


@pytest.fixture(scope="module")
def single_thread():  # the one single-thread fixture: use it, do not write another
    """Tiny tensors: one thread avoids oversubscription on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


RANDOM_SEGMENTER_WIDTH = 0.25


@pytest.fixture(scope="module")
def random_segmenter():
    """A quarter-width PointNet segmenter with seeded random weights (the NST and DeepDream tests)."""
    torch.manual_seed(0)
    return load_segmenter("none", RANDOM_SEGMENTER_WIDTH)
