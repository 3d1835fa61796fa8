"""``fixtures.promql``: the metric names and matchers of an expression, which the observability
tests check against a real operator's /metrics. A name it missed would go unchecked, and a
function or label name it took for a metric would fail those tests for nothing."""

from __future__ import annotations

import pytest

from fixtures.promql import Matcher, metric_names, selectors


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('max by (namespace, job) (up{job="a"}) == 0\nor\nabsent(up{job="a"})', {"up"}),
        (
            'sum by (namespace, job) (increase(emrops_operation_duration_seconds_count{job="a",'
            'phase="Failed"}[1h])) / sum by (namespace, job) (increase(x_total[1h])) > 0.25',
            {"emrops_operation_duration_seconds_count", "x_total"},
        ),
        (
            'histogram_quantile(0.95, sum by (le, action) (rate(h_bucket{a=~"b|c"}[5m])))',
            {"h_bucket"},
        ),
        ('a_total offset 5m and on (pod) group_left (node) b{c!="d"} unless bool c', {"a_total", "b", "c"}),
        ('{__name__="named", x="y"} * 1e3 + Inf', {"named"}),
        ('{__name__=~"emrops_.+"}', set()),
        ("sum without (instance) (rate(a:recorded:rate5m[5m] @ start()))", {"a:recorded:rate5m"}),
        ('count(x{l="has } and { and \\" inside"}) # a comment naming not_a_metric', {"x"}),
        ('max(emrops_serviceactions{phase="Unknown"}) or vector(0)', {"emrops_serviceactions"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_matchers_are_read_with_their_operator_and_unquoted_value() -> None:
    (selector,) = selectors('rate(a_total{job="j",code!="OK",phase=~"Queued|Pending",x!~`y\\z`}[5m])')
    assert selector.name == "a_total"
    assert selector.matchers == [
        Matcher("job", "=", "j"),
        Matcher("code", "!=", "OK"),
        Matcher("phase", "=~", "Queued|Pending"),
        Matcher("x", "!~", "y\\z"),
    ]


def test_an_unsubstituted_grafana_variable_is_an_error() -> None:
    with pytest.raises(ValueError, match="rate_interval"):
        selectors("rate(a_total[$__rate_interval])")
