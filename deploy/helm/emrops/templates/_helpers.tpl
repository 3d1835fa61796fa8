{{/* Chart name, overridable with nameOverride. */}}
{{- define "emrops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name, used for every object of the release. It contains the release name
so several releases (shards) can live side by side.
*/}}
{{- define "emrops.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "emrops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "emrops.labels" -}}
helm.sh/chart: {{ include "emrops.chart" . }}
{{ include "emrops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "emrops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "emrops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "emrops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "emrops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The operator image: by digest when image.digest is set, else by tag (default appVersion). */}}
{{- define "emrops.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The only rights emrops needs, in every namespace it watches. Keep this list in step with the
operator: tests/integration/deploy proves it is enough (the operator runs a ServiceAction with
this ServiceAccount's token) and not more (kubectl auth can-i).
  - serviceactions: kopf lists and watches them; it patches metadata (finalizer, annotations).
  - serviceactions/status: all our state lives in status (conditional patches; replace on conflict).
  - secrets: get only, the Secret a ServiceAction names in its own namespace (never list or watch).
  - events: posted by kopf and emrops, in both event APIs.
  - kopfpeerings: only with peering.name set, for kopf's presence records.
*/}}
{{- define "emrops.rules" -}}
# create: a ServiceActionSchedule's runs; delete: runs past ttlSecondsAfterFinished or past a schedule's history limits
- apiGroups: ["emrops.io"]
  resources: ["serviceactions"]
  verbs: ["get", "list", "watch", "patch", "create", "delete"]
- apiGroups: ["emrops.io"]
  resources: ["serviceactions/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["emrops.io"]
  resources: ["serviceactionschedules"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["emrops.io"]
  resources: ["serviceactionschedules/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.peering.name }}
- apiGroups: ["kopf.dev"]
  resources: [{{ ternary "\"kopfpeerings\"" "\"clusterkopfpeerings\"" (gt (len .Values.watchNamespaces) 0) }}]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- end }}

{{/*
The operator settings the chart passes as flags, one [flag, EMROPS_* variable, value] row each (a
row whose value is "" is not passed). The operator reads every flag from its variable too, and a
flag wins over its variable, so emrops.args leaves out the flag of every variable extraEnv sets:
the value given in extraEnv takes effect. Numbers are written as integers where the operator
parses integers (a float64 of 1e7 would print as 1e+07).
*/}}
{{- define "emrops.settings" -}}
{{- $v := .Values -}}
{{- toYaml (list
  (list "--label-selector" "EMROPS_LABEL_SELECTOR" (toString $v.labelSelector))
  (list "--emr-endpoint" "EMROPS_EMR_ENDPOINT" (toString $v.emr.endpoint))
  (list "--emr-network" "EMROPS_EMR_NETWORK" (toString $v.emr.network))
  (list "--emr-call-timeout" "EMROPS_EMR_CALL_TIMEOUT" (toString $v.emr.callTimeoutSeconds))
  (list "--log-format" "EMROPS_LOG_FORMAT" (toString $v.logging.format))
  (list "--log-level" "EMROPS_LOG_LEVEL" (toString $v.logging.level))
  (list "--rate-limit-qps" "EMROPS_RATE_LIMIT_QPS" (toString $v.rateLimit.qps))
  (list "--rate-limit-burst" "EMROPS_RATE_LIMIT_BURST" (toString (int64 $v.rateLimit.burst)))
  (list "--poll-initial-seconds" "EMROPS_POLL_INITIAL_SECONDS" (toString $v.polling.initialSeconds))
  (list "--poll-max-seconds" "EMROPS_POLL_MAX_SECONDS" (toString $v.polling.maxSeconds))
  (list "--leader-elect-lease-duration" "EMROPS_LEADER_ELECT_LEASE_DURATION" (ternary (toString $v.leaderElection.leaseDurationSeconds) "" $v.leaderElection.enabled))
  (list "--leader-elect-renew-deadline" "EMROPS_LEADER_ELECT_RENEW_DEADLINE" (ternary (toString $v.leaderElection.renewDeadlineSeconds) "" $v.leaderElection.enabled))
  (list "--leader-elect-retry-period" "EMROPS_LEADER_ELECT_RETRY_PERIOD" (ternary (toString $v.leaderElection.retryPeriodSeconds) "" $v.leaderElection.enabled))
  (list "--priority" "EMROPS_PRIORITY" (ternary (toString (int64 $v.peering.priority)) "" (ne $v.peering.name "")))
) }}
{{- end }}

{{/*
The settings other objects of the chart follow from: [flag, EMROPS_* variable, what to do instead].
emrops.validate refuses them in extraEnv and extraArgs, where they would silently break what the
chart built from the value (RBAC, ports, probes, grace period).
*/}}
{{- define "emrops.fixedSettings" -}}
{{- toYaml (list
  (list "--namespace" "EMROPS_NAMESPACES" "set watchNamespaces instead (the RBAC follows it)")
  (list "--metrics-port" "EMROPS_METRICS_PORT" "set metrics.enabled and metrics.port instead (the container port and the Service follow them)")
  (list "--health-port" "EMROPS_HEALTH_PORT" "set health.port instead (the probes follow it)")
  (list "--shutdown-grace" "EMROPS_SHUTDOWN_GRACE" "set shutdownGraceSeconds instead (terminationGracePeriodSeconds follows it)")
  (list "--peering" "EMROPS_PEERING" "set peering.name instead (the RBAC follows it)")
  (list "--leader-elect" "EMROPS_LEADER_ELECT" "set leaderElection.enabled instead (the Lease RBAC follows it)")
  (list "--leader-election-namespace" "EMROPS_LEADER_ELECTION_NAMESPACE" "the Lease lives in the release namespace, where the chart grants access to it")
  (list "--leader-election-id" "EMROPS_LEADER_ELECTION_ID" "the Lease is named after the release, as the chart's RBAC expects")
  (list "--tenancy-policy" "EMROPS_TENANCY_POLICY" "set tenancy.operatorIdentity and tenancy.secretCredentials instead (the chart mounts the policy it renders from them)")
) }}
{{- end }}

{{/* Names of the variables extraEnv sets. */}}
{{- define "emrops.extraEnvNames" -}}
{{- $names := list }}
{{- range .Values.extraEnv }}
{{- $names = append $names .name }}
{{- end }}
{{- toYaml $names }}
{{- end }}

{{/* Operator arguments: the fixed settings, every other setting extraEnv does not set, extraArgs. */}}
{{- define "emrops.args" -}}
{{- $fromEnv := include "emrops.extraEnvNames" . | fromYamlArray }}
{{- range .Values.watchNamespaces }}
- {{ printf "--namespace=%s" . | quote }}
{{- end }}
- {{ printf "--metrics-port=%v" (ternary .Values.metrics.port 0 .Values.metrics.enabled) | quote }}
- {{ printf "--health-port=%v" .Values.health.port | quote }}
- {{ printf "--shutdown-grace=%v" .Values.shutdownGraceSeconds | quote }}
{{- if .Values.leaderElection.enabled }}
- "--leader-elect=true"
- {{ printf "--leader-election-namespace=%s" .Release.Namespace | quote }}
- {{ printf "--leader-election-id=%s" (include "emrops.fullname" .) | quote }}
{{- end }}
{{- with .Values.peering.name }}
- {{ printf "--peering=%s" . | quote }}
{{- end }}
- {{ printf "--tenancy-policy=%s/%s" (include "emrops.tenancyDir" .) "policy.yaml" | quote }}
{{- range $row := include "emrops.settings" . | fromYamlArray }}
{{- if and (ne (index $row 2) "") (not (has (index $row 1) $fromEnv)) }}
- {{ printf "%s=%s" (index $row 0) (index $row 2) | quote }}
{{- end }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Environment of the operator container: the chart's own (emrops.chartEnv) and extraEnv.
*/}}
{{- define "emrops.env" -}}
{{- include "emrops.chartEnv" . }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The chart's own variables: the pod's name and namespace (the downward API), and the default
credentials (a Secret, or RRSA without the webhook). Secret values are referenced, never copied
into the Deployment.
*/}}
{{- define "emrops.chartEnv" -}}
# Who this replica is and where it runs: the Lease's holder identity and namespace.
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with .Values.credentials.existingSecret }}
- name: ALIBABA_CLOUD_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.credentials.accessKeyIdKey }}
- name: ALIBABA_CLOUD_ACCESS_KEY_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.credentials.accessKeySecretKey }}
{{- with $.Values.credentials.securityTokenKey }}
- name: ALIBABA_CLOUD_SECURITY_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.credentials.existingSecret }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- if and .Values.rrsa.enabled .Values.rrsa.roleArn }}
- name: ALIBABA_CLOUD_ROLE_ARN
  value: {{ .Values.rrsa.roleArn | quote }}
