// What an app-protocol http sidecar converts with: the schema (--schema), checked at start against
// the APIs the pod provides and requires, the JSON codec and the HTTP routes of its methods.
import type { ApiRange, ApiVersion } from '../../proto/annotations.ts';
import { HttpRoutes } from './http-routes.ts';
import { JsonCodec } from './json-codec.ts';
import { loadSchema, requireServices, type Schema } from './schema.ts';
import { StatusDetails } from './status-details.ts';

export interface Gateway {
  schema: Schema;
  codec: JsonCodec;
  routes: HttpRoutes;
  /** google.rpc.Status details of gRPC errors, as JSON for legacy callers. */
  details: StatusDetails;
  /** Largest HTTP body taken or read (--max-frame-bytes): above it the app gets 413, a peer RESOURCE_EXHAUSTED. */
  maxBodyBytes: number;
}

/** Throws SchemaError, one line: the file, the API and what is missing (or why the file does not load). */
export function loadGateway(path: string, provides: ApiVersion[], requires: ApiRange[], maxBodyBytes: number): Gateway {
  const schema = loadSchema(path);
  requireServices(schema, provides.map((p) => p.api), 'qbasis.io/provides, --provides');
  requireServices(schema, requires.map((r) => r.api), 'qbasis.io/requires, --requires');
  return { schema, codec: new JsonCodec(schema.registry, { maxBytes: maxBodyBytes }), routes: new HttpRoutes(schema), details: new StatusDetails(schema.registry), maxBodyBytes };
}
