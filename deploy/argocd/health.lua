-- Argo CD health check for emrops.io/ServiceAction.
-- Reads the kstatus conditions emrops writes (Ready, Reconciling, Stalled) and falls back on
-- status.phase, so an object is never shown Healthy before emrops has looked at its current spec.
-- Argo CD runs it in gopher-lua (Lua 5.1) with only the base, table and package libraries: no
-- string or math library, no string methods. Tested that way in
-- tests/unit/deploy/test_deploy_argocd_lua.py; installed by deploy/argocd/argocd-cm.yaml.
local hs = {}

local function condition(status, wanted)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == wanted then
      return c
    end
  end
  return nil
end

-- The first argument that is a non-empty string (arguments may be nil, so no ipairs).
local function first_message(...)
  for i = 1, select("#", ...) do
    local m = select(i, ...)
    if type(m) == "string" and m ~= "" then
      return m
    end
  end
  return nil
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for emrops to pick up the ServiceAction"
  return hs
end

-- A status written for an older generation says nothing about the current spec.
local generation = obj.metadata.generation
if status.observedGeneration == nil or (generation ~= nil and status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for emrops to observe the current generation"
  return hs
end

local phase = status.phase
local stalled = condition(status, "Stalled")
local ready = condition(status, "Ready")
local reconciling = condition(status, "Reconciling")

-- Failed, Unknown (outcome of the call unknown) and operations waiting for a human all stall.
if (stalled ~= nil and stalled.status == "True") or phase == "Failed" or phase == "Unknown" then
  hs.status = "Degraded"
  hs.message = first_message(stalled and stalled.message, status.message, "ServiceAction " .. tostring(phase))
  return hs
end

-- Waiting on purpose, with nothing in progress: for approval (spec.suspend) or for spec.notBefore.
if phase == "Suspended" or phase == "Scheduled" then
  hs.status = "Suspended"
  hs.message = first_message(status.message, phase)
  return hs
end

if (ready ~= nil and ready.status == "True") or phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = first_message(ready and ready.message, status.message, "Succeeded")
  return hs
end

-- Pending, Queued, Submitting, Running, or no phase yet.
hs.status = "Progressing"
hs.message = first_message(reconciling and reconciling.message, status.message, phase, "Waiting for emrops")
return hs
