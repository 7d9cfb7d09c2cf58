// Where the controller learns about pods. Local mode reads a pods file
// (local/pods-file-source.ts); Kubernetes mode plugs an informer into the same
// interface. A source only normalizes pods; the registry decides what they mean.

/** A pod, reduced to what qbasis needs. Sources fill it from a Pod object (see pod-info.ts). */
export interface PodInfo {
  namespace: string;
  name: string;
  /** metadata.uid; may be empty in hand-written pods files. */
  uid: string;
  /** status.podIP, absent until the pod has one. */
  ip?: string;
  /** The Ready condition is "True". */
  ready: boolean;
  annotations: Record<string, string>;
  labels: Record<string, string>;
  /** metadata.deletionTimestamp is set: the pod is terminating. */
  deleting: boolean;
  /** spec.serviceAccountName, `default` when unset (as Kubernetes fills it): the pod's mesh identity. */
  serviceAccount: string;
}

export interface PodRef {
  namespace: string;
  name: string;
}

/** Receives what a source sees. EndpointRegistry implements it. */
export interface PodSink {
  /** A pod was added or changed. */
  upsert(pod: PodInfo): void;
  /** A pod is gone. */
  delete(ref: PodRef): void;
  /** The complete set of pods: anything not in it is gone (initial list, relist, file reload). */
  resync(pods: PodInfo[]): void;
}

export interface PodSource {
  /** For logs and metrics, e.g. "pods-file" or "kubernetes". */
  readonly kind: string;
  /**
   * Begin delivering pods to the sink. Resolves once the first complete view was
   * delivered (synced() is true), or rejects if the source cannot start at all.
   */
  start(sink: PodSink): Promise<void>;
  /** Stop watching; no sink calls after the returned promise resolves. */
  stop(): Promise<void>;
  /** The sink has received at least one complete view. /ready waits for this. */
  synced(): boolean;
}
