// The command table and its runner, in-process: every level of every entry point answers --help from its rows,
// lists exactly the options its parser accepts, refuses an unknown option, a missing value and an unknown verb with
// the valid ones named; --json puts the document alone on stdout. (scripts.test.ts runs the real .mjs files.)
import { PassThrough } from 'node:stream';
import { verb, type EntryPoint } from '../../scripts/lib/cli/command.js';
import { ENTRY_POINTS } from '../../scripts/lib/cli/entries/index.js';
import { parseVerbArgs, resolve, runEntry, runSuite, UsageError, verbOptions } from '../../scripts/lib/cli/runner.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { helpOptions, label, levels, requiredArgs } from './walk.js';

const PROG = 'prog';
const capture = () => {
  const s = new PassThrough();
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString()));
  return { stream: s, text: () => text };
};
const run = async (entry: EntryPoint, argv: string[]) => {
  const out = capture();
  const err = capture();
  const status = await runEntry(entry, argv, PROG, { stdout: out.stream, stderr: err.stream, env: {} });
  return { status, stdout: out.text(), stderr: err.text() };
};
const refusal = async (entry: EntryPoint, argv: string[]): Promise<OperatorError> => {
  try {
    await runEntry(entry, argv, PROG, { stdout: capture().stream, stderr: capture().stream, env: {} });
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    expect((err as OperatorError).exitCode).toBe(entry.usageExit ?? 1);
    return err as OperatorError;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
};

const ALL = levels(ENTRY_POINTS);
const VERBS = ALL.filter((l) => l.verb);
const GROUPS = ALL.filter((l) => !l.verb);

test('the table has every entry point and verb of the README', () => {
  expect(ALL.map(label)).toEqual(
    expect.arrayContaining([
      'setup.mjs',
      'prereqs.mjs',
      'troubleshoot.mjs',
      'roundtrip.mjs',
      'bench.mjs',
      ...['up', 'down', 'status', 'limits', 'instance-types'].map((v) => `local-target.mjs ${v}`),
      ...['up', 'down', 'status', 'exec', 'network', 'demo'].map((v) => `local-target.mjs laptop ${v}`),
      ...['install', 'uninstall', 'run', 'status', 'list', 'restore', 'verify', 'ls', 'find', 'diff'].map(
        (v) => `backup.mjs ${v}`,
      ),
    ]),
  );
  expect(VERBS).toHaveLength(5 + 5 + 6 + 10);
});

describe.each(VERBS.map((l) => [label(l), l] as const))('%s', (_name, l) => {
  const v = l.verb!;
  const accepted = verbOptions(v).map((o) => o.name);

  test('--help and -h: exit 0, the help lists exactly the options the parser accepts', async () => {
    const r = await run(l.entry, [...l.path, '--help']);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.stdout).toMatch(new RegExp(`^usage: ${[PROG, ...l.path].join(' ')} \\[options\\]`));
    expect(helpOptions(r.stdout)).toEqual(accepted);
    expect((await run(l.entry, [...l.path, '-h'])).stdout).toBe(r.stdout);
    // every option it lists parses (a value where it takes one)
    for (const o of verbOptions(v).filter((x) => x.name !== 'help')) {
      const value = o.type === 'boolean' ? [] : [o.choices?.[0] ?? (o.type === 'number' ? '1' : '/x')];
      const parsed = parseVerbArgs(v, [...requiredArgs(v), `--${o.name}`, ...value], { entry: l.entry, words: [PROG] });
      expect(parsed.options[o.name]).toBeDefined();
    }
  });

  test('an unknown option is refused, naming the valid ones', async () => {
    const err = await refusal(l.entry, [...l.path, '--no-such-option']);
    expect(err.what).toMatch(/^unknown option --no-such-option/);
    expect(err.next).toContain(`valid options: ${accepted.map((o) => `--${o}`).join(', ')}`);
  });

  const valued = verbOptions(v).filter((o) => o.type !== 'boolean' && !o.optionalValue);
  if (valued.length)
    test.each(valued.map((o) => [o.name]))('--%s without its value is refused', async (name) => {
      // at the end, or followed by another option (taken for the missing value, never as the value)
      const other = verbOptions(v).find((o) => o.name !== name && o.name !== 'help');
      for (const argv of [[`--${name}`], ...(other ? [[`--${name}`, `--${other.name}`]] : [])]) {
        const err = await refusal(l.entry, [...l.path, ...argv]);
        expect(err.what).toMatch(new RegExp(`^--${name} needs a value`));
      }
    });
});

describe.each(GROUPS.map((l) => [label(l), l] as const))('%s (verbs)', (_name, l) => {
  test('--help lists its verbs; an unknown verb is refused naming them', async () => {
    const r = await run(l.entry, [...l.path, '--help']);
    expect(r.status).toBe(0);
    for (const name of l.verbs) expect(r.stdout).toMatch(new RegExp(`^ {2}${name} +\\S`, 'm'));
    const err = await refusal(l.entry, [...l.path, 'sideways']);
    expect(err.what).toBe('unknown command sideways');
    expect(err.next).toContain(`verbs: ${l.verbs.join(', ')}`);
  });
});

