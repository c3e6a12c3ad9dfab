import pytest
import torch


@pytest.fixture(scope="module")
def single_thread():
    """Tiny tensors: one thread avoids oversubscription on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
