// BasisPolicy rules as pure functions: validation with a field per problem, the Accepted condition,
// and which policy applies to a call (consumer namespace, then provider, oldest wins).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import YAML from 'yaml';
import {
  acceptedCondition,
  conflicts,
  parseBasisPolicy,
  POLICY_LIMITS,
  selectPolicy,
  type BasisPolicy,
  type PolicyCandidate,
  type Problem,
} from '../../controller/basis-policy.ts';
import { Status } from '../../proto/errors.ts';
import { DESIGN_EXAMPLE } from '../fixtures/policies.ts';

const API = 'shop.orders.v1.OrderService';

function spec(s: Record<string, unknown>): unknown {
  return { apiVersion: 'qbasis.io/v1alpha1', kind: 'BasisPolicy', metadata: { name: 'orders', namespace: 'shop' }, spec: { api: API, ...s } };
}

function problemsOf(s: Record<string, unknown>): Problem[] {
  const r = parseBasisPolicy(spec(s));
  assert.equal(r.policy, undefined, 'no policy when there are problems');
  return r.problems;
}

/** The one problem `s` has. */
function oneProblem(s: Record<string, unknown>): Problem {
  const problems = problemsOf(s);
  assert.equal(problems.length, 1, JSON.stringify(problems));
  return problems[0]!;
}


test("DESIGN.md's example policy is accepted with durations in milliseconds and every number as written", () => {
  const r = parseBasisPolicy(YAML.parse(DESIGN_EXAMPLE));
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.policy, {
    api: API,
    timeoutMs: 2000,
    retry: { attempts: 2, on: ['UNAVAILABLE'], perTryTimeoutMs: 500, backoff: { baseMs: 25, maxMs: 250 }, budget: { percent: 20, minPerSecond: 10 } },
    routes: [
      { methods: ['Create', 'Cancel'], split: [{ versions: '>=1.10.0', weight: 1 }] },
      {
        split: [
          { versions: '<1.10.0', weight: 90 },
          { versions: '>=1.10.0', weight: 10 },
        ],
        mirror: { versions: '>=1.10.0', percent: 5 },
      },
    ],
    allow: [
      { id: 'spiffe://cluster.local/ns/shop/sa/checkout', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'checkout' },
      { id: 'spiffe://cluster.local/ns/billing/sa/*', trustDomain: 'cluster.local', namespace: 'billing', serviceAccount: '*' },
    ],
  } satisfies BasisPolicy);
});

test('a policy naming only its API sets no timeout, no retries, no routes, and lets every identity in', () => {
  assert.deepEqual(parseBasisPolicy(spec({})), { policy: { api: API, routes: [] }, problems: [] });
  assert.deepEqual(parseBasisPolicy({ spec: { api: API } }).policy, { api: API, routes: [] }, 'list items may lack apiVersion and kind');
  const nulls = parseBasisPolicy(YAML.parse(`spec:\n  api: ${API}\n  timeout:\n  retry:\n  routes:\n  allow:\n`));
  assert.deepEqual(nulls.policy, { api: API, routes: [] }, 'a YAML key without a value reads as absent');
  assert.deepEqual(parseBasisPolicy(spec({ allow: [] })).policy?.allow, [], 'an empty allow list lets nobody in');
});

test('a retry block names only its attempts: UNAVAILABLE, 25ms-250ms backoff and a 20 % + 10/s budget fill in', () => {
  assert.deepEqual(parseBasisPolicy(spec({ retry: { attempts: 3 } })).policy?.retry, {
    attempts: 3,
    on: ['UNAVAILABLE'],
    backoff: { baseMs: 25, maxMs: 250 },
    budget: { percent: 20, minPerSecond: 10 },
  });
  assert.deepEqual(parseBasisPolicy(spec({ retry: { attempts: 1, on: [], budget: { percent: 0.5 } } })).policy?.retry?.budget, {
    percent: 0.5,
    minPerSecond: 10,
  });
  assert.equal(oneProblem({ retry: { on: ['UNAVAILABLE'] } }).field, 'spec.retry.attempts');
});

test('durations read as Kubernetes and Go write them, and a bad one says what a duration looks like', () => {
  const good: [string, number][] = [
    ['500ms', 500],
    ['2s', 2000],
    ['1m30s', 90_000],
    ['1.5s', 1500],
    ['0.1s', 100],
    ['1h', 3_600_000],
    ['59m59s999ms', 3_599_999],
  ];
  for (const [text, ms] of good) assert.equal(parseBasisPolicy(spec({ timeout: text })).policy?.timeoutMs, ms, text);
  const bad: [unknown, RegExp][] = [
    ['soon', /not a duration.*such as 500ms, 2s or 1m30s/],
    ['2', /not a duration/],
    ['-1s', /not a duration/],
    ['1d', /not a duration.*units ms, s, m, h/],
    ['1 s', /not a duration/],
    ['', /not a duration/],
    ['0s', /is zero.*more than 0/],
    ['1h1ms', /above 1h/],
    ['99999999999999999999h', /above 1h/],
    ['1.0005s', /finer than a millisecond/],
    [2000, /is 2000; expected a duration/],
  ];
  for (const [value, want] of bad) {
    const p = oneProblem({ timeout: value });
    assert.equal(p.field, 'spec.timeout', String(value));
    assert.equal(p.reason, 'Invalid');
    assert.match(p.message, want, String(value));
  }
});

