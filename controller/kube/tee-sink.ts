// One pod stream into two sinks: Kubernetes mode feeds the informer's pods to the endpoint registry
// (which main.ts hands to the source) and to the caller index beside it, in the same order.
import type { PodSink, PodSource } from '../pod-source.ts';

/** Feeds every sink the same pods, in order. */
export function teeSink(...sinks: PodSink[]): PodSink {
  return {
    upsert: (pod) => sinks.forEach((s) => s.upsert(pod)),
    delete: (ref) => sinks.forEach((s) => s.delete(ref)),
    resync: (pods) => sinks.forEach((s) => s.resync(pods)),
  };
}

/** `inner`, but whatever sink it is started with, `also` gets the same pods after it. */
export class TeedPodSource implements PodSource {
  readonly kind: string;
  readonly #inner: PodSource;
  readonly #also: PodSink;

  constructor(inner: PodSource, also: PodSink) {
    this.#inner = inner;
    this.kind = inner.kind;
    this.#also = also;
  }

  start(sink: PodSink): Promise<void> {
    return this.#inner.start(teeSink(sink, this.#also));
  }

  stop(): Promise<void> {
    return this.#inner.stop();
  }

  synced(): boolean {
    return this.#inner.synced();
  }
}
