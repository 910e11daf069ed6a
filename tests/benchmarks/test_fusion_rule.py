"""The rule benchmarks/fusion.py uses to pick the library's default fusion."""

from __future__ import annotations

from benchmarks.fusion import choose


def test_a_fusion_measurably_below_the_best_single_mode_anywhere_is_out() -> None:
    per_path = {
        "a": {"hybrid-rrf": (-0.002, -0.007, 0.003), "hybrid-m3": (0.007, 0.003, 0.011)},
        "b": {"hybrid-rrf": (0.098, 0.082, 0.114), "hybrid-m3": (-0.17, -0.19, -0.15)},
    }
    assert choose(per_path) == "hybrid-rrf"


def test_the_best_mean_over_paths_wins_among_the_eligible() -> None:
    per_path = {
        "a": {"hybrid-rrf": (0.001, -0.004, 0.006), "hybrid-dbsf": (0.004, -0.001, 0.009)},
        "b": {"hybrid-rrf": (0.010, -0.010, 0.030), "hybrid-dbsf": (0.020, 0.001, 0.040)},
    }
    assert choose(per_path) == "hybrid-dbsf"


def test_no_eligible_fusion_gives_none() -> None:
    per_path = {"a": {"hybrid-m3": (-0.1, -0.2, -0.05)}}
    assert choose(per_path) is None
    assert choose({}) is None