test('backoff base above max is refused at the field the user wrote', () => {
  const both = oneProblem({ retry: { attempts: 1, backoff: { base: '1s', max: '100ms' } } });
  assert.equal(both.field, 'spec.retry.backoff.base');
  assert.match(both.message, /base 1000ms is above max 100ms; expected base <= max/);
  const maxOnly = oneProblem({ retry: { attempts: 1, backoff: { max: '10ms' } } });
  assert.equal(maxOnly.field, 'spec.retry.backoff.max');
  assert.match(maxOnly.message, /base 25ms \(the default\) is above max 10ms/);
  assert.deepEqual(parseBasisPolicy(spec({ retry: { attempts: 1, backoff: { base: '100ms', max: '100ms' } } })).policy?.retry?.backoff, {
    baseMs: 100,
    maxMs: 100,
  });
});

test('a bad range is reported as InvalidRange at its field, including a YAML number and a range nothing satisfies', () => {
  const routes = (versions: unknown) => [{ methods: ['Create'], split: [{ versions: '>=1.0.0', weight: 1 }] }, { split: [{ versions, weight: 1 }] }];
  for (const [versions, want] of [
    ['1.x.y.z', /not a semver range; expected a semver range such as >=1.10.0/],
    ['', /not a semver range/],
    ['>=2.0.0 <1.0.0', /admits no version/],
    [1.1, /is 1.1; expected a semver range.*quoted/],
    ['>'.repeat(200), /200 characters long.*at most 128/],
  ] as const) {
    const p = oneProblem({ routes: routes(versions) });
    assert.deepEqual([p.field, p.reason], ['spec.routes[1].split[0].versions', 'InvalidRange'], String(versions));
    assert.match(p.message, want);
  }
  const mirror = oneProblem({ routes: [{ mirror: { versions: 'new', percent: 5 } }] });
  assert.deepEqual([mirror.field, mirror.reason], ['spec.routes[0].mirror.versions', 'InvalidRange']);
  assert.equal(parseBasisPolicy(spec({ routes: [{ split: [{ versions: ' ^1.2 ', weight: 1 }] }] })).policy?.routes[0]?.split?.[0]?.versions, '^1.2');
  assert.equal(parseBasisPolicy(spec({ routes: [{ split: [{ versions: '>=1.300.0', weight: 1 }] }] })).problems.length, 0, 'a large minor is still a range');
});

test('split weights are whole numbers, not negative, not all zero, and a split has at least one group', () => {
  const split = (...groups: unknown[]) => ({ routes: [{ split: groups }] });
  for (const weight of [-1, 0.5, '10', POLICY_LIMITS.maxWeight + 1, null]) {
    const p = oneProblem(split({ versions: '<2.0.0', weight: 1 }, { versions: '>=2.0.0', weight }));
    assert.equal(p.field, 'spec.routes[0].split[1].weight', String(weight));
    assert.match(p.message, /expected an integer from 0 to 1000000/);
  }
  const zero = oneProblem(split({ versions: '<2.0.0', weight: 0 }, { versions: '>=2.0.0', weight: 0 }));
  assert.deepEqual([zero.field, zero.message], ['spec.routes[0].split', 'gives every group weight 0; expected at least one positive weight']);
  assert.match(oneProblem(split()).message, /is empty; expected at least one \{ versions, weight \} group/);
  assert.equal(oneProblem(split({ versions: '<2.0.0', weight: 5 }, { versions: 'bad', weight: 0 })).field, 'spec.routes[0].split[1].versions');
  assert.equal(parseBasisPolicy(spec(split({ versions: '<2.0.0', weight: 0 }, { versions: '>=2.0.0', weight: 1 }))).problems.length, 0);
});

test('percentages are 0 to 100 and counts are bounded integers', () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ retry: { attempts: 6 } }, 'spec.retry.attempts'],
    [{ retry: { attempts: -1 } }, 'spec.retry.attempts'],
    [{ retry: { attempts: 1.5 } }, 'spec.retry.attempts'],
    [{ retry: { attempts: 1, budget: { percent: 101 } } }, 'spec.retry.budget.percent'],
    [{ retry: { attempts: 1, budget: { minPerSecond: -1 } } }, 'spec.retry.budget.minPerSecond'],
    [{ retry: { attempts: 1, budget: { minPerSecond: 0.5 } } }, 'spec.retry.budget.minPerSecond'],
    [{ routes: [{ mirror: { versions: '>=2.0.0', percent: 100.5 } }] }, 'spec.routes[0].mirror.percent'],
    [{ routes: [{ mirror: { versions: '>=2.0.0', percent: Number.NaN } }] }, 'spec.routes[0].mirror.percent'],
    [{ routes: [{ mirror: { versions: '>=2.0.0' } }] }, 'spec.routes[0].mirror.percent'],
  ];
  for (const [s, field] of cases) assert.equal(oneProblem(s).field, field, JSON.stringify(s));
  assert.ok(Object.is(parseBasisPolicy(spec({ retry: { attempts: -0 } })).policy?.retry?.attempts, 0), '-0 reads as 0');
});

