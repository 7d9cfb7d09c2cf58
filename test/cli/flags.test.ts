// cli/flags.ts, the one command-line parser, in process: syntax, variables, messages, exit codes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { commandUsage, failureExit, failureLine, parseCommandLine, UsageError, type CommandSpec, type ParsedCommandLine } from '../../cli/flags.ts';
import { QbasisError } from '../../proto/errors.ts';

const CMD: CommandSpec = {
  name: 'thing',
  env: true,
  flags: [
    { name: 'port', kind: 'port', min: 1, default: '15001', help: 'a port' },
    { name: 'count', kind: 'int', min: 1, max: 10, help: 'a count' },
    { name: 'delay', kind: 'number', min: 0, max: 60, expected: 'seconds from 0 to 60', help: 'a delay' },
    { name: 'level', kind: 'enum', values: ['low', 'high'], default: 'low', help: 'a level' },
    { name: 'gzip', kind: 'bool', help: 'a switch' },
    { name: 'name', kind: 'string', required: 'a name', help: 'a name' },
    { name: 'note', kind: 'string', allowEmpty: true, help: 'a note' },
    { name: 'even', kind: 'int', help: 'an even number', check: (v) => (Number(v) % 2 === 0 ? undefined : 'expected an even number') },
    {
      name: 'coded', kind: 'string', help: 'refused with its own code',
      check: (v) => {
        if (v === 'big') throw new QbasisError('QB_FRAME_VERSION_RANGE', 'too big; expected small');
        return undefined;
      },
    },
  ],
};

function parse(argv: string[], env: NodeJS.ProcessEnv = {}): ParsedCommandLine {
  const r = parseCommandLine(CMD, ['--name', 'n', ...argv], env);
  assert.notEqual(r, 'help');
  return r as ParsedCommandLine;
}

function refusal(argv: string[], env: NodeJS.ProcessEnv = {}): UsageError {
  try {
    parseCommandLine(CMD, argv, env);
  } catch (err) {
    assert.ok(err instanceof UsageError, String(err));
    return err;
  }
  assert.fail(`accepted ${argv.join(' ')}`);
}

test('--name value and --name=value are the same; the last of a repeated flag wins; defaults fill the rest', () => {
  assert.equal(parse(['--count', '3']).values.get('count'), '3');
  assert.equal(parse(['--count=3']).values.get('count'), '3');
  assert.equal(parse(['--count', '3', '--count', '4']).values.get('count'), '4');
  const p = parse([]);
  assert.equal(p.values.get('port'), '15001');
  assert.equal(p.source.get('port'), 'default');
  assert.equal(p.values.has('count'), false);
});

test('a value that starts with a dash is the value, refused or accepted on its merits', () => {
  assert.equal(parse(['--note', '-x']).values.get('note'), '-x');
  assert.equal(parse(['--note', '-']).values.get('note'), '-');
  assert.equal(refusal(['--name', 'n', '--count', '-1']).message, "--count '-1' is invalid: expected a whole number from 1 to 10");
  assert.equal(refusal(['--name', 'n', '--delay', '-1.0']).message, "--delay '-1.0' is invalid: expected seconds from 0 to 60");
});

test('a flag whose next argument is another --flag needs a value; --name=--x gives such a value', () => {
  assert.equal(refusal(['--name']).message, '--name needs a value: expected a name');
  assert.equal(refusal(['--name', 'n', '--count', '--port', '1']).message, "--count needs a value: expected a whole number from 1 to 10; got the flag '--port' next (write --count=VALUE for a value that starts with --)");
  assert.equal(parse(['--note=--x']).values.get('note'), '--x');
});

test('booleans: --gzip, --gzip=true|false, --gzip true|false; anything else is refused', () => {
  assert.equal(parse(['--gzip']).values.get('gzip'), 'true');
  assert.equal(parse(['--gzip=false']).values.get('gzip'), 'false');
  assert.equal(parse(['--gzip', 'false']).values.get('gzip'), 'false');
  assert.equal(parse(['--gzip', 'true']).values.get('gzip'), 'true');
  assert.equal(refusal(['--name', 'n', '--gzip=yes']).message, "--gzip 'yes' is invalid: expected true or false");
  // Not true/false: the switch is on and the next argument stands on its own.
  assert.match(refusal(['--name', 'n', '--gzip', 'extra']).message, /^unexpected argument 'extra'/);
});

test('kinds check their ranges: ports, whole numbers, decimals, enums, non-empty strings, extra rules', () => {
  assert.equal(refusal(['--name', 'n', '--port', '0']).message, "--port '0' is invalid: expected a port number from 1 to 65535");
  assert.equal(refusal(['--name', 'n', '--port', '65536']).message, "--port '65536' is invalid: expected a port number from 1 to 65535");
  assert.equal(refusal(['--name', 'n', '--count', '1e3']).message, "--count '1e3' is invalid: expected a whole number from 1 to 10");
  assert.equal(refusal(['--name', 'n', '--delay', '61']).message, "--delay '61' is invalid: expected seconds from 0 to 60");
  assert.equal(parse(['--delay', '0.5']).values.get('delay'), '0.5');
  assert.equal(refusal(['--name', 'n', '--level', 'mid']).message, "--level 'mid' is invalid: expected one of low, high");
  assert.equal(refusal(['--name=']).message, "--name '' is invalid: expected a non-empty value");
  assert.equal(parse(['--note=']).values.get('note'), '');
  assert.equal(refusal(['--name', 'n', '--even', '3']).message, "--even '3' is invalid: expected an even number");
  const coded = refusal(['--name', 'n', '--coded', 'big']);
  assert.equal(coded.code, 'QB_FRAME_VERSION_RANGE');
  assert.equal(coded.message, "--coded 'big' is invalid: too big; expected small");
});

