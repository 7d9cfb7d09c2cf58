// Uint8Array.prototype.toBase64 (ES2026) where the runtime lacks it (Node 24), backed by Buffer's native
// encoder. @bufbuild/protobuf uses it for bytes fields when it is there at its load; otherwise it builds
// each base64 string one character at a time, which in the gateway bench was 15 % of all the bytes the
// caller's sidecar allocated. So this module is imported before @bufbuild/protobuf is first loaded
// (sidecar/main.ts, json-codec.ts).
interface ToBase64Options {
  alphabet?: 'base64' | 'base64url';
  omitPadding?: boolean;
}

type WithToBase64 = Uint8Array & { toBase64?: (opts?: ToBase64Options) => string };

if (typeof (Uint8Array.prototype as WithToBase64).toBase64 !== 'function') {
  Object.defineProperty(Uint8Array.prototype, 'toBase64', {
    configurable: true,
    writable: true,
    enumerable: false,
    value: function toBase64(this: Uint8Array, opts?: ToBase64Options): string {
      if (!(this instanceof Uint8Array)) throw new TypeError('Uint8Array.prototype.toBase64 called on a value that is not a Uint8Array');
      const alphabet = opts?.alphabet ?? 'base64';
      if (alphabet !== 'base64' && alphabet !== 'base64url') throw new TypeError(`expected alphabet "base64" or "base64url", got ${String(alphabet)}`);
      const bytes = Buffer.from(this.buffer, this.byteOffset, this.byteLength);
      const omit = opts?.omitPadding === true;
      if (alphabet === 'base64') {
        const s = bytes.toString('base64');
        return omit ? s.replace(/=+$/, '') : s;
      }
      const s = bytes.toString('base64url'); // never padded
      return omit || s.length % 4 === 0 ? s : s + '='.repeat(4 - (s.length % 4));
    },
  });
}

export {};
