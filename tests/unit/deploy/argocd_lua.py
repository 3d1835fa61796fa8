"""Run deploy/argocd's Lua scripts as Argo CD does: in gopher-lua, or in lupa restricted the same way.

Argo CD runs argocd-cm scripts in gopher-lua (Lua 5.1) with only the package, base and table
libraries, and ``os`` only as ``require("os")`` with ``os.time`` and ``os.date`` (its util/lua).

- ``Harness`` is the judge: hack/argocd-lua/, a small Go program on gopher-lua that opens exactly
  those libraries, has Argo CD's ``os.date`` (``!`` is ignored when a time is given) and reads
  results the way Argo CD does. ``hack/argocd-lua.sh`` builds it once into the cache
  (``find_or_build_harness``); tests using it are integration tests.
- ``RestrictedLupa`` is the quick check for unit runs: PUC Lua 5.1 through lupa, with the same
  globals (``test_lupa_environment_matches_gopher_lua`` compares them), no string methods and the
  same ``require("os")``. Its ``os.date`` is real Lua's, so time-zone behaviour is the harness's.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from deploy_paths import ROOT
from lupa import lua51

from fixtures.builds import find_or_build

ARGOCD = ROOT / "deploy" / "argocd"
HEALTH = ARGOCD / "health.lua"
DISCOVERY = ARGOCD / "actions" / "discovery.lua"
RERUN = ARGOCD / "actions" / "rerun" / "action.lua"
BUILD_SCRIPT = ROOT / "hack" / "argocd-lua.sh"


class LuaError(Exception):
    """The script failed (Argo CD would show this error instead of a health or an action)."""


class Runtime(Protocol):
    name: str

    def health(self, script: Path, obj: Mapping[str, Any]) -> dict[str, str]: ...

    def discovery(self, script: Path, obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Action name -> its fields (at least ``disabled``)."""
        ...

    def action(self, script: Path, obj: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Any:
        """The object the action returns (the patch Argo CD applies)."""
        ...

    def eval(self, source: str, obj: Mapping[str, Any] | None = None) -> Any: ...


# --- gopher-lua --------------------------------------------------------------------------------


def find_or_build_harness() -> str:
    """``$EMROPS_ARGOCD_LUA``, else hack/argocd-lua.sh's cached build (built now when missing)."""
    return find_or_build("EMROPS_ARGOCD_LUA", BUILD_SCRIPT, "the Argo CD Lua harness", hint="make argocd-lua")


class Harness:
    """hack/argocd-lua: gopher-lua as Argo CD configures it, one process per run."""

    name = "gopher-lua"

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def run(
        self, mode: str, source: str, obj: Mapping[str, Any], env: Mapping[str, str] | None = None
    ) -> Any:
        request = json.dumps({"mode": mode, "script": source, "obj": obj})
        result = subprocess.run(
            [self.binary],
            input=request,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={**os.environ, **(env or {})},
        )
        response = json.loads(result.stdout)
        if "error" in response:
            raise LuaError(response["error"])
        return response["result"]

    def health(self, script: Path, obj: Mapping[str, Any]) -> dict[str, str]:
        result: dict[str, str] = self.run("health", script.read_text(), obj)
        return result

    def discovery(self, script: Path, obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        actions = self.run("discovery", script.read_text(), obj)
        return {a["name"]: {k: v for k, v in a.items() if k != "name"} for a in actions}

    def action(self, script: Path, obj: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Any:
        (impacted,) = self.run("action", script.read_text(), obj, env)
        assert impacted["operation"] == "patch"
        return impacted["resource"]

    def eval(self, source: str, obj: Mapping[str, Any] | None = None) -> Any:
        return self.run("eval", source, obj or {})


# --- lupa, restricted --------------------------------------------------------------------------

# A function of (source, obj) that runs source with only what gopher-lua's package, base and table
# libraries define as globals, `os` only through require, and strings without methods.
_RESTRICTED = """
return function(source, obj)
  local env = {}
  for _, name in ipairs({
    "assert", "collectgarbage", "error", "getfenv", "getmetatable", "ipairs", "module", "newproxy",
    "next", "pairs", "pcall", "print", "rawequal", "rawget", "rawset", "select", "setfenv",
    "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall",
  }) do
    env[name] = _G[name]
  end
  -- Code these load runs in the same restricted globals, as in gopher-lua.
  local function confined(loader)
    return function(...)
      local fn, err = loader(...)
      if fn ~= nil then setfenv(fn, env) end
      return fn, err
    end
  end
  env.load, env.loadstring, env.loadfile = confined(load), confined(loadstring), confined(loadfile)
  env.dofile = function(path) return confined(loadfile)(path)() end
  env._G, env._VERSION = env, _VERSION
  env.table = {}
  for _, name in ipairs({"concat", "getn", "insert", "maxn", "remove", "sort"}) do
    env.table[name] = table[name]
  end
  local safe_os = {date = os.date, time = os.time}
  env.package = {preload = {os = function() return safe_os end}, loaded = {}, loaders = {},
    path = package.path, cpath = "", config = package.config, loadlib = package.loadlib,
    seeall = package.seeall}
  env.require = function(name)
    if env.package.loaded[name] == nil then
      local loader = env.package.preload[name]
      if loader == nil then error("module " .. tostring(name) .. " not found") end
      env.package.loaded[name] = loader(name)
    end
    return env.package.loaded[name]
  end
  env.obj, env.actionParams = obj, {}
  debug.setmetatable("", nil)  -- without the string library a string has no methods
  local fn = assert(loadstring(source, "=script"))
  setfenv(fn, env)
  return fn()
end
"""


def lua_to_python(value: Any) -> Any:
    """A Lua table as a dict, or as a list when its keys are 1..n; other values as they are."""
    if type(value).__name__ == "_LuaTable":
        keys = list(value.keys())
        if keys and all(isinstance(k, int) for k in keys):
            return [lua_to_python(value[k]) for k in sorted(keys)]
        return {k: lua_to_python(v) for k, v in value.items()}
    return value


class RestrictedLupa:
    """PUC Lua 5.1 (lupa) with Argo CD's globals only; a fresh runtime per run."""

    name = "lupa"

    def run(self, source: str, obj: Mapping[str, Any]) -> Any:
        lua = lua51.LuaRuntime(unpack_returned_tuples=True, register_eval=False, register_builtins=False)
        runner = lua.execute(_RESTRICTED)
        try:
            return lua_to_python(runner(source, lua.table_from(dict(obj), recursive=True)))
        except lua51.LuaError as exc:
            raise LuaError(str(exc)) from exc

    def health(self, script: Path, obj: Mapping[str, Any]) -> dict[str, str]:
        result: dict[str, str] = self.run(script.read_text(), obj)
        return result

    def discovery(self, script: Path, obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = self.run(script.read_text(), obj)
        return result

    def action(self, script: Path, obj: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Any:
        assert not env, "lupa runs in this process: use the harness to vary the environment"
        return self.run(script.read_text(), obj)

    def eval(self, source: str, obj: Mapping[str, Any] | None = None) -> Any:
        return self.run(source, obj or {})
