-- "rerun": set the emrops.io/run-requested-at annotation to the current time (UTC, RFC 3339).
-- Any new value asks emrops for one new run; status.runRequestedAt echoes the value it handled.
-- os.date gets no time argument on purpose: Argo CD's os.date honours "!" (UTC) only for the
-- current time; given one, as in os.date("!...", os.time()), it formats argocd-server's local time.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["emrops.io/run-requested-at"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