test('retry codes are gRPC status names: OK, lower case, numbers and repeats are refused', () => {
  for (const [code, want] of [
    ['OK', /OK is success and never retried; expected one of CANCELLED, UNKNOWN/],
    ['unavailable', /'unavailable' is not a gRPC status name/],
    [14, /14 is not a gRPC status name/],
  ] as const) {
    const p = oneProblem({ retry: { attempts: 1, on: ['UNAVAILABLE', code] } });
    assert.equal(p.field, 'spec.retry.on[1]');
    assert.match(p.message, want);
  }
  assert.match(oneProblem({ retry: { attempts: 1, on: ['ABORTED', 'ABORTED'] } }).message, /ABORTED is listed twice/);
  const all = Object.keys(Status).filter((c) => c !== 'OK');
  assert.deepEqual(parseBasisPolicy(spec({ retry: { attempts: 1, on: all } })).policy?.retry?.on, all);
});

test('a method an earlier route already matches is reported as dead where it is written (first match wins)', () => {
  const p = oneProblem({ routes: [{ methods: ['Create', 'Cancel'], split: [{ versions: '>=1.10.0', weight: 1 }] }, { methods: ['Get', 'Cancel'] }] });
  assert.equal(p.field, 'spec.routes[1].methods[1]');
  assert.match(p.message, /Cancel is matched by routes\[0\] first, so this route never sees it/);
  assert.match(oneProblem({ routes: [{ methods: ['Get', 'Get'] }] }).message, /Get is listed twice in this route/);
  const path = oneProblem({ routes: [{ methods: ['/shop.orders.v1.OrderService/Create'] }] });
  assert.deepEqual([path.field, /expected a gRPC method name/.test(path.message)], ['spec.routes[0].methods[0]', true]);
  assert.match(oneProblem({ routes: [{ methods: [] }] }).message, /is empty; expected method names, or no methods to match every method/);
});

test('routes after a route without methods are reported as never used', () => {
  const problems = problemsOf({ routes: [{ methods: ['Create'] }, { split: [{ versions: '>=1.0.0', weight: 1 }] }, { methods: ['Get'] }, {}] });
  assert.deepEqual(
    problems.map((p) => p.field),
    ['spec.routes[2]', 'spec.routes[3]'],
  );
  assert.match(problems[0]!.message, /never used: routes\[1\] has no methods and matches every call first/);
});

test('allow takes SPIFFE IDs of the mesh, with * only for a whole namespace or service account', () => {
  const ok = parseBasisPolicy(spec({ allow: ['spiffe://cluster.local/ns/*/sa/*', 'spiffe://example.org/ns/billing/sa/job.runner'] }));
  assert.deepEqual(ok.problems, []);
  for (const [id, want] of [
    ['spiffe://cluster.local/ns/shop', /not a SPIFFE ID; expected spiffe:\/\/<trust domain>\/ns\/<namespace>\/sa\/<service account>/],
    ['https://cluster.local/ns/shop/sa/checkout', /not a SPIFFE ID/],
    ['spiffe://Cluster.Local/ns/shop/sa/checkout', /not a SPIFFE ID/],
    ['spiffe://cluster.local/ns/shop/sa/checkout/extra', /not a SPIFFE ID/],
    ['spiffe://*/ns/shop/sa/checkout', /not a SPIFFE ID/],
    ['spiffe://cluster.local/ns/sh*/sa/checkout', /namespace 'sh\*' is not a Kubernetes namespace name/],
    ['spiffe://cluster.local/ns/Shop/sa/checkout', /namespace 'Shop'/],
    ['spiffe://cluster.local/ns/shop/sa/check_out', /service account 'check_out' is not a Kubernetes name/],
    [42, /is 42; expected spiffe:/],
  ] as const) {
    const p = oneProblem({ allow: ['spiffe://cluster.local/ns/shop/sa/a', id] });
    assert.equal(p.field, 'spec.allow[1]', String(id));
    assert.match(p.message, want, String(id));
  }
  assert.match(oneProblem({ allow: ['spiffe://td/ns/a/sa/b', 'spiffe://td/ns/a/sa/b'] }).message, /listed twice/);
});

