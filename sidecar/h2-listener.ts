// The HTTP/2 server both listeners use: large windows (1 KiB messages at high rates would otherwise
// stall on WINDOW_UPDATEs), no push, Nagle off, and the set of open sessions for draining.
import http2 from 'node:http2';
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';

export function createH2Listener(): { server: Http2Server; sessions: Set<ServerHttp2Session> } {
  const server = http2.createServer({ settings: { enablePush: false, initialWindowSize: 1024 * 1024 }, maxSessionMemory: 64 });
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s: ServerHttp2Session) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
    s.once('connect', () => {
      try {
        s.setLocalWindowSize(16 * 1024 * 1024);
      } catch {
        // only an optimisation
      }
    });
  });
  server.on('connection', (sock: Socket) => sock.setNoDelay(true));
  return { server, sessions };
}
