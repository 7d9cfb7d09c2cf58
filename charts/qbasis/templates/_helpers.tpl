{{/* Chart name, truncated for label values. */}}
{{- define "qbasis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object-name prefix: the release name, plus the chart name unless the release already contains it. */}}
{{- define "qbasis.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "qbasis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "qbasis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: qbasis
{{- end }}

{{- define "qbasis.controllerSelector" -}}
app.kubernetes.io/name: {{ include "qbasis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "qbasis.controllerName" -}}{{ include "qbasis.fullname" . }}-controller{{- end }}
{{- define "qbasis.discoveryService" -}}{{ include "qbasis.fullname" . }}-discovery{{- end }}
{{- define "qbasis.webhookService" -}}{{ include "qbasis.fullname" . }}-webhook{{- end }}
{{- define "qbasis.webhookSecret" -}}{{ include "qbasis.fullname" . }}-webhook-tls{{- end }}
{{- define "qbasis.webhookConfig" -}}{{ include "qbasis.fullname" . }}-sidecar-injector{{- end }}
{{- define "qbasis.injectionConfigMap" -}}{{ include "qbasis.fullname" . }}-injection{{- end }}
{{- define "qbasis.identitySecret" -}}{{ default (printf "%s-identity-root" (include "qbasis.fullname" .)) .Values.identity.issuer.existingSecret }}{{- end }}
{{/* The names sidecars may dial the controller's TLS port by (its serving certificate carries them all). */}}
{{- define "qbasis.identitySans" -}}
{{- $svc := include "qbasis.discoveryService" . }}
{{- printf "%s,%s.%s,%s.%s.svc,%s.%s.svc.cluster.local" $svc $svc .Release.Namespace $svc .Release.Namespace $svc .Release.Namespace }}
{{- end }}
{{- define "qbasis.leaseName" -}}{{ default (include "qbasis.controllerName" .) .Values.controller.leaderElection.leaseName }}{{- end }}

{{- define "qbasis.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "qbasis.sidecarImage" -}}
{{- printf "%s:%s" (default .Values.image.repository .Values.sidecar.image.repository) (default (default .Chart.AppVersion .Values.image.tag) .Values.sidecar.image.tag) }}
{{- end }}

{{/* The one container security context, used by the controller and (through the injection config) every sidecar. */}}
{{- define "qbasis.securityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* What the webhook injects; mounted as JSON into the controller (controller/webhook/injection-config.ts). */}}
{{- define "qbasis.injectionConfig" -}}
{{- $cfg := dict
  "image" (include "qbasis.sidecarImage" .)
  "imagePullPolicy" .Values.sidecar.image.pullPolicy
  "discoveryAddress" (printf "%s.%s.svc:%d" (include "qbasis.discoveryService" .) .Release.Namespace (int .Values.controller.ports.discovery))
  "strict" .Values.webhook.strict
  "ports" .Values.sidecar.ports
  "gracePeriodSeconds" .Values.sidecar.gracePeriodSeconds
  "resources" .Values.sidecar.resources
  "securityContext" (include "qbasis.securityContext" . | fromYaml)
}}
{{- if .Values.identity.enabled }}
{{- $_ := set $cfg "identity" (dict
  "discoveryAddress" (printf "%s.%s.svc:%d" (include "qbasis.discoveryService" .) .Release.Namespace (int .Values.controller.ports.identity))
  "tokenExpirationSeconds" (int .Values.identity.tokenExpirationSeconds)) }}
{{- end }}
{{- toPrettyJson $cfg }}
{{- end }}

{{/* Values that the schema cannot check alone: fail early, saying what to change. */}}
{{- define "qbasis.validate" -}}
{{- $c := .Values.controller }}
{{- if and (gt (int $c.replicas) 1) (not $c.leaderElection.enabled) }}
{{- fail (printf "controller.replicas is %d but controller.leaderElection.enabled is false: more than one replica needs leader election, or two controllers write the same BasisServices. Set controller.leaderElection.enabled=true or controller.replicas=1." (int $c.replicas)) }}
{{- end }}
{{- if and $c.podDisruptionBudget.enabled (ge (int $c.podDisruptionBudget.minAvailable) (int $c.replicas)) }}
{{- fail (printf "controller.podDisruptionBudget.minAvailable (%d) must be below controller.replicas (%d), or no node can ever be drained. Lower minAvailable, raise replicas, or disable the budget." (int $c.podDisruptionBudget.minAvailable) (int $c.replicas)) }}
{{- end }}
{{- $ports := list (int $c.ports.discovery) (int $c.ports.webhook) (int $c.ports.admin) (int $c.ports.identity) }}
{{- if ne (len (uniq $ports)) 4 }}
{{- fail (printf "controller.ports must be four different ports, got discovery=%d webhook=%d admin=%d identity=%d." (int $c.ports.discovery) (int $c.ports.webhook) (int $c.ports.admin) (int $c.ports.identity)) }}
{{- end }}
{{- if and $c.console.enabled (has (int $c.console.port) $ports) }}
{{- fail (printf "controller.console.port (%d) must differ from controller.ports (discovery=%d webhook=%d admin=%d identity=%d)." (int $c.console.port) (int $c.ports.discovery) (int $c.ports.webhook) (int $c.ports.admin) (int $c.ports.identity)) }}
{{- end }}
{{- $sp := .Values.sidecar.ports }}
{{- if ne (len (uniq (list (int $sp.outbound) (int $sp.inbound) (int $sp.admin)))) 3 }}
{{- fail (printf "sidecar.ports must be three different ports, got outbound=%d inbound=%d admin=%d." (int $sp.outbound) (int $sp.inbound) (int $sp.admin)) }}
{{- end }}
{{- if and .Values.webhook.certManager.enabled .Values.webhook.url }}
{{- fail "webhook.url and webhook.certManager.enabled exclude each other: cert-manager injects the caBundle for the in-cluster Service, while webhook.url is for a controller run outside the cluster. Unset one." }}
{{- end }}
{{- end }}
