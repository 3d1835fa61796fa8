"""The chart's Grafana dashboard, as a file: valid, laid out, and every query scoped to one release.

Its queries are parsed by promtool and their metrics checked against a real operator by the
integration tests (tests/integration/deploy/test_deploy_observability*.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fixtures.dashboard import DASHBOARD, load, panels, queries, variables_used
from fixtures.promql import selectors

BOARD = load()
QUERIES = queries(BOARD)
GRID_WIDTH = 24


def test_the_dashboard_is_json_with_a_stable_uid() -> None:
    json.loads(DASHBOARD.read_text())
    assert BOARD["uid"] == "emrops" and BOARD["title"] == "emrops"
    # Grafana rejects the dashboard in a ConfigMap if it carries an id from another Grafana.
    assert "id" not in BOARD


def test_panel_ids_are_unique_and_panels_do_not_overlap() -> None:
    ids = [p["id"] for p in panels(BOARD)]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels(BOARD):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_WIDTH, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


@pytest.mark.parametrize("panel", [p for p in panels(BOARD) if p["type"] != "row"], ids=lambda p: p["title"])
def test_every_panel_queries_the_chosen_data_source(panel: dict[str, Any]) -> None:
    assert panel["targets"], "a panel without a query"
    assert panel["description"], "say what the panel shows"
    for target in [panel, *panel["targets"]]:
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_every_variable_used_is_defined() -> None:
    defined = {v["name"] for v in BOARD["templating"]["list"]}
    assert defined == {"datasource", "namespace", "job"}
    used = variables_used(json.dumps(BOARD["panels"])) | variables_used(json.dumps(BOARD["templating"]))
    assert used <= defined, used - defined


@pytest.mark.parametrize(("title", "expr"), QUERIES, ids=[f"{t}: {e[:40]}" for t, e in QUERIES])
def test_every_series_is_scoped_to_the_chosen_namespace_and_job(title: str, expr: str) -> None:
    """One dashboard serves every release: a series from another release must never be mixed in."""
    for selector in selectors(expr):
        labels = {(m.label, m.op, m.value) for m in selector.matchers}
        assert ("namespace", "=", "emrops-system") in labels, (title, selector)
        assert ("job", "=~", "emrops-metrics") in labels, (title, selector)