test('the API is required and must be a gRPC service name', () => {
  for (const api of [undefined, '', '1shop.Orders', 'shop/Orders', 'a'.repeat(254), 7]) {
    const r = parseBasisPolicy({ spec: api === undefined ? {} : { api } });
    assert.equal(r.problems.length, 1, JSON.stringify(r.problems));
    assert.equal(r.problems[0]!.field, 'spec.api');
    assert.match(r.problems[0]!.message, /gRPC service name/);
  }
  assert.deepEqual(parseBasisPolicy({ kind: 'BasisPolicy' }).problems.map((p) => p.field), ['spec']);
});

test('unknown fields are reported where they are written, not dropped', () => {
  const problems = problemsOf({ colour: 'blue', retries: { attempts: 1 }, routes: [{ split: [{ versions: '>=1.0.0', weight: 1, range: '^1' }] }] });
  assert.deepEqual(
    problems.map((p) => p.field),
    ['spec.colour', 'spec.retries', 'spec.routes[0].split[0].range'],
  );
  assert.match(problems[0]!.message, /is not a field here; expected only api, timeout, retry, routes, allow/);
  assert.equal(parseBasisPolicy({ spec: { api: API }, extra: 1 }).problems[0]?.field, 'BasisPolicy.extra');
});

test('an unquoted on: read by kubectl (YAML 1.1, so true) is explained', () => {
  // What kubectl sends for `retry: { attempts: 2, on: [UNAVAILABLE] }`.
  const p = oneProblem({ retry: { attempts: 2, true: ['UNAVAILABLE'] } });
  assert.equal(p.field, 'spec.retry.true');
  assert.match(p.message, /unquoted on: reads as true in YAML 1\.1.*write "on": quoted/);
});

test('another kind or apiVersion is refused; metadata and status are not checked', () => {
  assert.deepEqual(parseBasisPolicy({ ...(spec({}) as object), kind: 'BasisService' }).problems.map((p) => [p.field, p.message]), [
    ['kind', "is 'BasisService'; expected BasisPolicy"],
  ]);
  assert.equal(parseBasisPolicy({ ...(spec({}) as object), apiVersion: 'qbasis.io/v1' }).problems[0]?.field, 'apiVersion');
  const withServerFields = { ...(spec({}) as object), metadata: { name: 'x', managedFields: [{}], uid: 'u' }, status: { conditions: [] } };
  assert.deepEqual(parseBasisPolicy(withServerFields).problems, []);
  for (const notAnObject of [null, 'spec', [], 5]) {
    assert.deepEqual(parseBasisPolicy(notAnObject).problems.map((p) => p.field), ['BasisPolicy'], String(notAnObject));
  }
});

/** An array that counts how many of its elements were read. */
function counted(length: number, element: unknown): { list: unknown[]; reads: () => number } {
  let reads = 0;
  const list = new Proxy(new Array<unknown>(length).fill(element), {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
      return Reflect.get(target, key, receiver);
    },
  });
  return { list, reads: () => reads };
}

test('hostile sizes: 10,000 routes, groups, methods, identities or codes are refused in one short problem without being read', () => {
  const cases: [string, (l: unknown[]) => Record<string, unknown>, unknown, string][] = [
    ['routes', (l) => ({ routes: l }), { methods: ['Create'] }, 'spec.routes'],
    ['split groups', (l) => ({ routes: [{ split: l }] }), { versions: '>=1.0.0', weight: 1 }, 'spec.routes[0].split'],
    ['methods', (l) => ({ routes: [{ methods: l }] }), 'Create', 'spec.routes[0].methods'],
    ['allow', (l) => ({ allow: l }), 'spiffe://cluster.local/ns/a/sa/b', 'spec.allow'],
    ['retry codes', (l) => ({ retry: { attempts: 1, on: l } }), 'UNAVAILABLE', 'spec.retry.on'],
  ];
  for (const [what, place, element, field] of cases) {
    const { list, reads } = counted(10_000, element);
    const p = oneProblem(place(list));
    assert.equal(p.field, field, what);
    assert.match(p.message, /^has 10000 entries; expected at most \d+ /, what);
    assert.ok(p.message.length < 120, p.message);
    assert.equal(reads(), 0, `${what}: no element read`);
  }
});

test('hostile sizes: megabyte strings are refused by length, and the message does not quote them', () => {
  const mb = 'x'.repeat(1 << 20);
  const cases: [Record<string, unknown>, string][] = [
    [{ api: mb }, 'spec.api'],
    [{ timeout: mb }, 'spec.timeout'],
    [{ routes: [{ methods: [mb] }] }, 'spec.routes[0].methods[0]'],
    [{ routes: [{ split: [{ versions: mb, weight: 1 }] }] }, 'spec.routes[0].split[0].versions'],
    [{ allow: [mb] }, 'spec.allow[0]'],
    [{ [mb]: 1 }, `spec.${'x'.repeat(40)}…(1048576 chars)`],
  ];
  for (const [s, field] of cases) {
    const p = oneProblem(s);
    assert.equal(p.field, field);
    assert.ok(p.message.length < 300, p.message.slice(0, 300));
  }
});

