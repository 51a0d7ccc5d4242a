{{/* The chart's name, trimmed to fit a DNS label. */}}
{{- define "kilod.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: "<release>-kilod", or the release name when it already says kilod. */}}
{{- define "kilod.fullname" -}}
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

{{- define "kilod.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kilod.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kilod.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kilod.labels" -}}
helm.sh/chart: {{ include "kilod.chart" . }}
{{ include "kilod.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The Secret whose keys become the daemon's environment (KILOD_TOKEN, model keys). */}}
{{- define "kilod.secretName" -}}
{{- default (include "kilod.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/* Host names the TCP listener accepts besides IP addresses: the Service's DNS names and http.allowedHosts. */}}
{{- define "kilod.allowedHosts" -}}
{{- $service := include "kilod.fullname" . }}
{{- $namespace := .Release.Namespace }}
{{- $names := list $service (printf "%s.%s" $service $namespace) (printf "%s.%s.svc" $service $namespace) (printf "%s.%s.svc.cluster.local" $service $namespace) }}
{{- concat $names .Values.http.allowedHosts | uniq | toJson }}
{{- end }}

{{- define "kilod.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Docker engine's socket as the daemon sees it. */}}
{{- define "kilod.dockerHost" -}}
{{- if eq .Values.docker.mode "dind" -}}
unix:///var/run/dind/docker.sock
{{- else -}}
unix:///var/run/docker.sock
{{- end }}
{{- end }}

{{/* Healthy = the API answers /healthz on its unix socket (the same check as the image's HEALTHCHECK). */}}
{{- define "kilod.healthCommand" -}}
- python
- -c
- "import socket,sys; from kilod.paths import socket_path; s=socket.socket(socket.AF_UNIX); s.settimeout(4); s.connect(str(socket_path())); s.sendall(b'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n'); sys.exit(0 if s.recv(64).split(b' ')[1:2] == [b'200'] else 1)"
{{- end }}

{{/* The helm test's check: GET $KILOD_URL/healthz with the bearer token must answer {"ok": true}. */}}
{{- define "kilod.testConnection" -}}
import json, os, urllib.request as r; url = os.environ['KILOD_URL']; q = r.Request(url + '/healthz', headers={'Authorization': 'Bearer ' + os.environ['KILOD_TOKEN']}); body = json.load(r.urlopen(q, timeout=15)); assert body.get('ok') is True, body; print('kilod', body.get('version'), 'answers on', url)
{{- end }}
