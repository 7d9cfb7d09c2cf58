// Local mode's stand-in for projected ServiceAccount tokens: one random 256-bit token per pod in
// the pods file, written to DIR/tokens/<namespace>/<pod> (0600; the sidecar's --token-file), bound
// to that pod (namespace, name, uid, service account). A token authenticates while its pod is in
// the file and not terminating. A pod that leaves the file loses its token (the file is deleted;
// the token is remembered a while so its refusal can say why). On restart the controller adopts the
// token files of pods still in the file, so running sidecars keep renewing.
//
// Lookup is by SHA-256 of the token: the map never holds a token, and a lookup's timing says nothing
// about the token's bytes. Pod names come from the file and become paths: only Kubernetes names
// (DNS labels and subdomains) are used.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PodInfo, PodRef, PodSink } from '../pod-source.ts';
import { privateDir, writePrivateFile } from './root-store.ts';
import type { Authentication, TokenAuthenticator } from './token-authenticator.ts';

export const TOKENS_DIR = 'tokens';
const TOKEN = /^[0-9a-f]{64}$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/;
/** Revoked tokens remembered for a clear refusal (then they are merely unknown). */
const MAX_REVOKED = 4096;

interface Bound {
  hash: string;
  file: string;
}

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function sha256(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Why a pod gets no token (its names cannot be a path or a SPIFFE ID), or undefined. */
function nameProblem(p: PodInfo): string | undefined {
  if (!LABEL.test(p.namespace)) return `namespace '${p.namespace.slice(0, 80)}' is not a DNS label`;
  if (!SUBDOMAIN.test(p.name)) return `pod name '${p.name.slice(0, 80)}' is not a DNS subdomain`;
  if (!SUBDOMAIN.test(p.serviceAccount)) return `spec.serviceAccountName '${p.serviceAccount.slice(0, 80)}' is not a DNS subdomain`;
  return undefined;
}

export class LocalTokens implements PodSink, TokenAuthenticator {
  readonly kind = 'local tokens';
  readonly #dir: string;
  readonly #log: Logger;
  readonly #pods = new Map<string, PodInfo>();
  readonly #bound = new Map<string, Bound>();
  readonly #byHash = new Map<string, string>();
  readonly #revoked = new Map<string, string>();
  readonly #skipped = new Set<string>();
  #swept = false;

  /** `identityDir`/tokens holds the token files. */
  constructor(identityDir: string, log: Logger) {
    this.#dir = path.join(identityDir, TOKENS_DIR);
    this.#log = log.child({ component: 'local-tokens' });
    privateDir(this.#dir);
  }

  /** Where the token of a pod is (whether or not it exists). */
  tokenFile(namespace: string, pod: string): string {
    return path.join(this.#dir, namespace, pod);
  }

  // --- PodSink ---

  upsert(pod: PodInfo): void {
    this.#ensure(pod);
  }

  delete(ref: PodRef): void {
    this.#revoke(podKey(ref.namespace, ref.name));
  }

  resync(pods: PodInfo[]): void {
    const keep = new Set(pods.map((p) => podKey(p.namespace, p.name)));
    for (const key of [...this.#pods.keys()]) if (!keep.has(key)) this.#revoke(key);
    let minted = 0;
    for (const p of pods) if (this.#ensure(p)) minted++;
    if (!this.#swept) {
      this.#swept = true;
      this.#sweep();
    }
    if (minted > 0) this.#log.info({ minted, pods: this.#bound.size, dir: this.#dir }, `minted ${minted} pod token(s) for Certify`);
  }

  // --- TokenAuthenticator ---

  async authenticate(token: string): Promise<Authentication> {
    if (!TOKEN.test(token)) return { ok: false, code: 'QB_TOKEN_REFUSED', reason: 'the token is not a qbasis local-mode token (expected 64 hex digits, as the controller writes them)' };
    const hash = sha256(token);
    const key = this.#byHash.get(hash);
    if (key === undefined) {
      const gone = this.#revoked.get(hash);
      if (gone !== undefined) return { ok: false, code: 'QB_POD_NOT_ELIGIBLE', reason: `the token belongs to pod ${gone}, which is no longer in the pods file`, pod: gone };
      return { ok: false, code: 'QB_TOKEN_REFUSED', reason: 'the token is not one this controller minted (expected the contents of --identity-dir/tokens/<namespace>/<pod>)' };
    }
    const pod = this.#pods.get(key)!;
    if (pod.deleting) return { ok: false, code: 'QB_POD_NOT_ELIGIBLE', reason: `pod ${key} is terminating (deletionTimestamp is set)`, pod: key };
    return { ok: true, pod: { namespace: pod.namespace, pod: pod.name, uid: pod.uid, serviceAccount: pod.serviceAccount } };
  }

  // --- internals ---

  /** true when a new token was written. */
  #ensure(pod: PodInfo): boolean {
    const key = podKey(pod.namespace, pod.name);
    const problem = nameProblem(pod);
    if (problem !== undefined) {
      if (!this.#skipped.has(key)) {
        this.#skipped.add(key);
        this.#log.error({ code: 'QB_INVALID_PODS_FILE', namespace: pod.namespace.slice(0, 80), pod: pod.name.slice(0, 80) }, `no identity token for a pod of the pods file: ${problem}`);
      }
      this.#revoke(key);
      return false;
    }
    this.#skipped.delete(key);
    const old = this.#pods.get(key);
    this.#pods.set(key, pod);
    // Bound to the pod object: a pod replaced under the same name (new uid) gets a new token.
    if (this.#bound.has(key) && (old === undefined || old.uid === pod.uid)) return false;
    if (this.#bound.has(key)) this.#unbind(key, true);
    const file = this.tokenFile(pod.namespace, pod.name);
    let token: string | undefined;
    if (old === undefined && !this.#swept) {
      // At start: a token this controller wrote before stays valid.
      try {
        const text = fs.readFileSync(file, 'utf8').trim();
        if (TOKEN.test(text)) token = text;
      } catch {
        // none yet
      }
    }
    const adopted = token !== undefined;
    token ??= randomBytes(32).toString('hex');
    if (!adopted) {
      privateDir(path.dirname(file));
      writePrivateFile(file, `${token}\n`);
    }
    const hash = sha256(token);
    this.#bound.set(key, { hash, file });
    this.#byHash.set(hash, key);
    this.#revoked.delete(hash);
    return !adopted;
  }

  #revoke(key: string): void {
    this.#pods.delete(key);
    if (this.#bound.has(key)) this.#unbind(key, true);
  }

  #unbind(key: string, deleteFile: boolean): void {
    const b = this.#bound.get(key)!;
    this.#bound.delete(key);
    this.#byHash.delete(b.hash);
    this.#revoked.set(b.hash, key);
    if (this.#revoked.size > MAX_REVOKED) this.#revoked.delete(this.#revoked.keys().next().value!);
    if (deleteFile) fs.rmSync(b.file, { force: true });
  }

  /** Token files of pods that are not in the file (left from an earlier run) are deleted. */
  #sweep(): void {
    const live = new Set([...this.#bound.values()].map((b) => b.file));
    for (const ns of fs.readdirSync(this.#dir)) {
      const nsDir = path.join(this.#dir, ns);
      let entries: string[];
      try {
        entries = fs.readdirSync(nsDir);
      } catch {
        continue;
      }
      for (const name of entries) {
        const f = path.join(nsDir, name);
        if (!live.has(f)) fs.rmSync(f, { force: true });
      }
    }
  }
}