- name: ALIBABA_CLOUD_OIDC_PROVIDER_ARN
  value: {{ .Values.rrsa.oidcProviderArn | quote }}
- name: ALIBABA_CLOUD_OIDC_TOKEN_FILE
  value: {{ include "emrops.rrsaTokenDir" . }}/token
{{- end }}
{{- end }}

{{/* Where the chart mounts the tenancy policy (templates/tenancy/configmap.yaml). */}}
{{- define "emrops.tenancyDir" -}}
/etc/emrops/tenancy
{{- end }}

{{/* Where the chart mounts the RRSA token when it configures RRSA itself (the webhook's path). */}}
{{- define "emrops.rrsaTokenDir" -}}
/var/run/secrets/ack.alibabacloud.com/rrsa-tokens
{{- end }}

{{/*
What values.schema.json cannot say: rules across values, and the extraEnv / extraArgs entries the
chart refuses. Rendered by templates/validate.yaml; a broken rule fails the render with a message
naming the values to change.
*/}}
{{- define "emrops.validate" -}}
{{- $v := .Values }}
{{- if and (gt (int $v.replicaCount) 1) (not $v.leaderElection.enabled) }}
{{- fail (printf "replicaCount is %v but leaderElection.enabled is false: replicas without leader election would all work at once; enable leaderElection (one leads, the others stand by)" $v.replicaCount) }}
{{- end }}
{{- with $v.leaderElection }}
{{- if not (and (lt (float64 .retryPeriodSeconds) (float64 .renewDeadlineSeconds)) (lt (float64 .renewDeadlineSeconds) (float64 .leaseDurationSeconds))) }}
{{- fail (printf "leaderElection needs retryPeriodSeconds (%v) < renewDeadlineSeconds (%v) < leaseDurationSeconds (%v): a leader must give up before a standby may take over" .retryPeriodSeconds .renewDeadlineSeconds .leaseDurationSeconds) }}
{{- end }}
{{- end }}
{{- if gt (float64 $v.polling.initialSeconds) (float64 $v.polling.maxSeconds) }}
{{- fail (printf "polling.initialSeconds (%v) is above polling.maxSeconds (%v): the delay between polls starts at initialSeconds and grows up to maxSeconds" $v.polling.initialSeconds $v.polling.maxSeconds) }}
{{- end }}
{{- if and $v.metrics.enabled (eq (int64 $v.metrics.port) (int64 $v.health.port)) }}
{{- fail (printf "metrics.port and health.port are both %v: the operator serves /metrics and /healthz on two different ports" $v.health.port) }}
{{- end }}
{{- $tunable := dict }}
{{- range $row := include "emrops.settings" . | fromYamlArray }}
{{- $_ := set $tunable (index $row 1) (index $row 0) }}
{{- end }}
{{- $fixed := include "emrops.fixedSettings" . | fromYamlArray }}
{{- $chartEnv := list }}
{{- range include "emrops.chartEnv" . | fromYamlArray }}
{{- $chartEnv = append $chartEnv .name }}
{{- end }}
{{- $seen := dict }}
{{- range $v.extraEnv }}
{{- $name := .name }}
{{- if hasKey $seen $name }}
{{- fail (printf "extraEnv sets %s twice" $name) }}
{{- end }}
{{- $_ := set $seen $name true }}
{{- if has $name (list "POD_NAME" "POD_NAMESPACE") }}
{{- fail (printf "extraEnv sets %s, which the chart already sets from the pod (the replica's identity and namespace for leader election)" $name) }}
{{- else if has $name $chartEnv }}
{{- fail (printf "extraEnv sets %s, which the chart already sets from credentials or rrsa" $name) }}
{{- end }}
{{- range $fixed }}
{{- if eq $name (index . 1) }}
{{- fail (printf "extraEnv sets %s: %s" $name (index . 2)) }}
{{- end }}
{{- end }}
{{- if and (hasPrefix "EMROPS_" $name) (not (hasKey $tunable $name)) }}
{{- fail (printf "extraEnv sets %s, which the operator does not read (a typo?); extraEnv may set %s" $name (keys $tunable | sortAlpha | join ", ")) }}
{{- end }}
{{- end }}
{{- range $arg := $v.extraArgs }}
{{- $flag := regexReplaceAll "=.*$" $arg "" }}
{{- range $fixed }}
{{- $refused := index . 0 }}
{{- /* argparse also takes an unambiguous prefix (--health for --health-port) and -n NS. */}}
{{- if or (and (hasPrefix "--" $flag) (gt (len $flag) 2) (hasPrefix $flag $refused)) (and (eq $refused "--namespace") (hasPrefix "-n" $arg)) }}
{{- fail (printf "extraArgs passes %s: %s" $arg (index . 2)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
