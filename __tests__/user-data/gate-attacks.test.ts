// The attack corpus: every line of ../shared/ssh-gate-attacks.json and __tests__/fixtures/gate-attacks-extra.json
// must be refused (exit 255, a `rejected:` line on stderr, a log line) and nothing behind the gate may run:
// executed for real in a sandbox, the fake sudo records no call, no trap program on PATH ran, and the marker
// file that the attacks' payloads would create does not exist.
import fs from 'node:fs';
import {
  dryRun,
  EXTRA_ATTACKS,
  intoSandbox,
  loadAttacks,
  makeSandbox,
  runGate,
  runInSandbox,
  SHARED_ATTACKS,
  type Sandbox,
} from './gate-harness.js';

const MARKER = '/tmp/btrbk-gate-attack-marker';
const attacks = loadAttacks();
const cases = attacks.map((a, i) => [`${String(i + 1).padStart(3, '0')} ${a.why}`, a.command] as const);

test('the corpus holds the shared attacks and at least 30 of our own', () => {
  const shared = JSON.parse(fs.readFileSync(SHARED_ATTACKS, 'utf8')) as unknown[];
  const extra = JSON.parse(fs.readFileSync(EXTRA_ATTACKS, 'utf8')) as unknown[];
  expect(shared.length).toBeGreaterThanOrEqual(20);
  expect(extra.length).toBeGreaterThanOrEqual(30);
  expect(attacks.length).toBeGreaterThanOrEqual(shared.length + extra.length);
  for (const a of attacks) expect(typeof a.command).toBe('string');
});

describe('every attack is refused in a dry run', () => {
  test.each(cases)('%s', (_why, command) => {
    const r = dryRun(command);
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/^rejected: \S/m);
    expect(r.stdout).toBe('');
  });
});

describe('every attack, executed for real, runs nothing', () => {
  let sb: Sandbox;
  beforeAll(() => {
    fs.rmSync(MARKER, { force: true });
    sb = makeSandbox();
  });
  afterAll(() => sb.cleanup());

  test.each(cases)('%s', (_why, command) => {
    const before = sb.logLines().length;
    // Once against the sandbox root (the attack's paths moved into it), once with the production defaults.
    for (const r of [
      runInSandbox(sb, intoSandbox(sb, command)),
      runGate(command, ['--sudo', `${sb.dir}/fake-sudo`, '--logger', `${sb.dir}/fake-logger`]),
    ]) {
      expect(r.status).toBe(255);
      expect(r.stderr).toMatch(/^rejected: \S/m);
      expect(r.stdout).toBe('');
    }
    expect(sb.sudoCalls()).toEqual([]);
    expect(sb.trapped()).toEqual([]);
    expect(fs.existsSync(MARKER)).toBe(false);
    const logged = sb.logLines().slice(before);
    expect(logged).toHaveLength(2);
    for (const line of logged)
      expect(line).toMatch(/^-t btrbk-ssh-gate -p auth\.warning -- rejected: .* client=192\.0\.2\.7 command=/);
  });

  test('the sandbox root holds nothing an attack created', () => {
    expect(fs.readdirSync(sb.root)).toEqual([]);
  });
});

test('a rejected command with control characters is logged on one printable line', () => {
  const sb = makeSandbox();
  try {
    const r = runInSandbox(sb, `mkdir -p '${sb.root}/x'\nid\u001b[2J\u0455`);
    expect(r.status).toBe(255);
    const lines = sb.logLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/command=\$'mkdir -p .*\\nid\\E\[2J/);
    expect(lines[0]).toMatch(/^[\x20-\x7e]+$/);
  } finally {
    sb.cleanup();
  }
});

test('a logger that fails never changes the verdict', () => {
  const refused = runGate('id', ['--logger', '/bin/false']);
  expect(refused.status).toBe(255);
  expect(refused.stderr).toBe('rejected: command not allowed: id\n');
  const accepted = runGate(`mkdir -p '/backup_volume/backups/x'`, ['--dry-run', '--logger', '/nonexistent/logger']);
  expect(accepted.status).toBe(0);
});
