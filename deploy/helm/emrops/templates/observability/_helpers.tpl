{{/*
The label matchers (without braces) that pick this release's operator series in Prometheus:
observability.prometheusRule.selector, else the labels the chart's ServiceMonitor gives them
(prometheus-operator names the job after the Service and sets namespace to the Service's).
*/}}
{{- define "emrops.observability.selector" -}}
{{- with .Values.observability.prometheusRule.selector }}
{{- . }}
{{- else }}
{{- printf "job=%q,namespace=%q" (printf "%s-metrics" (include "emrops.fullname" .)) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
A Kubernetes memory quantity (128Mi, 1G, 268435456, 1.5Gi) in bytes, as an integer string; fails
the render on a form it cannot read rather than alert on a wrong limit.
*/}}
{{- define "emrops.observability.bytes" -}}
{{- $q := . -}}
{{- if kindIs "string" $q }}
{{- $units := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?([kMGTPE]|[KMGTPE]i)?$" $q) }}
{{- fail (printf "resources.limits.memory %q: the observability pack reads plain numbers with an optional suffix (k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei); write the limit that way" $q) }}
{{- end }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $suffix := trimPrefix $number $q }}
{{- printf "%.0f" (mulf (float64 $number) (get $units $suffix)) }}
{{- else }}
{{- printf "%.0f" (float64 $q) }}
{{- end }}
{{- end }}

{{/* The object labels of a pack object: its own labels win over the chart's (one mapping). */}}
{{- define "emrops.observability.labels" -}}
{{- merge (dict) .labels (include "emrops.labels" .root | fromYaml) (dict "app.kubernetes.io/component" "observability") | toYaml }}
{{- end }}
