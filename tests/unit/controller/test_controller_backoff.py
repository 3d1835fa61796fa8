"""Exponential backoff with full jitter, a cap and a retry-after floor."""

from __future__ import annotations

import random

import pytest

from emrops.controller.backoff import Backoff


class TestBackoff:
    @pytest.mark.parametrize(
        ("attempts", "ceiling"), [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (200, 60.0)]
    )
    def test_ceiling_doubles_up_to_the_cap(self, attempts: int, ceiling: float) -> None:
        assert Backoff(base=1.0, cap=60.0).ceiling(attempts) == ceiling

    def test_full_jitter_spans_zero_to_the_ceiling(self) -> None:
        policy = Backoff(base=2.0, cap=100.0)
        assert policy.delay(3, 0.0) == 0.0
        assert policy.delay(3, 1.0) == 8.0
        assert policy.delay(3, 0.25) == 2.0

    def test_retry_after_is_a_floor(self) -> None:
        policy = Backoff(base=1.0, cap=10.0)
        assert policy.delay(1, 0.5, floor=30.0) == 30.0
        assert policy.delay(5, 1.0, floor=3.0) == 10.0

    def test_sample_uses_the_injected_rng(self) -> None:
        rng = random.Random(7)
        expected = random.Random(7).random() * 4.0
        assert Backoff(base=1.0, cap=60.0).sample(3, rng=rng.random) == pytest.approx(expected)

    @pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (2.0, 1.0)])
    def test_rejects_bad_policies(self, base: float, cap: float) -> None:
        with pytest.raises(ValueError, match="base"):
            Backoff(base=base, cap=cap)

    def test_rejects_draws_outside_the_unit_interval(self) -> None:
        with pytest.raises(ValueError, match="jitter"):
            Backoff().delay(1, 1.5)
