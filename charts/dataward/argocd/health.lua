-- Argo CD health check for dataward.io/PersonalDataStore.
--
-- Install it in the argocd-cm ConfigMap:
--   data:
--     resource.customizations.health.dataward.io_PersonalDataStore: |
--       <this file>
--
-- Healthy: the operator has seen the current spec and Ready is True.
-- Progressing: the operator has not reported on the current generation yet.
-- Degraded: Ready is False; the message is the first control that is not in force,
-- PolicyCompliant first (a store that breaks its policy is never purged).
-- Written for Lua 5.1 (Argo CD runs gopher-lua) and tested with real status objects.

local hs = {}

local function find_condition(conditions, condition_type)
  for _, condition in ipairs(conditions) do
    if condition.type == condition_type then
      return condition
    end
  end
  return nil
end

local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Dataward operator to report on this store"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the Dataward operator to observe generation " .. tostring(generation)
  return hs
end

local ready = find_condition(status.conditions, "Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or "All controls are in force"
  return hs
end

local controls = {
  "PolicyCompliant", "NetworkIsolated", "EncryptionKeyReady",
  "AccessRestricted", "PurgeScheduled", "PurgeSucceeded",
}
for _, control in ipairs(controls) do
  local condition = find_condition(status.conditions, control)
  if condition ~= nil and condition.status == "False" then
    hs.status = "Degraded"
    hs.message = control .. ": " .. (condition.message or condition.reason or "False")
    return hs
  end
end

if ready.status == "Unknown" then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = ready.message or ("Ready is " .. tostring(ready.status))
return hs
