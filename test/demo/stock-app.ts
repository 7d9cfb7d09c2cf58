// The demo's legacy provider: an old HTTP/JSON stock service (plain node:http, no gRPC, no protobuf) serving
// GET /v1/stock/{sku} as test/demo/stock.proto's route says. Its sidecar is its protocol gateway.
//   node test/demo/stock-app.ts --host 127.0.1.30 --port 50051 --pod stock-legacy --version 1.0.0
import http from 'node:http';
import process from 'node:process';
import { parseArgs } from 'node:util';

export const STOCK_API = 'shop.stock.v1.StockService';

if (import.meta.main) {
  const { values } = parseArgs({ options: { host: { type: 'string' }, port: { type: 'string' }, pod: { type: 'string' }, version: { type: 'string' } } });
  const servedBy = `${values.pod}@${values.version}`;
  const server = http.createServer((req, res) => {
    const m = /^\/v1\/stock\/([^/?]+)/.exec(req.url ?? '');
    req.resume();
    if (req.method !== 'GET' || m === null) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 5, message: `no route ${req.method} ${req.url}` }));
      return;
    }
    const sku = decodeURIComponent(m[1]!);
    // 64-bit integers are strings in proto3 JSON; this old service already wrote them so.
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sku, units: String(sku.length * 7), servedBy }));
  });
  server.listen(Number(values.port), values.host, () => process.stdout.write(`listening ${values.host}:${values.port}\n`));
}
