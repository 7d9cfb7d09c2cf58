// Pure parsing of a pods file: bytes → UTF-8 check, text → pods. No I/O, no logger, so
// that it runs the same on the main thread (small files) and in a worker (large files,
// see pods-file-worker.ts).
import net from 'node:net';
import { load, loadAll, YAMLException } from 'js-yaml';
import { podInfoFromObject } from '../pod-info.ts';
import type { PodInfo } from '../pod-source.ts';
import type { PolicyObject } from '../policy-intake.ts';

export class PodsFileError extends Error {}

/** A pods file entry that was left out, and why. */
export interface SkippedEntry {
  /** "document 1 item 3" */
  where: string;
  /** What was wrong and what is expected (includes the pod's name when it has one). */
  message: string;
  /** Same problem, same key: reported once, not on every reload (no position in it). */
  key: string;
  namespace?: string;
  pod?: string;
  field?: string;
  value?: string;
  expected?: string;
}

/** A parse hands back at most this many skipped entries (a hostile file can have 500,000); the rest are only counted. */
export const MAX_RETURNED_SKIPPED = 1000;

/** What a parse (inline or in the worker) hands back. */
export type ParseReply = { ok: true; pods: PodInfo[]; policies: PolicyObject[]; skipped: SkippedEntry[]; skippedTotal: number } | { ok: false; error: string };

/** BasisPolicy documents in one pods file; more are skipped (each spec is bounded by basis-policy.ts). */
export const MAX_POLICIES = 256;

const IP_EXPECTED = 'an IPv4 or IPv6 address literal, e.g. 10.1.2.3 or fd00::1:5 (no host name, port, prefix length or zone)';

/** A hostile value can be megabytes long or full of control characters: quote a bounded, printable form. */
export function shown(v: string, max = 80): string {
  const printable = v.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return printable.length > max ? `${printable.slice(0, max)}…(${v.length} chars)` : printable;
}

/** Why `status.podIP` is not usable, or undefined when it is (or is absent: no IP yet). */
function podIpProblem(raw: unknown): { value: string; message: string } | undefined {
  const status = raw !== null && typeof raw === 'object' ? (raw as { status?: unknown }).status : undefined;
  if (status === null || typeof status !== 'object') return undefined;
  const ip = (status as { podIP?: unknown }).podIP;
  if (ip === undefined || ip === null || ip === '') return undefined;
  if (typeof ip !== 'string') return { value: String(ip), message: `status.podIP ${shown(String(ip))} is invalid: expected ${IP_EXPECTED}, as a string` };
  if (net.isIP(ip) === 0 || ip.includes('%')) return { value: ip, message: `status.podIP '${shown(ip)}' is invalid: expected ${IP_EXPECTED}` };
  return undefined;
}