test('QBASIS_<FLAG> variables: used when the flag is absent, named when refused, empty means unset; the flag wins', () => {
  assert.equal(parse([], { QBASIS_COUNT: '5' }).values.get('count'), '5');
  assert.equal(parse([], { QBASIS_COUNT: '5' }).source.get('count'), 'env');
  assert.equal(parse(['--count', '6'], { QBASIS_COUNT: 'junk' }).values.get('count'), '6');
  assert.equal(parse([], { QBASIS_COUNT: '' }).values.has('count'), false);
  assert.equal(refusal(['--name', 'n'], { QBASIS_COUNT: 'junk' }).message, "--count 'junk' (from QBASIS_COUNT) is invalid: expected a whole number from 1 to 10");
  assert.equal(parseCommandLine({ ...CMD, env: false }, ['--name', 'n'], { QBASIS_COUNT: 'junk' }) !== 'help', true, 'without env: true the variables are not read');
});

test('required flags, unknown flags (with a suggestion), operands', () => {
  assert.equal(refusal([]).message, 'missing --name: expected a name (as --name or QBASIS_NAME)');
  assert.equal(refusal(['--name', 'n', '--cuont', '1']).message, "unknown flag '--cuont': did you mean --count? expected one of --port, --count, --delay, --level, --gzip, --name, --note, --even, --coded, --help");
  assert.match(refusal(['--name', 'n', '-x']).message, /^unknown flag '-x': /);
  const extra = refusal(['--name', 'n', 'extra']);
  assert.equal(extra.code, 'QB_USAGE');
  assert.equal(extra.message, "unexpected argument 'extra': qbasis thing takes only flags");
  const ops: CommandSpec = { name: 'thing', flags: [], operands: { name: 'header', min: 1, max: 1 } };
  assert.deepEqual((parseCommandLine(ops, ['--', '--not-a-flag']) as ParsedCommandLine).operands, ['--not-a-flag']);
  assert.throws(() => parseCommandLine(ops, []), /missing header: qbasis thing takes 1 \(got 0\)/);
});

test('--help and -h anywhere before -- ask for help, even beside mistakes', () => {
  assert.equal(parseCommandLine(CMD, ['--help']), 'help');
  assert.equal(parseCommandLine(CMD, ['--bogus', '-h']), 'help');
  assert.equal(parseCommandLine(CMD, ['--count', 'junk', '--help']), 'help');
  assert.notEqual(parseCommandLine({ ...CMD, operands: { name: 'x', min: 0, max: 1 } }, ['--name', 'n', '--', '--help']), 'help');
  const usage = commandUsage(CMD);
  for (const f of CMD.flags) assert.ok(usage.includes(`--${f.name}`), f.name);
  assert.match(usage, /--port <port> +a port \(default 15001\)/);
  assert.match(usage, /--name <value> +a name \(required\)/);
  assert.match(usage, /QBASIS_PORT/);
  assert.match(usage, /-h, --help +show this help/);
});

test('every message is one line: control characters are escaped, long values cut, invalid UTF-8 named', () => {
  assert.equal(refusal(['--name', 'n', '--level', 'a\nb\u001b[31m']).message, "--level 'a\\x0ab\\x1b[31m' is invalid: expected one of low, high");
  const long = refusal(['--name', 'n', '--level', 'x'.repeat(10_000)]).message;
  assert.ok(long.length < 200, long);
  assert.match(long, /^--level 'x{60}…' \(10000 characters\) is invalid/);
  assert.equal(refusal(['--name', 'a\ufffdb']).message, "--name 'a\ufffdb' is invalid: it contains bytes that are not valid UTF-8 (shown as U+FFFD); expected UTF-8 text");
});

test('one exit-code rule: 2 for a usage error, 1 for anything else; the line carries the QB_* code', () => {
  const usage = new UsageError("--x 'y' is invalid: expected z");
  assert.equal(failureExit(usage), 2);
  assert.equal(failureLine('thing', usage), "qbasis thing: QB_INVALID_FLAG: --x 'y' is invalid: expected z");
  const runtime = new QbasisError('QB_KUBE_API', 'GET /api: HTTP 503');
  assert.equal(failureExit(runtime), 1);
  assert.equal(failureLine('controller', runtime), 'qbasis controller: QB_KUBE_API: GET /api: HTTP 503');
  const plain = new Error('listen EADDRINUSE\n    at somewhere');
  assert.equal(failureExit(plain), 1);
  assert.equal(failureLine('controller', plain), 'qbasis controller: listen EADDRINUSE at somewhere');
});
