// FNV-1a (32-bit) over UTF-8, as DESIGN.md fixes for API and method ids.
const OFFSET_BASIS = 0x811c9dc5;
const PRIME = 0x01000193;
const utf8 = new TextEncoder();

export function fnv1a32(text: string): number {
  let h = OFFSET_BASIS;
  // ASCII fast path: gRPC names are almost always ASCII, so skip the encoder allocation.
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return fnv1a32Bytes(utf8.encode(text));
    h = Math.imul(h ^ c, PRIME);
  }
  return h >>> 0;
}

export function fnv1a32Bytes(bytes: Uint8Array): number {
  let h = OFFSET_BASIS;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, PRIME);
  return h >>> 0;
}

/** API id: the full 32-bit FNV-1a of the fully-qualified service name. */
export function apiId(api: string): number {
  return fnv1a32(api);
}

/** Method id: FNV-1a of the method name, xor-folded to 16 bits. */
export function methodId(method: string): number {
  const h = fnv1a32(method);
  return ((h >>> 16) ^ (h & 0xffff)) >>> 0;
}
