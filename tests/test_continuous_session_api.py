"""amun_plugin.continuous_session: the API's default host and array input."""

import numpy as np
import pytest
import torch

import amun_plugin
from amun_plugin.errors import InvalidInputError
from amun_plugin.unlearn.continuous import ContinuousSession
from tests.tiny_fixtures import TinyNet


def test_continuous_session_takes_arrays_and_the_default_host():
    torch.manual_seed(0)
    x = np.random.default_rng(0).random((40, 1, 4, 4), dtype=np.float32)
    y = np.arange(40) % 3
    session = amun_plugin.continuous_session(TinyNet(), (x, y), "ft", use_retain=True)
    assert isinstance(session, ContinuousSession)
    assert len(session.train) == 40 and session.plugins.unlearners.get("ft") is not None


def test_continuous_session_refuses_labels_beyond_the_model_outputs():
    x = np.zeros((10, 1, 4, 4), dtype=np.float32)
    with pytest.raises(InvalidInputError, match="outputs"):
        amun_plugin.continuous_session(TinyNet(), (x, np.full(10, 7)), "amun")
