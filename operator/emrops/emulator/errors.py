"""The one exception the emulator raises for an API error, rendered from ``emrops.acs.codes``."""

from __future__ import annotations

from typing import Any

from emrops.acs.codes import TABLE, ErrorCode


class EmulatorError(Exception):
    """An EMR error answer: a code of the shared table, the text for its ``%s`` and extra headers."""

    def __init__(self, code: str, detail: str = "", *, headers: dict[str, str] | None = None) -> None:
        if code not in TABLE:
            raise ValueError(f"unknown EMR error code {code!r}")
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        #: Set by the endpoint once the call has one, so the error body repeats the call's id.
        self.request_id: str | None = None
        super().__init__(f"{code}: {self.message}")

    @property
    def row(self) -> ErrorCode:
        return TABLE[self.code]

    @property
    def http_status(self) -> int:
        return self.row.http_status

    @property
    def message(self) -> str:
        template = self.row.message
        if "%s" in template:
            return " ".join(template.replace("%s", self.detail).split())
        if self.detail:
            return f"{template} {self.detail}"
        return template

    def body(self, request_id: str, host_id: str) -> dict[str, Any]:
        return {"RequestId": request_id, "HostId": host_id, "Code": self.code, "Message": self.message}
