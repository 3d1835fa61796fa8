"""Runtime.open and close: what open opened is closed, also when a later step of open fails."""

from __future__ import annotations

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
    assert emr._http.is_closed


async def test_close_closes_every_client_once(recorded: list[EmrClient]) -> None:
    runtime = await app.Runtime.open(_settings(0), _login)
    assert isinstance(runtime.api, ApiClient)
    await runtime.close()
    await runtime.close()  # kopf may call cleanup after a failed start too; a second close is a no-op
    assert recorded[0]._http.is_closed
    assert runtime.api._client.is_closed
