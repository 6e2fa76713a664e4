// check-logs with injected fakes: the boot script's outcome, and the fallbacks when SSH is down.
import { CHECK_COMMANDS } from '../../scripts/lib/diagnose/check-commands.js';
import { bootOutcome, checkLogs } from '../../scripts/lib/diagnose/check-logs.js';
import { conn, BOOT_OK, healthy, fakes, connectError, rejected } from '../support/diagnose-fakes.js';

describe('check-logs', () => {
  it('shows the last N lines of both logs and reads the SUCCESS line', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.bootLog] = {
      code: 0,
      stdout: `${Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n')}\n${BOOT_OK}`,
    };
    const r = await checkLogs(conn(), { ...fakes(a).deps, lines: 5 });
    expect(r[0]).toMatchObject({ name: 'boot script log (last 5 lines)', ok: true });
    expect(String(r[0].output).split('\n')).toHaveLength(5);
    expect(r[0].output).toMatch(/SUCCESS/);
    expect(r[1]).toMatchObject({ name: 'cloud-init output (last 5 lines)', ok: true });
  });

  it('a FAILED boot names the step', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.bootLog] = {
      code: 0,
      stdout: "x\nbtrbk-backup-host: FAILED at step 'volume' (exit 1) after 300 s; see the lines above\n",
    };
    expect((await checkLogs(conn(), fakes(a).deps))[0]).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/FAILED at step 'volume'/),
    });
  });

  it("a device's key: both logs are not applicable (the gate keeps them for the legacy key), with where to read them", async () => {
    const a = healthy();
    for (const [k, what] of [
      [CHECK_COMMANDS.bootLog, 'boot-log'],
      [CHECK_COMMANDS.cloudInitLog, 'cloud-init-log'],
    ])
      a[k] = rejected(
        `${what}: not for a device's key (it shows the whole volume or the other devices); the admin reads it`,
      );
    const r = await checkLogs(conn(), fakes(a).deps);
    expect(r.map((x) => [x.ok, x.skipped, x.detail])).toEqual([
      [true, true, "not shown to a device's key"],
      [true, true, "not shown to a device's key"],
    ]);
    expect(r[0].output).toMatch(/legacy key's connection file, the EC2 console output \(aws ec2 get-console-output/);
    // any other refusal still fails
    a[CHECK_COMMANDS.bootLog] = rejected('command not allowed');
    expect((await checkLogs(conn(), fakes(a).deps))[0]).toMatchObject({ ok: false });
  });

  it('an unfinished boot warns', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.bootLog] = { code: 0, stdout: 'btrbk-backup-host[packages]: installing\n' };
    expect((await checkLogs(conn(), fakes(a).deps))[0]).toMatchObject({
      ok: true,
      warn: true,
      cause: expect.stringMatching(/still running/),
    });
  });

  it('SSH unreachable on AWS: falls back to the EC2 console output', async () => {
    let asked = '';
    const deps = fakes(healthy(), {
      connect: connectError('refused', 'nothing accepts SSH connections at 203.0.113.7:22'),
      ec2: {},
      getConsoleOutput: async (_ec2: unknown, id: string) => {
        asked = id;
        return "boot\n[  12.1] cloud-init[800]: btrbk-backup-host: FAILED at step 'volume' (exit 1)\nend\n";
      },
    }).deps;
    const r = await checkLogs(conn(), deps);
    expect(asked).toBe('i-0123456789abcdef0');
    expect(r[0]).toMatchObject({ name: 'logs through the SSH gate', ok: false });
    expect(r[1]).toMatchObject({
      name: 'EC2 console output (last 40 lines)',
      ok: true,
      detail: expect.stringMatching(/FAILED at step 'volume'/),
    });
    expect(r[1].output).toMatch(/^boot/);
  });

  it('SSH unreachable on the local target: shows its kept copy of the boot output instead of a console', async () => {
    const local = conn({ instanceId: 'local-target' });
    let r = await checkLogs(
      local,
      fakes(healthy(), {
        connect: connectError('refused', 'nothing accepts SSH'),
        readLocalBootLog: async () => `a\nb\n${BOOT_OK}`,
      }).deps,
    );
    expect(r[0]).toMatchObject({
      name: 'logs through the SSH gate',
      ok: false,
      next: expect.stringMatching(/local-target\.mjs status/),
    });
    expect(r[1]).toMatchObject({
      name: 'local target boot output (last 40 lines)',
      ok: true,
      detail: expect.stringMatching(/^SUCCESS/),
    });
    r = await checkLogs(
      local,
      fakes(healthy(), {
        connect: connectError('refused', 'x'),
        readLocalBootLog: async () => "btrbk-backup-host: FAILED at step 'gate' (exit 1)\n",
      }).deps,
    );
    expect(r[1]).toMatchObject({ ok: false, cause: expect.stringMatching(/FAILED at step 'gate'/) });
    r = await checkLogs(
      local,
      fakes(healthy(), { connect: connectError('refused', 'x'), readLocalBootLog: async () => null }).deps,
    );
    expect(r[1]).toMatchObject({ ok: false, next: expect.stringMatching(/local-target\.mjs up/) });
  });

  it('bootOutcome: the last marker line wins', () => {
    expect(bootOutcome("btrbk-backup-host: FAILED at step 'x'\n" + BOOT_OK).state).toBe('success');
    expect(bootOutcome('nothing').state).toBe('unfinished');
  });
});
