import numpy as np
import pytest
import torch

from sekd.data import Corpus


@pytest.fixture(scope="session")
def corpus():
    return Corpus()


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    np.random.seed(0)


@pytest.fixture
def speech(corpus):
    from sekd.data import read_audio

    return read_audio(corpus.select(kind="speech", dataset="grid", split="test")[0].path)
