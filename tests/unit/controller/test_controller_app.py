"""Runtime.open and close: what open opened is closed, also when a later step of open fails."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import kopf
import pytest

from emrops.controller import app
from emrops.controller.apiserver import ApiClient
from emrops.controller.settings import EmrSettings, ServeSettings, Settings
from emrops.emr.client import EmrClient


class _Recorded(EmrClient):
    """The real client; only remembers its instances so the test can look at them afterwards."""

    made: list[EmrClient] = []

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        _Recorded.made.append(self)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EmrClient]]:
    _Recorded.made = []
    monkeypatch.setattr(app, "EmrClient", _Recorded)
    yield _Recorded.made


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on, as the metrics server binds it (all addresses)."""
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))  # noqa: S104 - the same address the metrics server binds
        held.listen()
        yield held.getsockname()[1]


def _login() -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server="http://127.0.0.1:9", token="t")


def _settings(metrics_port: int) -> Settings:
    return Settings(
        emr=EmrSettings(endpoint="http://127.0.0.1:9"),
        serve=ServeSettings(metrics_port=metrics_port, health_port=0),
    )


async def test_a_failing_metrics_server_closes_the_emr_client(
    recorded: list[EmrClient], taken_port: int
) -> None:
    with pytest.raises(OSError):
        await app.Runtime.open(_settings(taken_port), _login)
    [emr] = recorded
    assert emr.closed


async def test_close_closes_every_client_once(recorded: list[EmrClient]) -> None:
    runtime = await app.Runtime.open(_settings(0), _login)
    assert isinstance(runtime.api, ApiClient)
    await runtime.close()
    await runtime.close()  # kopf may call cleanup after a failed start too; a second close is a no-op
    assert recorded[0].closed
    assert runtime.api.closed


@pytest.mark.parametrize("call_timeout", [0.5, 30.0, 300.0])
async def test_a_submission_fits_in_the_in_flight_grace(call_timeout: float) -> None:
    """Intent to call start, the call, and the clock skew between replicas: the grace, exactly.

    docs/operator.md ("The time budget of one EMR call") states this sum; a longer call or budget
    would let another replica declare a call lost while it may still land.
    """
    base = _settings(0)
    settings = dataclasses.replace(base, emr=dataclasses.replace(base.emr, call_timeout=call_timeout))
    runtime = await app.Runtime.open(settings, _login)
    try:
        services = runtime.supervisor.services
        assert services.intent_budget > 0
        spent = services.intent_budget + services.call_timeout + app.CLOCK_SKEW_MARGIN
        assert spent == app.policy_of(settings).submit_grace
        assert services.call_timeout > call_timeout, "the overall timeout is a backstop over the deadline"
    finally:
        await runtime.close()