test('hostile sizes: 100,000 unknown fields give a bounded list of problems that says how many more there are', () => {
  const many = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`f${i}`, i]));
  const problems = problemsOf(many);
  assert.equal(problems.length, POLICY_LIMITS.listedProblems + 1);
  const last = problems.at(-1)!;
  assert.equal(last.field, `spec.f${POLICY_LIMITS.listedProblems}`);
  assert.match(last.message, new RegExp(`^${100_000 - POLICY_LIMITS.listedProblems} more problems not listed`));
  const c = acceptedCondition({ parsed: { problems }, generation: 1, apiKnown: true });
  assert.ok(c.message.length < 32_768, 'fits the CRD condition message limit');
});

// ---- Generated policies: a model, the object a user writes for it, and the policy it must give. ----

const ident = fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,11}$/);
const apiArb = fc.array(ident, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('.'));
const CODE_NAMES = Object.keys(Status).filter((c) => c !== 'OK');

/** ms written the ways people write it; the expected value is the number, computed independently. */
const durationArb = fc
  .tuple(fc.integer({ min: 1, max: 3_600_000 }), fc.constantFrom('ms', 'seconds', 'parts'))
  .map(([ms, style]) => {
    if (style === 'ms') return { ms, text: `${ms}ms` };
    if (style === 'seconds') return { ms, text: `${ms / 1000}s` };
    const h = Math.floor(ms / 3_600_000);
    const m = Math.floor((ms % 3_600_000) / 60_000);
    const s = Math.floor((ms % 60_000) / 1000);
    const text = `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}${ms % 1000 > 0 ? `${ms % 1000}ms` : ''}`;
    return { ms, text };
  });

const rangeArb = fc
  .tuple(fc.nat(20), fc.nat(20), fc.nat(20), fc.constantFrom('>=', '^', '~', '', '<=', '<', 'x'))
  .map(([a, b, c, op]) => (op === '<' ? `<${a + 1}.0.0` : op === 'x' ? `${a}.${b}.x` : `${op}${a}.${b}.${c}`));

const percentArb = fc.integer({ min: 0, max: 10_000 }).map((n) => n / 100);

const splitArb = fc
  .array(fc.record({ versions: rangeArb, weight: fc.integer({ min: 0, max: POLICY_LIMITS.maxWeight }) }), { minLength: 1, maxLength: 16 })
  .filter((groups) => groups.some((g) => g.weight > 0));

const routeArb = fc.record(
  { methods: fc.uniqueArray(ident, { minLength: 1, maxLength: 8 }), split: splitArb, mirror: fc.record({ versions: rangeArb, percent: percentArb }) },
  { requiredKeys: ['methods'] },
);

const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
const spiffeArb = fc
  .tuple(dnsLabel, fc.oneof(dnsLabel, fc.constant('*')), fc.oneof(dnsLabel, fc.constant('*')))
  .map(([td, ns, sa]) => `spiffe://${td}.local/ns/${ns}/sa/${sa}`);

type BackoffModel = { base?: { ms: number; text: string }; max?: { ms: number; text: string } };
const backoffArb = fc.tuple(durationArb, durationArb, fc.constantFrom('both', 'base', 'max')).map(([a, b, which]): BackoffModel => {
  const [lo, hi] = a.ms <= b.ms ? [a, b] : [b, a];
  if (which === 'base' && lo.ms <= 250) return { base: lo };
  if (which === 'max' && hi.ms >= 25) return { max: hi };
  return { base: lo, max: hi };
});

const retryArb = fc.record(
  {
    attempts: fc.integer({ min: 0, max: 5 }),
    on: fc.uniqueArray(fc.constantFrom(...CODE_NAMES), { maxLength: 16 }),
    perTryTimeout: durationArb,
    backoff: backoffArb,
    budget: fc.record({ percent: percentArb, minPerSecond: fc.integer({ min: 0, max: POLICY_LIMITS.maxMinPerSecond }) }, { requiredKeys: [] }),
  },
  { requiredKeys: ['attempts'] },
);

const modelArb = fc.record(
  {
    api: apiArb,
    timeout: durationArb,
    retry: retryArb,
    routes: fc.tuple(fc.array(routeArb, { maxLength: 8 }), fc.option(fc.record({ split: splitArb }), { nil: undefined })),
    allow: fc.uniqueArray(spiffeArb, { maxLength: 10 }),
  },
  { requiredKeys: ['api'] },
);
type Model = typeof modelArb extends fc.Arbitrary<infer M> ? M : never;

/** Method names made unique across routes (first match wins, so a repeat would be a problem). */
function routesOf(m: Model): { methods?: string[]; split?: { versions: string; weight: number }[]; mirror?: { versions: string; percent: number } }[] {
  if (m.routes === undefined) return [];
  const [withMethods, catchAll] = m.routes;
  const routes = withMethods.map((r, i) => ({ ...r, methods: r.methods.map((name) => `${name}_${i}`) }));
  return catchAll === undefined ? routes : [...routes, catchAll];
}

