// admission.k8s.io/v1 AdmissionReview in, AdmissionReview out: the protocol around injectPod.
import type { V1Pod } from '@kubernetes/client-node';
import { injectPod } from './injection.ts';
import type { InjectionResult } from './injection.ts';
import type { InjectionConfig } from './injection-config.ts';

export interface AdmissionRequest {
  uid: string;
  kind?: { group: string; version: string; kind: string };
  operation?: string;
  namespace?: string;
  name?: string;
  dryRun?: boolean;
  object?: unknown;
}

export interface AdmissionReview {
  apiVersion: string;
  kind: string;
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  warnings?: string[];
  patchType?: 'JSONPatch';
  patch?: string;
  status?: { code: number; message: string; reason?: string };
}

export interface AdmissionOutcome {
  review: AdmissionReview;
  /** What was decided, for logs and metrics. */
  decision: InjectionResult['action'] | 'ignored';
}

// The API server truncates long warnings; keep each to what a terminal line shows.
const MAX_WARNING = 250;

function review(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

/** Throws on a malformed review (the server answers 400); anything well-formed gets an answer. */
export function admit(input: unknown, config: InjectionConfig): AdmissionOutcome {
  const r = input as AdmissionReview;
  if (typeof r !== 'object' || r === null || r.kind !== 'AdmissionReview' || typeof r.request?.uid !== 'string') {
    throw new Error('expected an admission.k8s.io/v1 AdmissionReview with request.uid');
  }
  const req = r.request;
  const uid = req.uid;
  if (req.kind?.kind !== 'Pod' || req.operation !== 'CREATE' || typeof req.object !== 'object' || req.object === null) {
    return { review: review({ uid, allowed: true }), decision: 'ignored' };
  }
  const pod = req.object as V1Pod;
  const namespace = req.namespace ?? pod.metadata?.namespace ?? 'default';
  const result = injectPod(pod, namespace, config);
  const warnings = result.warnings.map((w) => (w.length > MAX_WARNING ? w.slice(0, MAX_WARNING - 1) + '…' : w));
  const response: AdmissionResponse = { uid, allowed: result.action !== 'refuse' };
  if (warnings.length > 0) response.warnings = warnings;
  if (result.action === 'refuse') response.status = { code: 400, reason: 'Invalid', message: result.message };
  if (result.action === 'inject') {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(result.patch)).toString('base64');
  }
  return { review: review(response), decision: result.action };
}
