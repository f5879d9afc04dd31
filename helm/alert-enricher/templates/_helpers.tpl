{{/*
Names and labels, the conventional helpers of `helm create`.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "alert-enricher.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, used for every object. 63 characters: some Kubernetes name fields
are limited to that (DNS label). A release already named after the chart is not repeated.
*/}}
{{- define "alert-enricher.fullname" -}}
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

{{/* chart label: name-version. */}}
{{- define "alert-enricher.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "alert-enricher.labels" -}}
helm.sh/chart: {{ include "alert-enricher.chart" . }}
{{ include "alert-enricher.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: alert-enricher
{{- end }}

{{/* Labels that select the pod; immutable on a StatefulSet, so nothing version-specific. */}}
{{- define "alert-enricher.selectorLabels" -}}
app.kubernetes.io/name: {{ include "alert-enricher.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "alert-enricher.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "alert-enricher.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "alert-enricher.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The ConfigMap holding the catalog: the user's, or the chart's when content is inline. */}}
{{- define "alert-enricher.catalogConfigMap" -}}
{{- if .Values.catalog.existingConfigMap }}
{{- .Values.catalog.existingConfigMap }}
{{- else }}
{{- printf "%s-catalog" (include "alert-enricher.fullname" .) }}
{{- end }}
{{- end }}

{{/* Whether the catalog comes from a ConfigMap (otherwise: the one bundled in the image). */}}
{{- define "alert-enricher.catalogFromConfigMap" -}}
{{- if or .Values.catalog.content .Values.catalog.existingConfigMap }}true{{ end }}
{{- end }}

{{/* Whether any Secret is mounted (notifier credentials, webhook or admin auth). */}}
{{- define "alert-enricher.hasSecrets" -}}
{{- if or .Values.notifiers.existingSecret .Values.webhookAuth.bearerToken.existingSecret .Values.webhookAuth.basicAuth.existingSecret .Values.adminAuth.bearerToken.existingSecret (include "alert-enricher.database" .) }}true{{ end }}
{{- end }}

{{/* Whether the replicas share PostgreSQL (a Deployment) instead of an embedded SQLite store (a StatefulSet). */}}
{{- define "alert-enricher.database" -}}
{{- if or .Values.database.url .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{/* The Secret holding DATABASE_URL: the user's, or the chart's when database.url is set. */}}
{{- define "alert-enricher.databaseSecret" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "alert-enricher.fullname" .) }}
{{- end }}
{{- end }}

{{/* Replicas: as set; empty means 2 with a database, 1 without. */}}
{{- define "alert-enricher.replicas" -}}
{{- if ne (toString .Values.replicaCount) "" }}
{{- .Values.replicaCount }}
{{- else if include "alert-enricher.database" . }}2
{{- else }}1
{{- end }}
{{- end }}