function rawOf(m: Model): unknown {
  const s: Record<string, unknown> = { api: m.api };
  if (m.timeout !== undefined) s['timeout'] = m.timeout.text;
  if (m.retry !== undefined) {
    const r = m.retry;
    s['retry'] = {
      attempts: r.attempts,
      ...(r.on === undefined ? {} : { on: r.on }),
      ...(r.perTryTimeout === undefined ? {} : { perTryTimeout: r.perTryTimeout.text }),
      ...(r.backoff === undefined ? {} : { backoff: { ...(r.backoff.base ? { base: r.backoff.base.text } : {}), ...(r.backoff.max ? { max: r.backoff.max.text } : {}) } }),
      ...(r.budget === undefined ? {} : { budget: r.budget }),
    };
  }
  if (m.routes !== undefined) s['routes'] = routesOf(m);
  if (m.allow !== undefined) s['allow'] = m.allow;
  return { apiVersion: 'qbasis.io/v1alpha1', kind: 'BasisPolicy', metadata: { name: 'p' }, spec: s };
}

function expectedOf(m: Model): BasisPolicy {
  const r = m.retry;
  return {
    api: m.api,
    ...(m.timeout === undefined ? {} : { timeoutMs: m.timeout.ms }),
    ...(r === undefined
      ? {}
      : {
          retry: {
            attempts: r.attempts,
            on: (r.on ?? ['UNAVAILABLE']) as NonNullable<BasisPolicy['retry']>['on'],
            ...(r.perTryTimeout === undefined ? {} : { perTryTimeoutMs: r.perTryTimeout.ms }),
            backoff: { baseMs: r.backoff?.base?.ms ?? 25, maxMs: r.backoff?.max?.ms ?? 250 },
            budget: { percent: r.budget?.percent ?? 20, minPerSecond: r.budget?.minPerSecond ?? 10 },
          },
        }),
    routes: routesOf(m),
    ...(m.allow === undefined
      ? {}
      : {
          allow: m.allow.map((id) => {
            const [, trustDomain = '', namespace = '', serviceAccount = ''] = /^spiffe:\/\/(.+)\/ns\/(.+)\/sa\/(.+)$/.exec(id) ?? [];
            return { id, trustDomain, namespace, serviceAccount };
          }),
        }),
  };
}

test('any valid generated policy is accepted with no problems and every number and range as written', () => {
  fc.assert(
    fc.property(modelArb, (m) => {
      const r = parseBasisPolicy(JSON.parse(JSON.stringify(rawOf(m))));
      assert.deepEqual(r.problems, []);
      assert.deepEqual(r.policy, JSON.parse(JSON.stringify(expectedOf(m))), 'fast-check records have no prototype');
    }),
    { numRuns: 300 },
  );
});

type Kind = 'api' | 'duration' | 'attempts' | 'code' | 'percent' | 'minPerSecond' | 'method' | 'range' | 'weight' | 'spiffe';

const BAD: Record<Kind, unknown[]> = {
  api: ['', '1shop.Orders', 'a..b', 'a'.repeat(300), 5, []],
  duration: ['soon', '0s', '2h', '1.5', '1.0005s', '-1s', 2000, '1d', {}],
  attempts: [6, -1, 1.5, '2', true],
  code: ['OK', 'unavailable', 'NOPE', 14],
  percent: [-1, 101, '5', Number.POSITIVE_INFINITY],
  minPerSecond: [-1, 0.5, 1e9, '1'],
  method: ['', 'Create/x', '1x', 'a.b', 7],
  range: ['not a range', '>=2.0.0 <1.0.0', 1.1, '', '=>1'],
  weight: [-1, 0.5, '10', 2e6],
  spiffe: ['spiffe://cluster.local/ns/shop', 'http://x/ns/a/sa/b', 'spiffe://Cluster/ns/a/sa/b', 'spiffe://td/ns/a*/sa/b', 3],
};

const KIND_OF_KEY: Record<string, Kind> = {
  api: 'api',
  timeout: 'duration',
  perTryTimeout: 'duration',
  base: 'duration',
  max: 'duration',
  attempts: 'attempts',
  on: 'code',
  percent: 'percent',
  minPerSecond: 'minPerSecond',
  methods: 'method',
  versions: 'range',
  weight: 'weight',
  allow: 'spiffe',
};

interface Site {
  field: string;
  kind: Kind | 'mapping' | 'earlierMethod';
  set: (v: unknown) => void;
  value: unknown;
}