/** Parses a pods file's text into pods; throws PodsFileError saying what and where. Pod-level problems go to `skipped`. */
/** The whole parse as one message (inline or from the worker): never throws. */
export function parseToReply(text: string, cache?: ItemCache): ParseReply {
  try {
    const skipped: SkippedEntry[] = [];
    const policies: PolicyObject[] = [];
    const pods = parsePodsFile(text, skipped, policies, cache);
    return { ok: true, pods, policies, skipped: skipped.slice(0, MAX_RETURNED_SKIPPED), skippedTotal: skipped.length };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/**
 * js-yaml (YAML 1.2 core schema, as the API server's own YAML reader): already in the controller through
 * @kubernetes/client-node, and 5-15x faster than `yaml` on a 2.4 MB file (bench:console). An alias
 * (`*ref`, which YAML writers emit for shared objects) is one shared node here, copied by every reader
 * that walks it: a file may expand through aliases to at most as many nodes as it has bytes (a file
 * without aliases never does).
 */
function loadDocuments(text: string): unknown[] {
  let docs: unknown[];
  try {
    docs = loadAll(text, { maxAliases: MAX_ALIASES });
  } catch (err) {
    if (!(err instanceof YAMLException)) throw new PodsFileError(`invalid YAML: ${shown((err as Error).message.split('\n')[0] ?? '', 200)}`);
    const at = err.mark === undefined ? 'an unknown place' : `line ${err.mark.line + 1}, column ${err.mark.column + 1}`;
    throw new PodsFileError(`invalid YAML at ${at}: ${shown(err.reason, 200)}`);
  }
  const limit = text.length + 1000;
  if (expandsPast(docs, limit)) throw new PodsFileError(`its YAML aliases (*name) expand it past ${limit} values (one per byte of the file); write shared values out, or alias less`);
  return docs;
}

/** Aliases in one YAML document, as the `yaml` library allowed before. */
const MAX_ALIASES = 100;

/** Whether walking `root` as a tree (shared nodes once per path) meets more than `limit` values. */
function expandsPast(root: unknown, limit: number): boolean {
  const stack: unknown[] = [root];
  let n = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    if (++n > limit) return true;
    if (v !== null && typeof v === 'object') for (const k in v) stack.push((v as Record<string, unknown>)[k]);
  }
  return false;
}

/**
 * The items of the last file parsed, by their text: a reload where one pod changed parses that pod's
 * text only (a 2.4 MB file: ~190 ms whole, most of it js-yaml). Only for one `kind: List` document in
 * block style with no anchors, aliases, tags or tabs (what kubectl and YAML writers emit); anything
 * else, or any item that does not parse on its own, is parsed whole as before. Holds one file's items.
 */
export class ItemCache {
  #items = new Map<string, unknown>();

  /** The file's one document, or undefined when it has another shape (then parse it whole). */
  documents(text: string): unknown[] | undefined {
    const split = splitBlockList(text);
    if (split === undefined) return undefined;
    let head: unknown;
    const next = new Map<string, unknown>();
    try {
      head = load(split.head);
      if (head === null || typeof head !== 'object' || Array.isArray(head) || 'items' in head) return undefined;
      const kind = (head as { kind?: unknown }).kind;
      if (kind !== 'List' && kind !== 'PodList') return undefined;
      for (const t of split.items) {
        if (next.has(t)) continue;
        const hit = this.#items.get(t);
        if (hit !== undefined) {
          next.set(t, hit);
          continue;
        }
        const one = load(t);
        if (!Array.isArray(one) || one.length !== 1) return undefined;
        next.set(t, one[0]);
      }
    } catch {
      return undefined; // the whole parse says what is wrong, and where
    }
    this.#items = next;
    return [{ ...(head as object), items: split.items.map((t) => next.get(t)) }];
  }
}

/** Splits `kind: List` YAML in block style into the text before `items:` and each item's text. */
export function splitBlockList(text: string): { head: string; items: string[] } | undefined {
  if (/[\t\r&*!]/.test(text) || /^(?:---|\.\.\.|%)/m.test(text)) return undefined;
  const m = /^items:[ ]*\n/m.exec(text);
  if (m === null) return undefined;
  const items: string[] = [];
  let indent = -1;
  let start = -1;
  let pos = m.index + m[0].length;
  let tail = '';
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    let sp = pos;
    while (sp < end && text.charCodeAt(sp) === 32) sp++;
    const blank = sp === end || text.charCodeAt(sp) === 35; // empty, or a comment
    if (!blank) {
      const dash = text.charCodeAt(sp) === 45 && (sp + 1 === end || text.charCodeAt(sp + 1) === 32);
      if (indent < 0) {
        if (!dash) return undefined;
        indent = sp - pos;
      }
      if (sp - pos === indent && dash) {
        if (start >= 0) items.push(text.slice(start, pos));
        start = pos;
      } else if (sp === pos) {
        tail = text.slice(pos); // keys after the items (kubectl writes kind and metadata there)
        break;
      } else if (sp - pos <= indent) return undefined;
    }
    pos = end + 1;
  }
  if (start >= 0) items.push(text.slice(start, tail === '' ? text.length : pos));
  return { head: text.slice(0, m.index) + tail, items };
}

