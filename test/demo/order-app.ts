// The demo's sample app: a plain @grpc/grpc-js OrderService that answers with its
// version and pod name. Knows nothing about qbasis; its sidecar does the routing.
//   node test/demo/order-app.ts --host 127.0.1.10 --port 50051 --pod orders-v1-a --version 1.4.0
// Prints `listening <host>:<port>` once bound; exits on SIGTERM/SIGINT.
import path from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const ORDERS_PROTO = path.join(import.meta.dirname, 'orders.proto');
export const ORDER_API = 'shop.orders.v1.OrderService';

export interface CreateOrderRequest {
  item: string;
  quantity: number;
}
export interface QuoteRequest {
  item: string;
  quantity: number;
}
export interface QuoteReply {
  item: string;
  quantity: number;
  totalCents: number;
}
/** Cents per unit in every quote. */
export const UNIT_CENTS = 1999;

export interface Order {
  id: string;
  item: string;
  quantity: number;
  servedByPod: string;
  servedByVersion: string;
}

type OrderServiceCtor = new (target: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => grpc.Client & {
  create(req: CreateOrderRequest, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Order) => void): grpc.ClientUnaryCall;
  quote(req: QuoteRequest, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: QuoteReply) => void): grpc.ClientUnaryCall;
};

function loadOrders(): { ctor: OrderServiceCtor; service: grpc.ServiceDefinition } {
  const def = protoLoader.loadSync(ORDERS_PROTO, { keepCase: false, longs: Number, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { shop: { orders: { v1: { OrderService: OrderServiceCtor & { service: grpc.ServiceDefinition } } } } };
  const ctor = pkg.shop.orders.v1.OrderService;
  return { ctor, service: ctor.service };
}

export function orderClient(target: string): InstanceType<OrderServiceCtor> {
  const { ctor } = loadOrders();
  return new ctor(target, grpc.credentials.createInsecure());
}

async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    // --quote-bug: the demo's "rewrite" rounds bulk quotes (every 20th quantity) one cent off.
    options: { host: { type: 'string' }, port: { type: 'string' }, pod: { type: 'string' }, version: { type: 'string' }, 'quote-bug': { type: 'boolean' } },
  });
  const host = values.host ?? '127.0.0.1';
  const port = Number(values.port ?? '50051');
  const pod = values.pod ?? 'orders';
  const version = values.version ?? '0.0.0';
  let n = 0;
  const server = new grpc.Server();
  server.addService(loadOrders().service, {
    Create: (call: grpc.ServerUnaryCall<CreateOrderRequest, Order>, cb: grpc.sendUnaryData<Order>) => {
      n++;
      cb(null, { id: `${pod}-${n}`, item: call.request.item, quantity: call.request.quantity, servedByPod: pod, servedByVersion: version });
    },
    Quote: (call: grpc.ServerUnaryCall<QuoteRequest, QuoteReply>, cb: grpc.sendUnaryData<QuoteReply>) => {
      const { item, quantity } = call.request;
      const off = values['quote-bug'] === true && quantity % 20 === 0 ? 1 : 0;
      cb(null, { item, quantity, totalCents: quantity * UNIT_CENTS - off });
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  process.stdout.write(`listening ${host}:${port}\n`);
  const stop = (): void => {
    server.tryShutdown(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  run(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`order-app: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