/** Every place one corruption can go, with the field path the parser must name. */
function sites(node: unknown, field: string, key: string, set: (v: unknown) => void, out: Site[], methodsSeen: string[]): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => {
      const f = `${field}[${i}]`;
      if (key === 'methods' && methodsSeen.length > 0) {
        out.push({ field: f, kind: 'earlierMethod', value: methodsSeen[0], set: (v) => (node[i] = v) });
      }
      sites(item, f, key, (v) => (node[i] = v), out, methodsSeen);
      if (key === 'methods') methodsSeen.push(item as string);
    });
    return;
  }
  if (typeof node === 'object' && node !== null) {
    const o = node as Record<string, unknown>;
    out.push({ field, kind: 'mapping', value: o, set: () => (o['colour'] = 'blue') });
    for (const [k, v] of Object.entries(o)) sites(v, `${field}.${k}`, k, (x) => (o[k] = x), out, methodsSeen);
    return;
  }
  const kind = KIND_OF_KEY[key];
  if (kind !== undefined) out.push({ field, kind, value: node, set });
}

test('any single corrupted field of a valid policy gives exactly one problem, naming that field', () => {
  fc.assert(
    fc.property(modelArb, fc.nat(), fc.nat(), (m, pick, badPick) => {
      const raw = structuredClone(rawOf(m)) as { spec: unknown };
      const found: Site[] = [];
      sites(raw.spec, 'spec', 'spec', (v) => (raw.spec = v), found, []);
      const site = found[pick % found.length]!;
      let field = site.field;
      if (site.kind === 'mapping') {
        site.set(undefined);
        field = `${site.field}.colour`;
      } else if (site.kind === 'earlierMethod') site.set(site.value);
      else {
        const bad = BAD[site.kind];
        site.set(bad[badPick % bad.length]);
      }
      const r = parseBasisPolicy(raw);
      assert.equal(r.policy, undefined);
      assert.equal(r.problems.length, 1, `${site.kind} at ${site.field}: ${JSON.stringify(r.problems)}`);
      assert.equal(r.problems[0]!.field, field);
      assert.equal(r.problems[0]!.reason, site.kind === 'range' ? 'InvalidRange' : 'Invalid', site.kind);
    }),
    { numRuns: 1000 },
  );
});

test('no input makes the parser throw, and what it reports stays bounded', () => {
  const anyValue = fc.anything({ maxDepth: 4, withNullPrototype: true, withObjectString: true });
  fc.assert(
    fc.property(fc.oneof(anyValue, anyValue.map((s) => ({ spec: s })), anyValue.map((r) => ({ spec: { api: API, retry: r, routes: [r], allow: [r] } }))), (obj) => {
      const r = parseBasisPolicy(obj);
      assert.equal(r.policy === undefined, r.problems.length > 0);
      assert.ok(r.problems.length <= POLICY_LIMITS.listedProblems + 1);
      for (const p of r.problems) assert.ok(p.field.length < 200 && p.message.length < 1000, JSON.stringify(p).slice(0, 300));
    }),
    { numRuns: 500 },
  );
});

// ---- Accepted ----

const valid = parseBasisPolicy(YAML.parse(DESIGN_EXAMPLE));

test('Accepted says what the policy does, carries observedGeneration, and reads True', () => {
  assert.deepEqual(acceptedCondition({ parsed: valid, generation: 4, apiKnown: true }), {
    type: 'Accepted',
    status: 'True',
    reason: 'Accepted',
    message: `applies to ${API}: timeout 2s; 2 retries on UNAVAILABLE; 2 routes (1 mirrored); 2 identity patterns allowed`,
    observedGeneration: 4,
  });
});

test('reasons come in the order a user can act on: Invalid/InvalidRange, then Conflict, then NoSuchAPI', () => {
  const badRange = parseBasisPolicy(spec({ routes: [{ split: [{ versions: 'nope', weight: 1 }] }] }));
  const badBoth = parseBasisPolicy(spec({ timeout: 'soon', routes: [{ split: [{ versions: 'nope', weight: 1 }] }] }));
  const everything = { conflict: { winner: 'orders-old' }, apiKnown: false, generation: 7 };
  const range = acceptedCondition({ parsed: badRange, ...everything });
  assert.deepEqual([range.status, range.reason, range.observedGeneration], ['False', 'InvalidRange', 7]);
  assert.match(range.message, /^refused, the last accepted spec \(if any\) stays in force: spec\.routes\[0\]\.split\[0\]\.versions: 'nope' is not a semver range/);
  assert.equal(acceptedCondition({ parsed: badBoth, ...everything }).reason, 'Invalid', 'InvalidRange only when every problem is a range');
  const conflict = acceptedCondition({ parsed: valid, ...everything });
  assert.deepEqual([conflict.status, conflict.reason], ['False', 'Conflict']);
  assert.match(conflict.message, /^orders-old, an older BasisPolicy for shop\.orders\.v1\.OrderService in this namespace, applies instead/);
  const unknown = acceptedCondition({ parsed: valid, generation: 7, apiKnown: false });
  assert.deepEqual([unknown.status, unknown.reason], ['False', 'NoSuchAPI']);
  assert.match(unknown.message, /no pod in the mesh provides shop\.orders\.v1\.OrderService.*applies as soon as one does/);
});

// ---- Which policy applies ----

