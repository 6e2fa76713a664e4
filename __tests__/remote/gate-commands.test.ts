// The gate's command table (scripts/lib/remote/gate-commands.ts): every entry, written either way, is accepted by
// the real gate (user-data/btrbk-ssh-gate.sh --dry-run) as the stages the table says.
import { GATE_COMMANDS, gateLine, type GateCommand } from '../../scripts/lib/remote/gate-commands.js';
import { dryRun, R } from '../user-data/gate-harness.js';

const DIR = `${R}/selftest/roundtrip-test`;
const SNAP = `${DIR}/rt.20261123T225821-eec006.2`;
const PARENT = `${DIR}/rt.20261123T225821-eec006.1`;

/** Every entry of the table with the arguments the tools give it (a key missing here fails to compile). */
const SAMPLES: Record<keyof typeof GATE_COMMANDS, GateCommand[]> = {
  diagnostic: (
    ['version', 'usage', 'device-stats', 'mount', 'boot-log', 'cloud-init-log', 'retention', 'scrub'] as const
  ).map((d) => GATE_COMMANDS.diagnostic(d)),
  readlink: [GATE_COMMANDS.readlink(R)],
  mkdir: [GATE_COMMANDS.mkdir(DIR)],
  subvolumeList: [GATE_COMMANDS.subvolumeList(R)],
  subvolumeListBelow: [GATE_COMMANDS.subvolumeListBelow(`${R}/laptop`)],
  subvolumeShow: [GATE_COMMANDS.subvolumeShow(SNAP)],
  subvolumeDelete: [GATE_COMMANDS.subvolumeDelete(SNAP), GATE_COMMANDS.subvolumeDelete(SNAP, { commitAfter: true })],
  send: [
    GATE_COMMANDS.send(SNAP),
    GATE_COMMANDS.send(SNAP, { parent: PARENT }),
    GATE_COMMANDS.send(SNAP, { compress: true }),
    GATE_COMMANDS.send(SNAP, { parent: PARENT, compress: true }),
    GATE_COMMANDS.send(SNAP, { compress: true, level: 1 }),
  ],
  receive: [GATE_COMMANDS.receive(DIR), GATE_COMMANDS.receive(`${DIR}/`, { decompress: true })],
  manifest: [GATE_COMMANDS.manifest(SNAP), GATE_COMMANDS.manifest(SNAP, { percent: 5, seed: 123456789012345678n })],
  list: [
    GATE_COMMANDS.list(SNAP),
    GATE_COMMANDS.list(SNAP, { under: 'me/My%20Docs/caf%C3%A9', depth: 1 }),
    GATE_COMMANDS.list(SNAP, { depth: 9999 }),
  ],
  sendNoData: [GATE_COMMANDS.sendNoData(SNAP, PARENT)],
};

/** [entry, line, number of stages], each line once. */
const CASES = [
  ...new Map(
    Object.entries(SAMPLES).flatMap(([name, commands]) =>
      commands.map((command) => [gateLine(command), [name, gateLine(command), command.length] as const] as const),
    ),
  ).values(),
];

describe('every command of the gate table is accepted by the real gate (dry run)', () => {
  it.each(CASES)('%s: %s', (_name, line, stages) => {
    const r = dryRun(line);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stages).toHaveLength(stages);
  });
});

describe('gateLine', () => {
  it('writes every path single-quoted, as btrbk does; fixed words as they are; stages joined by pipes', () => {
    const send = GATE_COMMANDS.send(`${R}/l/a b`, { parent: `${R}/l/p`, compress: true });
    expect(gateLine(send)).toBe(`sudo -n btrfs send -p '${R}/l/p' '${R}/l/a b' | zstd -c`);
    expect(gateLine(GATE_COMMANDS.receive(`${R}/l//`, { decompress: true }))).toBe(
      `zstd -d -c | sudo -n btrfs receive '${R}/l/'`,
    );
  });
});

describe('list refuses what the gate would refuse, before sending it', () => {
  it.each([['me/../x'], ['a b'], ['/etc'], ["it's"], ['me/'], ['%2e']])('--under %s', (under) => {
    // '..' passes the characters check here: the gate and the manifest refuse it (gate-browse.test.ts)
    if (under === 'me/../x') expect(dryRun(gateLine(GATE_COMMANDS.list(SNAP, { under }))).status).toBe(255);
    else expect(() => GATE_COMMANDS.list(SNAP, { under })).toThrow(/not escaped/);
  });
  it.each([[0], [10000], [1.5]])('--depth %s', (depth) => {
    expect(() => GATE_COMMANDS.list(SNAP, { depth })).toThrow(/1\.\.9999/);
  });
});
