-- Argo CD resource actions for emrops.io/ServiceAction: "rerun" asks emrops for one new run.
-- It is offered only once the current run has ended (Succeeded, Failed or Unknown); emrops
-- ignores a re-run request while a run is in flight anyway.
local actions = {}
local phase = nil
if obj.status ~= nil then
  phase = obj.status.phase
end
local finished = phase == "Succeeded" or phase == "Failed" or phase == "Unknown"
actions["rerun"] = {["disabled"] = not finished}
return actions
