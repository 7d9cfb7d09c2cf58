// proto/generated/ must be exactly what `npm run gen:proto` makes from proto/discovery.proto,
// so the types can never drift from the contract by hand edits.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, tempDir } from '../fixtures/local-controller.ts';

function files(dir: string, base = dir): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p, base) : [path.relative(base, p)];
  });
}

test('proto/generated matches a fresh run of the gen:proto command', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const cmd = pkg.scripts['gen:proto'] ?? '';
  assert.ok(cmd.includes('-O proto/generated'), 'gen:proto writes proto/generated');
  const out = tempDir('gen');
  const args = cmd.replace(/^proto-loader-gen-types /, '').replace('-O proto/generated', `-O ${out}`).split(' ');
  const bin = path.join(REPO, 'node_modules/.bin/proto-loader-gen-types');
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const committed = path.join(REPO, 'proto/generated');
  assert.deepEqual(files(out).sort(), files(committed).sort());
  for (const f of files(out)) assert.equal(fs.readFileSync(path.join(committed, f), 'utf8'), fs.readFileSync(path.join(out, f), 'utf8'), f);
});
