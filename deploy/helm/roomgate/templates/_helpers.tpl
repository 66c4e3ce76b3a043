{{/* The name of every object: the release name, or release-chart when it does not contain the chart's name. */}}
{{- define "roomgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "roomgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "roomgate.labels" -}}
{{ include "roomgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The config's redis block: exactly one topology, plus durability when given. */}}
{{- define "roomgate.redis" -}}
{{- $r := .Values.redis -}}
{{- $topologies := 0 -}}
{{- if $r.url }}{{ $topologies = add1 $topologies }}{{ end -}}
{{- if $r.cluster.nodes }}{{ $topologies = add1 $topologies }}{{ end -}}
{{- if $r.sentinel.nodes }}{{ $topologies = add1 $topologies }}{{ end -}}
{{- if ne (int $topologies) 1 -}}
{{- fail "redis: set exactly one of redis.url, redis.cluster.nodes, redis.sentinel.nodes (to use cluster or sentinel, set redis.url to null)" -}}
{{- end -}}
{{- $block := dict -}}
{{- if $r.url -}}
{{- $_ := set $block "url" $r.url -}}
{{- else if $r.cluster.nodes -}}
{{- $cluster := dict "nodes" $r.cluster.nodes -}}
{{- with $r.cluster.password }}{{ $_ := set $cluster "password" . }}{{ end -}}
{{- $_ := set $block "cluster" $cluster -}}
{{- else -}}
{{- if not $r.sentinel.master }}{{ fail "redis.sentinel.master is required with redis.sentinel.nodes" }}{{ end -}}
{{- $sentinel := dict "master" $r.sentinel.master "nodes" $r.sentinel.nodes -}}
{{- with $r.sentinel.password }}{{ $_ := set $sentinel "password" . }}{{ end -}}
{{- $_ := set $block "sentinel" $sentinel -}}
{{- end -}}
{{- with $r.durability }}{{ $_ := set $block "durability" . }}{{ end -}}
{{- toYaml $block -}}
{{- end -}}

{{/* The whole routes.yaml: the chart writes version, listen, tls, redis and limits.shutdown_grace; the rest is .Values.config. */}}
{{- define "roomgate.config" -}}
{{- $listen := dict "http" (printf "0.0.0.0:%d" (int .Values.ports.http)) "admin" (printf "0.0.0.0:%d" (int .Values.ports.admin)) -}}
{{- $config := deepCopy .Values.config -}}
{{- if .Values.tls.secrets -}}
{{- $_ := set $listen "https" (printf "0.0.0.0:%d" (int .Values.ports.https)) -}}
{{- $certificates := list -}}
{{- range .Values.tls.secrets -}}
{{- $certificates = append $certificates (dict "cert" (printf "/etc/roomgate/tls/%s/tls.crt" .) "key" (printf "/etc/roomgate/tls/%s/tls.key" .)) -}}
{{- end -}}
{{- $tls := dict "certificates" $certificates -}}
{{- if not (kindIs "invalid" .Values.tls.defaultCertificate) }}{{ $_ := set $tls "default_certificate" (int .Values.tls.defaultCertificate) }}{{ end -}}
{{- $_ := set $config "tls" $tls -}}
{{- end -}}
{{- $limits := deepCopy (.Values.config.limits | default dict) -}}
{{- $_ := set $limits "shutdown_grace" (printf "%ds" (int .Values.shutdownGraceSeconds)) -}}
{{- $_ := set $config "limits" $limits -}}
{{- $_ := set $config "version" "v1" -}}
{{- $_ := set $config "listen" $listen -}}
{{- $_ := set $config "redis" (include "roomgate.redis" . | fromYaml) -}}
{{- toYaml $config -}}
{{- end -}}