function cand(namespace: string, name: string, creationTimestamp: string | undefined, api = API): PolicyCandidate {
  return { namespace, name, creationTimestamp, api };
}

const T = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString().replace('.000Z', 'Z');

test("the caller's namespace's policy applies, else the providing namespace's", () => {
  const policies = [cand('shop', 'orders', T(5)), cand('checkout', 'orders-client', T(9)), cand('shop', 'other', T(0), 'shop.cart.v1.Cart')];
  const q = { api: API, providerNamespaces: ['shop'] };
  assert.equal(selectPolicy(policies, { ...q, callerNamespace: 'checkout' })?.name, 'orders-client', 'consumer first');
  assert.equal(selectPolicy(policies, { ...q, callerNamespace: 'billing' })?.name, 'orders', 'else producer');
  assert.equal(selectPolicy(policies, { ...q, callerNamespace: 'shop' })?.name, 'orders', 'the provider calling itself');
  assert.equal(selectPolicy(policies, { api: API, callerNamespace: 'billing', providerNamespaces: ['west'] }), undefined, 'none applies');
  assert.equal(selectPolicy(policies, { api: 'shop.cart.v1.Cart', callerNamespace: 'billing', providerNamespaces: [] }), undefined);
});

test('when several namespaces provide the API, the oldest of their policies applies, so a new namespace never takes over', () => {
  const policies = [cand('west', 'orders', T(30)), cand('east', 'orders', T(10)), cand('aaa-new', 'orders', T(50))];
  const q = { api: API, callerNamespace: 'billing', providerNamespaces: ['aaa-new', 'west', 'east'] };
  assert.equal(selectPolicy(policies, q)?.namespace, 'east');
  assert.equal(selectPolicy([cand('west', 'orders', T(10)), cand('east', 'orders', T(10))], q)?.namespace, 'east', 'same second: namespace order');
});

test('two policies for one API in one namespace: the oldest applies, the other is reported as losing to it', () => {
  const policies = [
    cand('shop', 'orders-b', T(10)),
    cand('shop', 'orders-a', T(10)),
    cand('shop', 'orders-old', T(1)),
    cand('shop', 'no-timestamp', undefined),
    cand('shop', 'bad-timestamp', 'yesterday'),
    cand('shop', 'cart', T(20), 'shop.cart.v1.Cart'),
    cand('west', 'orders', T(30)),
  ];
  assert.equal(selectPolicy(policies, { api: API, callerNamespace: 'shop', providerNamespaces: [] })?.name, 'orders-old');
  assert.deepEqual(conflicts(policies), [
    { namespace: 'shop', name: 'bad-timestamp', api: API, winner: 'orders-old' },
    { namespace: 'shop', name: 'no-timestamp', api: API, winner: 'orders-old' },
    { namespace: 'shop', name: 'orders-a', api: API, winner: 'orders-old' },
    { namespace: 'shop', name: 'orders-b', api: API, winner: 'orders-old' },
  ]);
  assert.equal(selectPolicy(policies.slice(0, 2), { api: API, callerNamespace: 'shop', providerNamespaces: [] })?.name, 'orders-a', 'same second: name order');
});

test('the policy chosen never depends on list order and is never one that reports Conflict', () => {
  const candArb = fc.record({
    namespace: fc.constantFrom('shop', 'west', 'east', 'billing'),
    name: fc.constantFrom('a', 'b', 'c', 'd'),
    creationTimestamp: fc.option(fc.integer({ min: 0, max: 5 }).map(T), { nil: undefined }),
    api: fc.constantFrom(API, 'shop.cart.v1.Cart'),
  });
  // Names are unique within a namespace, as in Kubernetes.
  const policiesArb = fc.uniqueArray(candArb, { selector: (p) => `${p.namespace}/${p.name}`, maxLength: 12 });
  const queryArb = fc.record({
    api: fc.constantFrom(API, 'shop.cart.v1.Cart'),
    callerNamespace: fc.constantFrom('shop', 'west', 'east', 'billing'),
    providerNamespaces: fc.subarray(['shop', 'west', 'east']),
  });
  fc.assert(
    fc.property(policiesArb, queryArb, fc.nat(), (policies, q, seed) => {
      const shuffled = [...policies].sort((a, b) => ((seed ^ a.name.charCodeAt(0) ^ a.namespace.length) % 3) - ((seed ^ b.name.charCodeAt(0) ^ b.namespace.length) % 3));
      const chosen = selectPolicy(policies, q);
      assert.equal(selectPolicy(shuffled, q), chosen);
      assert.deepEqual(conflicts(shuffled), conflicts(policies));
      if (chosen !== undefined) {
        assert.ok(!conflicts(policies).some((c) => c.namespace === chosen.namespace && c.name === chosen.name), 'a winner');
        assert.ok(chosen.namespace === q.callerNamespace || q.providerNamespaces.includes(chosen.namespace));
      }
    }),
    { numRuns: 500 },
  );
});