describe('the runner', () => {
  const says = verb({
    name: 'says',
    summary: 'a verb that talks while it works',
    options: [{ name: 'count', type: 'number', default: 2, help: 'how many' }],
    positionals: [{ name: 'WHAT', help: 'what to count', choices: ['a', 'b'] }],
    async run(ctx) {
      ctx.say('working');
      return { count: ctx.args.options.count, what: ctx.args.positionals.WHAT };
    },
    json: (r) => r,
    text: (r) => `counted ${r.count} ${r.what}`,
    exit: (r) => (r.count === 3 ? 3 : 0),
  });
  const entry: EntryPoint = { name: 'says', summary: 'x', command: says };

  test('--json: stdout holds the JSON document alone, the progress goes to stderr; the exit status is the same', async () => {
    const r = await run(entry, ['a', '--json', '--count', '3']);
    expect(r).toMatchObject({ status: 3, stderr: 'working\n' });
    expect(JSON.parse(r.stdout)).toEqual({ count: 3, what: 'a' });
    expect(await run(entry, ['b'])).toEqual({ status: 0, stdout: 'working\ncounted 2 b\n', stderr: '' });
  });

  test('values: a number that is not one, a value twice, a value outside its choices, a flag with a value', async () => {
    expect((await refusal(entry, ['--count', 'x'])).what).toBe('--count x is not a number');
    expect((await refusal(entry, ['--count=1', '--count', '2'])).what).toBe('--count given twice');
    expect((await refusal(entry, ['c'])).what).toBe('WHAT c: not one of a, b');
    expect((await refusal(entry, ['a', 'b'])).what).toBe('unexpected argument b');
    expect((await refusal(entry, ['--json=yes'])).what).toBe('--json takes no value (given yes)');
    // --name=-x passes a value that starts with a dash
    expect(parseVerbArgs(says, ['--count=-1'], { entry, words: [PROG] }).options.count).toBe(-1);
  });

  test('an optional value (setup --first-backup [TYPE]): alone, before another option, or with its value', () => {
    const setup = ENTRY_POINTS.find((e) => e.name === 'setup')!;
    const r = resolve(setup, [], PROG);
    if ('help' in r) throw new Error('help');
    const parse = (argv: string[]) => parseVerbArgs(r.verb, argv, r.where).options;
    expect(parse(['--first-backup'])['first-backup']).toBe('');
    expect(parse(['--first-backup', '--yes'])).toMatchObject({ 'first-backup': '', yes: true });
    expect(parse(['--first-backup', 't3a.large'])['first-backup']).toBe('t3a.large');
    expect(parse([])).toMatchObject({ target: 'aws', source: [], yes: false });
  });

  test('after --, everything is an argument (laptop exec -- CMD --help)', async () => {
    const lt = ENTRY_POINTS.find((e) => e.name === 'local-target')!;
    const r = resolve(lt, ['laptop', 'exec', '--', 'btrbk', '--help'], PROG);
    if ('help' in r) throw new Error('help');
    expect(parseVerbArgs(r.verb, r.argv, r.where).positionals.CMD).toEqual(['btrbk', '--help']);
  });

  test('a group with a default verb runs it (local-target.mjs: status); one without asks which', async () => {
    const lt = ENTRY_POINTS.find((e) => e.name === 'local-target')!;
    const r = resolve(lt, ['--json'], PROG);
    expect('verb' in r && r.verb.name).toBe('status');
    const backup = ENTRY_POINTS.find((e) => e.name === 'backup')!;
    expect((await refusal(backup, [])).what).toBe('which verb?');
    expect((await refusal(backup, ['--json'])).what).toBe('which verb? (--json comes after it)');
  });

  test('btrbk-aws: the entry points as its commands, each parsed as its script would', async () => {
    const out = capture();
    const io = { stdout: out.stream, stderr: capture().stream, env: {} };
    expect(await runSuite(ENTRY_POINTS, 'all', ['--help'], 'btrbk-aws', io)).toBe(0);
    for (const e of ENTRY_POINTS) expect(out.text()).toMatch(new RegExp(`^ {2}${e.name} +\\S`, 'm'));
    await expect(runSuite(ENTRY_POINTS, 'all', ['backup', 'status', '--bogus'], 'btrbk-aws', io)).rejects.toMatchObject(
      {
        what: 'unknown option --bogus',
        exitCode: 2,
      },
    );
    await expect(runSuite(ENTRY_POINTS, 'all', ['sideways'], 'btrbk-aws', io)).rejects.toMatchObject({
      what: 'unknown command sideways',
    });
  });
});
