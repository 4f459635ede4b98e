"""Fixtures shared by several test files."""

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests: the models are tiny, and two threads spin-wait
    badly on a shared CPU. Use it with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
