{{/*
Names, labels, images, the component's role, shutdown timing and security contexts. The pod
template the Deployments share is in _pod.tpl.
*/}}

{{- define "codexcontinue.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "codexcontinue.fullname" -}}
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

{{/* Name of a component's objects: the full name, with a suffix except for the API. */}}
{{- define "codexcontinue.componentName" -}}
{{- $full := include "codexcontinue.fullname" .root }}
{{- if eq .component "api" }}{{ $full }}{{ else }}{{ printf "%s-%s" ($full | trunc 56 | trimSuffix "-") .component }}{{ end }}
{{- end }}

{{- define "codexcontinue.selectorLabels" -}}
app.kubernetes.io/name: {{ include "codexcontinue.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "codexcontinue.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "codexcontinue.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector of one component's pods; (dict "root" $ "component" NAME). */}}
{{- define "codexcontinue.componentSelectorLabels" -}}
{{ include "codexcontinue.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Pods the API Service sends calls to: the API replicas and the GPU ones. */}}
{{- define "codexcontinue.servesApiLabel" -}}
codexcontinue/serves-api: "true"
{{- end }}

{{- define "codexcontinue.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "codexcontinue.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The migration Job's account: a hook object, since it runs before the release's own. */}}
{{- define "codexcontinue.migrationServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- printf "%s-migrations" (include "codexcontinue.fullname" . | trunc 52 | trimSuffix "-") }}
{{- else }}
{{- include "codexcontinue.serviceAccountName" . }}
{{- end }}
{{- end }}

{{/* repository[:tag][@digest] from an image block; (dict "image" BLOCK "tag" DEFAULT_TAG). */}}
{{- define "codexcontinue.imageRef" -}}
{{- $tag := default .tag .image.tag }}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* The image of a component: the GPU one is the CUDA variant ("<tag>-cuda"). */}}
{{- define "codexcontinue.image" -}}
{{- $img := .root.Values.image }}
{{- $tag := default .root.Chart.AppVersion $img.tag }}
{{- if eq .component "gpu" }}
{{- $gpu := .root.Values.gpu.image }}
{{- $repo := default $img.repository $gpu.repository }}
{{- include "codexcontinue.imageRef" (dict "image" (dict "repository" $repo "tag" $gpu.tag "digest" $gpu.digest) "tag" (printf "%s-cuda" $tag)) }}
{{- else }}
{{- include "codexcontinue.imageRef" (dict "image" $img "tag" $tag) }}
{{- end }}
{{- end }}

{{/* Whether an image is pinned by digest; same argument as codexcontinue.image. */}}
{{- define "codexcontinue.imagePinned" -}}
{{- if eq .component "gpu" }}{{ if .root.Values.gpu.image.digest }}true{{ end }}{{ else }}{{ if .root.Values.image.digest }}true{{ end }}{{ end }}
{{- end }}

{{/* `serve --role`: workers run the background work; API and GPU replicas leave it to
them when the worker Deployment is on, and do everything otherwise. */}}
{{- define "codexcontinue.role" -}}
{{- if eq .component "worker" }}worker{{ else if .root.Values.worker.enabled }}api{{ else }}all{{ end }}
{{- end }}

{{/* Seconds a pod may take to stop: above preStop + drain delay + shutdown grace. */}}
{{- define "codexcontinue.terminationGracePeriodSeconds" -}}
{{- $s := .Values.server.shutdown }}
{{- $needed := add $s.preStopSeconds $s.drainDelaySeconds $s.graceSeconds }}
{{- if kindIs "invalid" $s.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else if le (int $s.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "server.shutdown.terminationGracePeriodSeconds (%v) must exceed preStopSeconds + drainDelaySeconds + graceSeconds (%v), or the kubelet kills calls still finishing" $s.terminationGracePeriodSeconds $needed) }}
{{- else }}
{{- $s.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{- define "codexcontinue.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "codexcontinue.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* One egress rule of the NetworkPolicy: (dict "cidrs" LIST "except" LIST "ports" LIST). */}}
{{- define "codexcontinue.egressRule" -}}
- to:
    {{- range .cidrs }}
    - ipBlock:
        cidr: {{ . }}
        {{- with $.except }}
        except:
          {{- toYaml . | nindent 10 }}
        {{- end }}
    {{- end }}
  ports:
    {{- range .ports }}
    - port: {{ .port }}
      protocol: TCP
      {{- with .endPort }}
      endPort: {{ . }}
      {{- end }}
    {{- end }}
{{- end }}
