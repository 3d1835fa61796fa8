-- Argo CD resource actions for emrops.io/ServiceAction: "rerun" asks emrops for one new run.
-- It is enabled only once emrops has observed the current generation (status.observedGeneration
-- equals metadata.generation) and that run has ended (Succeeded, Failed or Unknown). Before that,
-- the phase shown may belong to an older spec whose run emrops is about to replace; and emrops
-- ignores a re-run request while a run is in flight anyway.
-- Runs in Argo CD's restricted Lua (see health.lua); tested in
-- tests/unit/deploy/test_deploy_argocd_lua.py.
local actions = {}
local status = obj.status
local observed = false
local finished = false
if status ~= nil then
  observed = status.observedGeneration ~= nil and status.observedGeneration == obj.metadata.generation
  local phase = status.phase
  finished = phase == "Succeeded" or phase == "Failed" or phase == "Unknown"
end
actions["rerun"] = {["disabled"] = not (observed and finished)}
return actions
