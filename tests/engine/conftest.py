"""Engine tests run torch single-threaded: the CI machine has 2 shared cores, where torch's
spinning worker threads make tiny models ~10× slower, and results must not depend on it."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
