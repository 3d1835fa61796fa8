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

{{- define "emrops.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
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
- apiGroups: ["emrops.io"]
  resources: ["serviceactions"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["emrops.io"]
  resources: ["serviceactions/status"]
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

{{/* Operator arguments, one flag per value; flags with their default value are still written, for clarity. */}}
{{- define "emrops.args" -}}
{{- range .Values.watchNamespaces }}
- --namespace={{ . }}
{{- end }}
{{- with .Values.labelSelector }}
- --label-selector={{ . }}
{{- end }}
{{- with .Values.emr.endpoint }}
- --emr-endpoint={{ . }}
{{- end }}
- --emr-network={{ .Values.emr.network }}
- --log-format={{ .Values.logging.format }}
- --log-level={{ .Values.logging.level }}
- --metrics-port={{ ternary .Values.metrics.port 0 .Values.metrics.enabled }}
- --health-port={{ .Values.health.port }}
- --rate-limit-qps={{ .Values.rateLimit.qps }}
- --rate-limit-burst={{ .Values.rateLimit.burst }}
- --poll-initial-seconds={{ .Values.polling.initialSeconds }}
- --poll-max-seconds={{ .Values.polling.maxSeconds }}
- --shutdown-grace={{ .Values.shutdownGraceSeconds }}
{{- with .Values.peering.name }}
- --peering={{ . }}
- --priority={{ $.Values.peering.priority }}
{{- end }}
{{- end }}

{{/*
Environment of the operator container: the default credentials (a Secret, or RRSA without the
webhook) and extraEnv. Secret values are referenced, never copied into the Deployment.
*/}}
{{- define "emrops.env" -}}
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
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Where the chart mounts the RRSA token when it configures RRSA itself (the webhook's path). */}}
{{- define "emrops.rrsaTokenDir" -}}
/var/run/secrets/ack.alibabacloud.com/rrsa-tokens
{{- end }}
