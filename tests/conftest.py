import torch
import pytest


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)  # tiny problems: threads only add latency
    yield
