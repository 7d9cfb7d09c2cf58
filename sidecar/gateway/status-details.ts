// google.rpc.Status details between the two ends of the gateway: a gRPC provider's
// grpc-status-details-bin trailer becomes the `details` of a legacy caller's JSON error body (each
// google.protobuf.Any as proto3 JSON: `@type` and its fields), and a legacy provider's error body's
// `details` become that trailer for a gRPC caller. A detail whose type neither the schema
// nor google/rpc/error_details.proto knows cannot be written as JSON: it is left out and named in the
// `qbasis-details-omitted` header, never dropped unsaid. The trailer is used only when its code is the
// call's status (gRPC's rule).
import { create, createRegistry, fromBinary, fromJson, toBinary, toJson, type JsonValue, type Registry } from '@bufbuild/protobuf';
import { AnySchema } from '@bufbuild/protobuf/wkt';
import { rpcRegistry } from './schema.ts';

/** Details past this many are left out (and counted): the body stays bounded whatever the trailer holds. */
export const MAX_DETAILS = 16;

export interface RenderedDetails {
  details: JsonValue[];
  /** Type URLs (or why) of details left out. */
  omitted: string[];
}

/** The `qbasis-details-omitted` header (printable ASCII, bounded), or nothing. */
export function omittedHeader(omitted: readonly string[]): Record<string, string> {
  return omitted.length === 0 ? {} : { 'qbasis-details-omitted': omitted.join(', ').replace(/[^\x20-\x7e]/g, '?').slice(0, 1000) };
}

export class StatusDetails {
  readonly #registry: Registry;

  constructor(schemaRegistry: Registry) {
    this.#registry = createRegistry(rpcRegistry(), schemaRegistry);
  }

  /** The trailer's value (base64) for a call that ended with `code`. */
  fromTrailer(bin: string | string[] | undefined, code: number): RenderedDetails {
    const none: RenderedDetails = { details: [], omitted: [] };
    if (typeof bin !== 'string' || bin === '') return none;
    const statusDesc = this.#registry.getMessage('google.rpc.Status');
    if (statusDesc === undefined) return none;
    let status;
    try {
      status = fromBinary(statusDesc, Buffer.from(bin, 'base64'), { readUnknownFields: false, recursionLimit: 32 });
    } catch (e) {
      return { details: [], omitted: [`grpc-status-details-bin is not a google.rpc.Status (${e instanceof Error ? e.message : String(e)})`] };
    }
    const s = status as unknown as { code: number; details: unknown[] };
    if (s.code !== code) return { details: [], omitted: [`grpc-status-details-bin has code ${s.code}, the call ended with ${code}`] };
    const out: RenderedDetails = { details: [], omitted: [] };
    for (const [i, any] of s.details.entries()) {
      const url = (any as { typeUrl: string }).typeUrl;
      if (i >= MAX_DETAILS) {
        out.omitted.push(`${s.details.length - MAX_DETAILS} more past ${MAX_DETAILS}`);
        break;
      }
      try {
        out.details.push(toJson(AnySchema, any as never, { registry: this.#registry }));
      } catch {
        out.omitted.push(url.slice(0, 200));
      }
    }
    return out;
  }

  /** A legacy app's error body (`{"code","message","details"}`, or the same under `error`) → the trailer, if it has details. */
  toTrailer(body: string, code: number, message: string): { bin?: string; omitted: string[] } {
    let details: unknown;
    try {
      const v = JSON.parse(body) as { details?: unknown; error?: { details?: unknown } };
      details = v.details ?? v.error?.details;
    } catch {
      return { omitted: [] };
    }
    if (!Array.isArray(details) || details.length === 0) return { omitted: [] };
    const statusDesc = this.#registry.getMessage('google.rpc.Status')!;
    const kept: unknown[] = [];
    const omitted: string[] = [];
    for (const [i, d] of details.entries()) {
      if (i >= MAX_DETAILS) {
        omitted.push(`${details.length - MAX_DETAILS} more past ${MAX_DETAILS}`);
        break;
      }
      try {
        kept.push(fromJson(AnySchema, d as JsonValue, { registry: this.#registry }));
      } catch {
        const t = d !== null && typeof d === 'object' ? (d as { '@type'?: unknown })['@type'] : undefined;
        omitted.push(typeof t === 'string' ? t.slice(0, 200) : `details[${i}] is not a google.protobuf.Any in JSON (an object with @type)`);
      }
    }
    if (kept.length === 0) return { omitted };
    const status = create(statusDesc, { code, message, details: kept } as never);
    return { bin: Buffer.from(toBinary(statusDesc, status)).toString('base64'), omitted };
  }
}