export function parsePodsFile(text: string, skipped: SkippedEntry[] = [], policies: PolicyObject[] = [], cache?: ItemCache): PodInfo[] {
  const docs = cache?.documents(text) ?? loadDocuments(text);
  const pods: PodInfo[] = [];
  docs.forEach((obj, d) => {
    if (obj === null || obj === undefined) return; // empty document (e.g. a trailing ---)
    if (typeof obj !== 'object' || Array.isArray(obj)) {
      throw new PodsFileError(`document ${d + 1} is not a mapping; expected a Pod, a BasisPolicy or a List/PodList with items`);
    }
    const o = obj as { kind?: unknown; items?: unknown };
    let items: unknown[];
    if (o.kind === 'List' || o.kind === 'PodList') {
      if (o.items === null || o.items === undefined) items = [];
      else if (Array.isArray(o.items)) items = o.items;
      else throw new PodsFileError(`document ${d + 1}: kind ${o.kind} has 'items' that is not a list`);
    } else if (o.kind === 'Pod' || o.kind === 'BasisPolicy' || o.kind === undefined) {
      items = [obj];
    } else {
      throw new PodsFileError(`document ${d + 1} has kind ${shown(String(o.kind))}; expected Pod, BasisPolicy, List or PodList`);
    }
    items.forEach((item, i) => {
      const where = `document ${d + 1} item ${i + 1}`;
      if (item !== null && typeof item === 'object' && (item as { kind?: unknown }).kind === 'BasisPolicy') {
        const got = policyObject(item, where);
        if (typeof got === 'string') skipped.push({ where, message: got, key: `${where}: ${got}` });
        else if (policies.length >= MAX_POLICIES) skipped.push({ where, message: `more than ${MAX_POLICIES} BasisPolicies in one file`, key: `policies over ${MAX_POLICIES}` });
        else policies.push(got);
        return;
      }
      let info: PodInfo;
      try {
        info = podInfoFromObject(item);
      } catch (e) {
        const message = (e as Error).message;
        skipped.push({ where, message, key: `${where}: ${message}` });
        return;
      }
      // Sidecars dial this address: a host name would be looked up in DNS, anything else fails later and far away.
      const bad = podIpProblem(item);
      if (bad !== undefined) {
        const ref = `${info.namespace}/${info.name}`;
        skipped.push({
          where,
          message: `pod ${shown(ref)}: ${bad.message}`,
          key: `${ref} status.podIP ${bad.value}`,
          namespace: info.namespace,
          pod: info.name,
          field: 'status.podIP',
          value: shown(bad.value, 200),
          expected: IP_EXPECTED,
        });
        return;
      }
      pods.push(info);
    });
  });
  return pods;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A BasisPolicy's metadata as the API server would check it; the spec is basis-policy.ts's job. */
function policyObject(item: object, where: string): PolicyObject | string {
  const meta = (item as { metadata?: unknown }).metadata;
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return `BasisPolicy has no metadata; expected metadata.name (and metadata.namespace, default "default")`;
  const m = meta as { name?: unknown; namespace?: unknown; generation?: unknown; creationTimestamp?: unknown };
  if (typeof m.name !== 'string' || !DNS_SUBDOMAIN.test(m.name)) {
    return `BasisPolicy metadata.name ${typeof m.name === 'string' ? `'${shown(m.name)}'` : 'is missing'}; expected a DNS subdomain name, e.g. orders`;
  }
  const namespace = m.namespace === undefined || m.namespace === null ? 'default' : m.namespace;
  if (typeof namespace !== 'string' || !DNS_LABEL.test(namespace)) return `BasisPolicy ${m.name}: metadata.namespace '${shown(String(namespace))}' is not a DNS label, e.g. shop`;
  const generation = Number.isSafeInteger(m.generation) && (m.generation as number) > 0 ? (m.generation as number) : 1;
  const ts = typeof m.creationTimestamp === 'string' ? m.creationTimestamp : m.creationTimestamp instanceof Date ? m.creationTimestamp.toISOString() : undefined;
  return { namespace, name: m.name, generation, creationTimestamp: ts, raw: item };
}

/** No YAML content: only blank lines, comments and document markers (an empty file is one). */
export function hasNoContent(text: string): boolean {
  const blank = /^(?:---|\.\.\.)?[ \t\r]*(?:#[^\n]*)?$/;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    if (!blank.test(line.startsWith('\uFEFF') ? line.slice(1) : line)) return false;
    start = end + 1;
  }
  return true;
}

/** "byte 0xff at offset 1234 (line 56)": where the first invalid UTF-8 sequence starts. */
export function describeInvalidUtf8(buf: Uint8Array, offset: number): string {
  let line = 1;
  for (let i = 0; i < offset; i++) if (buf[i] === 0x0a) line++;
  return `byte 0x${buf[offset]!.toString(16).padStart(2, '0')} at offset ${offset} (line ${line})`;
}
