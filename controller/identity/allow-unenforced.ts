// With mesh identity off there is no caller identity, so a BasisPolicy's `allow` cannot be enforced:
// say so, once per policy spec, where the operator looks (the controller's log).
import type { Logger } from 'pino';
import type { PolicyStore } from '../policy-store.ts';

export function warnAllowUnenforced(store: PolicyStore, log: Logger): void {
  const warned = new Set<string>();
  store.on('change', () => {
    for (const p of store.list()) {
      if (p.policy.allow === undefined) continue;
      const key = `${p.namespace}/${p.name}@${p.generation}`;
      if (warned.has(key)) continue;
      warned.add(key);
      log.warn(
        { code: 'QB_NOT_AUTHORIZED', policy: `${p.namespace}/${p.name}`, generation: p.generation, allow: p.policy.allow.map((a) => a.id) },
        `BasisPolicy ${p.namespace}/${p.name} lists allow, but mesh identity is off (no --identity-dir): callers have no verified identity, so allow is NOT enforced and every caller is let through`,
      );
    }
  });
}
