import math

import numpy as np
import pytest

from ssl_backbones.schedules import WarmupCosine, lr_for_global_batch, target_decay


def test_target_decay_cosine_values():
    k_total = 100
    for k in (0, 25, 50, 75, 100):
        expected = 1 - (1 - 0.99) * (math.cos(math.pi * k / k_total) + 1) / 2
        assert float(target_decay(k, k_total, 0.99)) == pytest.approx(expected, abs=1e-7)
    assert float(target_decay(0, k_total, 0.99)) == pytest.approx(0.99)
    assert float(target_decay(50, k_total, 0.99)) == pytest.approx(0.995)
    assert float(target_decay(100, k_total, 0.99)) == pytest.approx(1.0)
    assert float(target_decay(150, k_total, 0.99)) == pytest.approx(1.0)


def test_warmup_cosine():
    s = WarmupCosine(peak_lr=1.0, warmup_steps=10, total_steps=110, final_lr=0.1)
    lrs = np.array([float(s(i)) for i in range(120)])
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[9] == pytest.approx(1.0)
    assert np.all(np.diff(lrs[:10]) > 0)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)), rel=1e-5)
    assert np.all(np.diff(lrs[10:110]) <= 1e-7)
    assert lrs[115] == pytest.approx(0.1)


def test_batch_size_scaling():
    assert lr_for_global_batch(0.3, 512, "linear") == pytest.approx(0.6)
    assert lr_for_global_batch(0.075, 4096, "sqrt") == pytest.approx(0.075 * 64)
    assert lr_for_global_batch(0.3, 512, "none") == 0.3
    with pytest.raises(ValueError):
        lr_for_global_batch(0.3, 512, "cubic")
