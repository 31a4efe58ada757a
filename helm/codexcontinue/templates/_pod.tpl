{{/*
The one pod template every CodexContinue Deployment uses, and the Deployment around it. The
API, worker and GPU Deployments differ only by component name: "codexcontinue.deployment"
takes (dict "root" $ "component" "api"|"worker"|"gpu") and reads .Values.<component>.
*/}}

{{/* The config file: rendered once, mounted by the serving pods and the migration Job. */}}
{{- define "codexcontinue.configToml" -}}
{{- toToml .Values.config }}
{{- end }}

{{/* Container args as JSON: `--config FILE` (when a config is given), then .args;
(dict "root" $ "args" (list ...)). */}}
{{- define "codexcontinue.args" -}}
{{- $prefix := list }}
{{- if .root.Values.config }}
{{- $prefix = list "--config" "/etc/codexcontinue/config.toml" }}
{{- end }}
{{- concat $prefix .args | toJson }}
{{- end }}

{{/* Settings every CodexContinue container gets (the serving pods and the migration Job). */}}
{{- define "codexcontinue.commonEnv" -}}
- name: CODEXCONTINUE_TELEMETRY__LOG_FORMAT
  value: {{ .Values.server.logFormat | quote }}
{{- with .Values.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The pod template of one Deployment; (dict "root" $ "component" NAME). */}}
{{- define "codexcontinue.podTemplate" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $c := index $v .component }}
{{- $shutdown := $v.server.shutdown -}}
metadata:
  labels:
    {{- include "codexcontinue.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    {{- if ne .component "worker" }}
    {{- include "codexcontinue.servesApiLabel" . | nindent 4 }}
    {{- end }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "codexcontinue.configToml" $root | sha256sum }}
    {{- with $v.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "codexcontinue.serviceAccountName" $root }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ include "codexcontinue.terminationGracePeriodSeconds" $root }}
  securityContext:
    {{- include "codexcontinue.podSecurityContext" $root | nindent 4 }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.topologySpread }}
  topologySpreadConstraints:
    {{- range . }}
    - topologyKey: {{ .topologyKey }}
      maxSkew: {{ .maxSkew }}
      whenUnsatisfiable: {{ .whenUnsatisfiable }}
      matchLabelKeys: ["pod-template-hash"]
      labelSelector:
        matchLabels:
          {{- include "codexcontinue.componentSelectorLabels" $ | nindent 10 }}
    {{- end }}
  {{- end }}
  containers:
    - name: codexcontinue
      image: {{ include "codexcontinue.image" . | quote }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      args: {{ include "codexcontinue.args" (dict "root" $root "args" (list "serve" "--role" (include "codexcontinue.role" .))) }}
      ports:
        - name: grpc
          containerPort: {{ $v.server.port }}
          protocol: TCP
      env:
        - name: DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ $v.existingSecret.name }}
              key: {{ $v.existingSecret.keys.databaseUrl }}
        - name: REDIS_URL
          valueFrom:
            secretKeyRef:
              name: {{ $v.existingSecret.name }}
              key: {{ $v.existingSecret.keys.redisUrl }}
        - name: CODEXCONTINUE_CRYPTO__MASTER_KEY
          valueFrom:
            secretKeyRef:
              name: {{ $v.existingSecret.name }}
              key: {{ $v.existingSecret.keys.masterKey }}
        - name: CODEXCONTINUE_SERVER__LISTEN
          value: "0.0.0.0:{{ $v.server.port }}"
        - name: CODEXCONTINUE_SERVER__DRAIN_DELAY
          value: "{{ $shutdown.drainDelaySeconds }}s"
        - name: CODEXCONTINUE_SERVER__SHUTDOWN_GRACE
          value: "{{ $shutdown.graceSeconds }}s"
        - name: CODEXCONTINUE_REDIS__CLUSTER
          value: {{ $v.redis.cluster | quote }}
        {{- with $v.inference.modelsDir }}
        - name: CODEXCONTINUE_INFERENCE__MODELS_DIR
          value: {{ . | quote }}
        {{- end }}
        {{- if eq .component "gpu" }}
        - name: CODEXCONTINUE_INFERENCE__DEVICE
          value: cuda
        {{- end }}
        {{- with $v.server.publicUrl }}
        - name: CODEXCONTINUE_AUTH__PUBLIC_URL
          value: {{ . | quote }}
        {{- end }}
        {{- include "codexcontinue.commonEnv" $root | nindent 8 }}
      startupProbe:
        grpc:
          port: {{ $v.server.port }}
        periodSeconds: {{ $v.probes.startup.periodSeconds }}
        failureThreshold: {{ $v.probes.startup.failureThreshold }}
      readinessProbe:
        grpc:
          port: {{ $v.server.port }}
        periodSeconds: {{ $v.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ $v.probes.readiness.failureThreshold }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: grpc
        periodSeconds: {{ $v.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ $v.probes.liveness.failureThreshold }}
      {{- if gt (int $shutdown.preStopSeconds) 0 }}
      lifecycle:
        preStop:
          sleep:
            seconds: {{ $shutdown.preStopSeconds }}
      {{- end }}
      resources:
        {{- $resources := deepCopy $c.resources }}
        {{- if eq .component "gpu" }}
        {{- $_ := set $resources "limits" (merge (dict "nvidia.com/gpu" $c.gpusPerPod) ($resources.limits | default dict)) }}
        {{- end }}
        {{- toYaml $resources | nindent 8 }}
      securityContext:
        {{- include "codexcontinue.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if $v.config }}
        - name: config
          mountPath: /etc/codexcontinue
          readOnly: true
        {{- end }}
        {{- if and $v.inference.modelsDir $v.inference.modelsClaim }}
        - name: models
          mountPath: {{ $v.inference.modelsDir }}
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: {{ $v.tmp.sizeLimit }}
    {{- if $v.config }}
    - name: config
      configMap:
        name: {{ include "codexcontinue.fullname" $root }}
    {{- end }}
    {{- if and $v.inference.modelsDir $v.inference.modelsClaim }}
    - name: models
      persistentVolumeClaim:
        claimName: {{ $v.inference.modelsClaim }}
        readOnly: true
    {{- end }}
{{- end }}

{{/* checkov findings this chart does not follow, each with its reason (no "=" inside);
(dict "root" $ "component" NAME). A finding that does not apply is not skipped. */}}
{{- define "codexcontinue.checkovSkips" -}}
checkov.io/skip1: "CKV_K8S_11=No CPU limit on purpose: CFS throttling stalls latency-bound gRPC calls and libtorch threads; CPU requests size the pods"
checkov.io/skip2: "CKV_K8S_35=The server reads its secrets (database and Redis URLs, master key) from environment variables only"
{{- if ne .root.Values.image.pullPolicy "Always" }}
checkov.io/skip3: "CKV_K8S_15=Pull policy is the operator's choice (image.pullPolicy); with a digest pin Always adds nothing"
{{- end }}
{{- if not (include "codexcontinue.imagePinned" .) }}
checkov.io/skip4: "CKV_K8S_43=Digest pinning is the operator's choice: set {{ if eq .component "gpu" }}gpu.image.digest{{ else }}image.digest{{ end }} to pin"
{{- end }}
{{- if not .root.Values.networkPolicy.enabled }}
checkov.io/skip5: "CKV2_K8S_6=The NetworkPolicy is opt-in (networkPolicy.enabled) as it needs the database, Redis and provider addresses"
{{- end }}
{{- end }}

{{/* One Deployment; (dict "root" $ "component" NAME). */}}
{{- define "codexcontinue.deployment" -}}
{{- $c := index .root.Values .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "codexcontinue.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "codexcontinue.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
  annotations:
    {{- include "codexcontinue.checkovSkips" . | nindent 4 }}
spec:
  {{- if not $c.autoscaling.enabled }}
  replicas: {{ $c.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "codexcontinue.componentSelectorLabels" . | nindent 6 }}
  template:
    {{- include "codexcontinue.podTemplate" . | nindent 4 }}
{{- end }}
