// The setup flow with injected fakes where AWS and the engine would be: a fake engine runner that answers
// init/plan/show/apply/output like Terraform, a fake EC2 console, fake SSH probes, and a fake smoke-test runner
// with the troubleshoot library's runChecks signature. Keys and host keys are real (ssh-keygen).
import { jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import {
  checkOptions,
  consoleReporter,
  promptYes,
  protectionSummary,
  recordingReporter,
  runAwsSetup,
  runLocalSetup,
  stepApply,
  stepConfirm,
  stepPinHostKey,
  stepWaitForSsh,
  type RunChecks,
  type SetupDeps,
  type SetupOptions,
} from '../../scripts/lib/deploy/setup.js';
import { readConnection } from '../../scripts/lib/core/connection.js';
import { knownHostsLine, readKnownHosts, writeKnownHosts } from '../../scripts/lib/remote/host-key.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { runResult, type Run } from '../../scripts/lib/core/process.js';
import type { PlanAnalysis } from '../../scripts/lib/deploy/plan-safety.js';
import { validateTfvars, type TfvarsValues } from '../../scripts/lib/deploy/tfvars.js';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'setup-flow-'));
const sshDir = path.join(tmp, 'ssh');
fs.mkdirSync(sshDir, { mode: 0o700 });
const keygen = (file: string, comment: string) => {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  const pub = fs.readFileSync(`${file}.pub`, 'utf8').trim();
  const lf = execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).trim();
  return { pub, blob: pub.split(' ')[1], fingerprint: lf.split(' ')[1], lf };
};
const backupKey = keygen(path.join(sshDir, 'btrbk_aws'), 'btrbk-backup');
const hostKey = keygen(path.join(tmp, 'host_ed25519'), 'root@ip-172-31-5-10');
const rogueKey = keygen(path.join(tmp, 'rogue_ed25519'), 'root@evil');
const deviceKey = keygen(path.join(sshDir, 'btrbk_aws_alpha'), 'alpha');

const IP = '203.0.113.7';
const OUTPUTS = {
  instance_id: 'i-0123456789abcdef0',
  public_ip: IP,
  volume_id: 'vol-0123456789abcdef0',
  region: 'us-west-1',
  availability_zone: 'us-west-1a',
  ssh_user: 'btrbk',
  backup_path: BACKUP_ROOT,
  btrbk_target: `ssh://btrbk@${IP}${BACKUP_ROOT}/`,
};
const CONSOLE = [
  '<14>Nov 23 22:01:05 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----',
  `<14>Nov 23 22:01:05 cloud-init: ${hostKey.lf}`,
  '<14>Nov 23 22:01:05 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----',
].join('\n');

/** Plan JSON (format 1.2) for this stack with the given action on the data volume and the instance. */
function planJson(volume: string[], instance: string[] = volume) {
  const rc = (type: string, name: string, actions: string[]) => ({
    address: `${type}.${name}`,
    mode: 'managed',
    type,
    name,
    provider_name: 'registry.terraform.io/hashicorp/aws',
    change: { actions, before: null, after: {} },
  });
  return JSON.stringify({
    format_version: '1.2',
    terraform_version: '1.11.4',
    resource_changes: [rc('aws_ebs_volume', 'backup_data', volume), rc('aws_instance', 'backup_host', instance)],
    output_changes: {},
  });
}

interface World {
  /** What the fakes answer; a test may change them between runs (a replaced instance). */
  outputs: Record<string, string>;
  offered: { blob: string };
  console: string[];
  opts: SetupOptions;
  deps: SetupDeps & { reporter: ReturnType<typeof recordingReporter> };
  calls: string[][];
  checksCalls: unknown[][];
  consoleCalls: number;
}

let n = 0;
/** A fresh directory with terraform.tfvars, and deps whose engine answers `plan` with `plan`. */
function world({
  plan = planJson(['create']),
  planStatus = 0,
  planStderr = '',
  offered = hostKey,
  console = [CONSOLE],
  failSmoke = false,
  keys = `ssh_public_key = "${backupKey.pub}"\n`,
} = {}): World {
  const dir = path.join(tmp, `w${(n += 1)}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'terraform.tfvars'), `${keys}allowed_ssh_cidrs = ["198.51.100.0/24"]\n`);
  const calls: string[][] = [];
  const checksCalls: unknown[][] = [];
  const w: World = {
    outputs: { ...OUTPUTS },
    offered,
    console,
    opts: {} as SetupOptions,
    deps: {} as World['deps'],
    calls,
    checksCalls,
    consoleCalls: 0,
  };
  const run: Run = async (cmd, args, o) => {
    calls.push([path.basename(cmd), ...args]);
    if (path.basename(cmd) === 'tsx') {
      const stack = path.join(dir, 'cdktf.out', 'stacks', 'btrbk-backup-target');
      fs.mkdirSync(stack, { recursive: true });
      fs.writeFileSync(path.join(stack, 'cdk.tf.json'), '{}');
      return runResult({ status: 0, stdout: '', stderr: '' });
    }
    o?.onLine?.(`${args[0]}: ok`);
    switch (args[0]) {
      case 'init':
        return runResult({ status: 0, stdout: 'Terraform has been successfully initialized!', stderr: '' });
      case 'plan':
        return runResult({ status: planStatus, stdout: '', stderr: planStderr });
      case 'show':
        return runResult({ status: 0, stdout: plan, stderr: '' });
      case 'apply':
        return runResult({
          status: 0,
          stdout: 'Apply complete! Resources: 6 added, 0 changed, 0 destroyed.',
          stderr: '',
        });
      case 'output':
        return runResult({
          status: 0,
          stdout: JSON.stringify(
            Object.fromEntries(
              Object.entries(w.outputs).map(([k, v]) => [k, { sensitive: false, type: 'string', value: v }]),
            ),
          ),
          stderr: '',
        });
      default:
        return runResult({ status: 1, stdout: '', stderr: `unexpected ${args.join(' ')}` });
    }
  };
  const runChecks: RunChecks = async (conn, names, d) => {
    checksCalls.push([conn, names, d]);
    return names.map((check) => ({
      check,
      results: [
        {
          name: 'connection',
          ok: !failSmoke,
          detail: 'fake',
          cause: failSmoke ? 'sshd stopped' : undefined,
          next: failSmoke ? 'start it' : undefined,
        },
      ],
    }));
  };
  w.opts = {
    target: 'aws',
    cwd: dir,
    stateDir: path.join(dir, 'state'),
    outdir: path.join(dir, 'cdktf.out'),
    envFile: path.join(dir, 'aws_connection.env'),
    knownHosts: path.join(dir, 'state', 'known_hosts'),
  };
  w.deps = {
    reporter: recordingReporter(),
    prereqDeps: {
      findEngine: () => ({ name: 'terraform', path: '/fake/terraform', version: '1.11.4' }),
      which: (name) => `/usr/bin/${name}`,
      runSync: () =>
        runResult({
          status: 0,
          stdout: 'btrfs-progs v6.2\nbtrbk command line client, version 0.32.5',
          stderr: 'OpenSSH_9.2p1 Debian-2',
        }),
      sts: {
        send: async () => ({ Account: '123456789012', Arn: 'arn:aws:iam::123456789012:user/me', UserId: 'AIDA' }),
      } as never,
    },
    run,
    prepare: () => ({
      engine: { name: 'terraform', path: '/fake/terraform', version: '1.11.4' },
      mirror: null,
      env: {},
    }),
    isTTY: false,
    ec2: {} as never,
    // the cost step's Price List API refuses (cost.test.ts covers its answers): setup goes on with the offline table
    pricing: {
      send: async () => {
        throw Object.assign(
          new Error('User: arn:aws:iam::123456789012:user/me is not authorized to perform: pricing:GetProducts'),
          { name: 'AccessDeniedException' },
        );
      },
    } as never,
    consoleOutput: async () => {
      w.consoleCalls += 1;
      return w.console[Math.min(w.consoleCalls - 1, w.console.length - 1)];
    },
    runChecks,
    probe: async () => true,
    keyscan: async (host) => `# ${host}:22 SSH-2.0-OpenSSH_9.6p1\n${host} ssh-ed25519 ${w.offered.blob}\n`,
    sshDir,
    intervalMs: 1,
  };
  return w;
}
const commands = (w: World) => w.calls.map((c) => (c[0] === 'tsx' ? 'synth' : c[1]));

describe('setup against AWS (engine, EC2 and SSH faked)', () => {
  test('first deploy with --yes: synth, init, plan, show, apply, pin the key from the console, smoke tests, connection file', async () => {
    const w = world({ console: ['', CONSOLE] });
    const r = await runAwsSetup({ ...w.opts, yes: true }, w.deps);
    expect(commands(w)).toEqual(['synth', 'init', 'plan', 'show', 'apply', 'output']);
    const plan = w.calls.find((c) => c[1] === 'plan') ?? [];
    expect(plan).toContain(`-var-file=${path.join(w.opts.cwd!, 'terraform.tfvars')}`);
    expect(plan).toContain(`-out=${path.join(w.opts.stateDir!, 'plan.tfplan')}`);
    expect(w.calls.find((c) => c[1] === 'apply')).toContain(path.join(w.opts.stateDir!, 'plan.tfplan'));
    expect(r.applied).toBe(true);
    expect(w.consoleCalls).toBe(2); // the first answer had no fingerprints yet: retried
    expect(r.hostKey).toMatchObject({ fingerprint: hostKey.fingerprint, changed: true });
    expect(readKnownHosts(w.opts.knownHosts!)).toEqual([
      expect.objectContaining({ hosts: [IP], keyType: 'ssh-ed25519', blob: hostKey.blob }),
    ]);
    expect(w.checksCalls).toHaveLength(1);
    expect(w.checksCalls[0][1]).toEqual(['check-ssh', 'check-volume']);
    expect(r.smoke).toMatchObject({ ok: true, passed: 2, failed: 0 });
    const conn = readConnection(w.opts.envFile!);
    expect(conn).toMatchObject({
      host: IP,
      user: 'btrbk',
      keyFile: path.join(sshDir, 'btrbk_aws'),
      instanceId: OUTPUTS.instance_id,
      volumeId: OUTPUTS.volume_id,
      region: 'us-west-1',
      port: 22,
      knownHostsFile: w.opts.knownHosts,
    });
    expect(fs.statSync(w.opts.envFile!).mode & 0o777).toBe(0o600);
    expect(r.cost).toMatchObject({
      available: true,
      region: 'us-west-1',
      source: expect.stringMatching(/^offline table: list prices as remembered by the authors/),
    });
    // the fake plan has no DLM policy, alarm or subscription: only what it creates is priced
    expect(r.cost?.available && r.cost.lines.map((l) => l.item)).toEqual([
      'instance',
      'data volume',
      'root volume',
      'public IPv4 address',
      'transfer out',
    ]);
    const said = w.deps.reporter.events.map((e) => e.slice(1).join(' ')).join('\n');
    expect(said).toMatch(/the AWS Price List API was not used: AWS denied pricing:GetProducts .*offline table/);
    expect(said).toMatch(/prices: offline table: list prices as remembered by the authors/);
    expect(r.btrbkConf).toContain(`target send-receive ssh://${IP}/backup_volume/backups`);
    const steps = w.deps.reporter.events.filter((e) => e[0] === 'step').map((e) => e[1]);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('devices only (ssh_public_key ""): the smoke tests and the connection file are a device\'s, with its key found in ~/.ssh', async () => {
    const w = world({
      keys: `ssh_public_key = ""\ndevices = {\n  zed = "${rogueKey.pub}"\n  alpha = "${deviceKey.pub}"\n}\n`,
    });
    const r = await runAwsSetup({ ...w.opts, yes: true }, w.deps);
    const device = {
      keyFile: path.join(sshDir, 'btrbk_aws_alpha'),
      device: 'alpha',
      backupRoot: `${BACKUP_ROOT}/alpha`,
      targetUrl: `ssh://btrbk@${IP}${BACKUP_ROOT}/alpha/`,
    };
    expect(w.checksCalls[0][0]).toMatchObject(device);
    expect(readConnection(w.opts.envFile!)).toMatchObject({ ...device, host: IP, instanceId: OUTPUTS.instance_id });
    expect(fs.readFileSync(w.opts.envFile!, 'utf8')).toMatch(/^BTRBK_AWS_DEVICE='alpha'$/m);
    expect(r.smoke).toMatchObject({ ok: true });
    expect(r.btrbkConf).toContain(`target send-receive ssh://${IP}${BACKUP_ROOT}/alpha`);
    const said = w.deps.reporter.events.map((e) => e.slice(1).join(' ')).join('\n');
    expect(said).toContain(
      `backup key: ${device.keyFile}, device alpha's (no legacy key: the smoke tests and the connection file are alpha's, which reaches only its own backups)`,
    );
  });

  test('devices only and no device key here: stops before the engine, saying what to pass', async () => {
    const w = world({ keys: `ssh_public_key = ""\ndevices = { zed = "${rogueKey.pub}" }\n` });
    await expect(runAwsSetup({ ...w.opts, yes: true }, w.deps)).rejects.toThrow(/cannot find a device's private key/);
    expect(w.calls).toEqual([]);
    expect(fs.existsSync(w.opts.envFile!)).toBe(false);
  });

  test('a re-run with no changes applies nothing, needs no prompt, keeps the pinned key, and still runs the smoke tests', async () => {
    const w = world({ plan: planJson(['no-op']) });
    await runAwsSetup({ ...w.opts, yes: true }, w.deps);
    const consoleBefore = w.consoleCalls;
    w.calls.length = 0;
    const r = await runAwsSetup(w.opts, w.deps); // no --yes, no TTY: fine, since nothing is applied
    expect(commands(w)).toEqual(['synth', 'init', 'plan', 'show', 'output']);
    expect(r.applied).toBe(false);
    expect(r.hostKey.changed).toBe(false);
    expect(w.consoleCalls).toBe(consoleBefore);
    expect(w.checksCalls).toHaveLength(2);
  });

  test('a plan that replaces the data volume stops before apply; nothing is written', async () => {
    const w = world({ plan: planJson(['delete', 'create'], ['no-op']) });
    await expect(runAwsSetup({ ...w.opts, yes: true }, w.deps)).rejects.toThrow(
      /would delete or replace the data volume/,
    );
    expect(commands(w)).not.toContain('apply');
    expect(fs.existsSync(w.opts.envFile!)).toBe(false);
  });

  test('--allow-data-volume-replacement lets that plan apply, with a warning', async () => {
    const w = world({ plan: planJson(['delete', 'create'], ['no-op']) });
    await runAwsSetup({ ...w.opts, yes: true, allowDataVolumeReplacement: true }, w.deps);
    expect(commands(w)).toContain('apply');
    expect(w.deps.reporter.events.some((e) => e[0] === 'warn' && /backups will be lost/.test(String(e[1])))).toBe(true);
  });

  test('the engine refusing a prevent_destroy plan becomes a data-volume error', async () => {
    const w = world({
      planStatus: 1,
      planStderr:
        'Error: Instance cannot be destroyed\n  Resource aws_ebs_volume.backup_data has lifecycle.prevent_destroy set',
    });
    await expect(runAwsSetup({ ...w.opts, yes: true }, w.deps)).rejects.toThrow(
      /destroy a protected resource \(the data volume\)/,
    );
    expect(commands(w)).not.toContain('show');
  });

  test('without a TTY and without --yes, changes are refused with a clear message', async () => {
    const w = world();
    await expect(runAwsSetup(w.opts, w.deps)).rejects.toThrow(/no terminal to ask/);
    expect(commands(w)).not.toContain('apply');
  });

  test('a prompt answered with anything but "yes" applies nothing', async () => {
    const w = world();
    const prompt = jest.fn(async () => false);
    await expect(runAwsSetup(w.opts, { ...w.deps, isTTY: true, prompt })).rejects.toThrow(
      /not applied: the plan was not confirmed/,
    );
    expect(prompt).toHaveBeenCalledTimes(1);
    expect(commands(w)).not.toContain('apply');
  });

  test('a host key that differs from the console is not pinned, and no connection file is written', async () => {
    const w = world({ offered: rogueKey });
    await expect(runAwsSetup({ ...w.opts, yes: true }, w.deps)).rejects.toThrow(/does NOT match/);
    expect(fs.existsSync(w.opts.knownHosts!)).toBe(false);
    expect(fs.existsSync(w.opts.envFile!)).toBe(false);
    expect(w.checksCalls).toHaveLength(0);
  });

  describe('a replaced instance (the host keeps its SSH identity on the data volume)', () => {
    const REPLACED = 'i-0fedcba9876543210';
    const consoleOf = (key: { lf: string }) => CONSOLE.replace(hostKey.lf, key.lf);
    /** A first deploy pinned hostKey; then the instance is replaced (a new instance id) and setup runs again. */
    async function replaced() {
      const w = world();
      await runAwsSetup({ ...w.opts, yes: true }, w.deps);
      const pinnedText = fs.readFileSync(w.opts.knownHosts!, 'utf8');
      w.outputs.instance_id = REPLACED;
      w.consoleCalls = 0;
      w.deps.reporter.events.length = 0;
      return { w, pinnedText };
    }

    test('it presents the pinned key: accepted without a new pinning step (no console check), and setup says so', async () => {
      const { w, pinnedText } = await replaced();
      const r = await runAwsSetup({ ...w.opts, yes: true }, w.deps);
      expect(r.hostKey).toEqual({
        fingerprint: hostKey.fingerprint,
        file: w.opts.knownHosts,
        changed: false,
        keptOnReplacement: true,
      });
      expect(w.consoleCalls).toBe(0);
      expect(fs.readFileSync(w.opts.knownHosts!, 'utf8')).toBe(pinnedText);
      const oks = w.deps.reporter.events.filter((e) => e[0] === 'ok').map((e) => String(e[1]));
      expect(oks).toContain(
        `the replaced instance ${REPLACED} (was ${OUTPUTS.instance_id}) presents the pinned host key ${hostKey.fingerprint}: it kept its identity on the data volume, no new pinning step`,
      );
      expect(readConnection(w.opts.envFile!).instanceId).toBe(REPLACED);
    });

    test("it answers with its image's own key until the boot script puts the kept key back: setup waits, then accepts", async () => {
      const { w } = await replaced();
      let scans = 0;
      w.deps.keyscan = async (host) => `${host} ssh-ed25519 ${((scans += 1) <= 3 ? rogueKey : hostKey).blob}\n`;
      w.console = ['']; // the console lags: no fingerprints yet
      const r = await runAwsSetup({ ...w.opts, yes: true }, w.deps);
      expect(scans).toBe(4); // the wait for SSH, then three scans in the pinning step
      expect(r.hostKey).toMatchObject({ fingerprint: hostKey.fingerprint, changed: false, keptOnReplacement: true });
    });

    test('it has a new identity (the console shows the new key): a loud stop with what to do; nothing re-pinned, no connection file', async () => {
      const { w, pinnedText } = await replaced();
      const envText = fs.readFileSync(w.opts.envFile!, 'utf8');
      const newKey = keygen(path.join(tmp, `new_identity_${n}`), 'root@ip-172-31-9-9');
      w.offered = newKey;
      w.console = [consoleOf(newKey)];
      const err = await runAwsSetup({ ...w.opts, yes: true }, w.deps).catch((e: OperatorError) => e);
      expect(err).toBeInstanceOf(OperatorError);
      const e = err as OperatorError;
      expect(e.what).toMatch(
        new RegExp(
          `the host key ${IP} presents is NOT the one pinned in .*known_hosts: not connecting, nothing re-pinned`,
        ),
      );
      expect(e.details).toContain(`pinned:  ${hostKey.fingerprint}`);
      expect(e.details).toContain(`offered: ${newKey.fingerprint}`);
      expect(e.likelyCause).toMatch(/new SSH identity .* holds no kept host key/);
      expect(e.next).toMatch(/mv .*known_hosts .*known_hosts\.old && npx zx scripts\/setup\.mjs/);
      expect(fs.readFileSync(w.opts.knownHosts!, 'utf8')).toBe(pinnedText);
      expect(fs.readFileSync(w.opts.envFile!, 'utf8')).toBe(envText);
      expect(w.consoleCalls).toBe(1); // the console settled it: no waiting out the timeout
    });

    test('another key while the console shows the pinned one: a man-in-the-middle stop after the wait', async () => {
      const kh = path.join(tmp, 'kh-mitm');
      writeKnownHosts(kh, [knownHostsLine(IP, 22, 'ssh-ed25519', hostKey.blob)]);
      let t = 0;
      let scans = 0;
      const scanned = [{ host: IP, keyType: 'ssh-ed25519', blob: rogueKey.blob, fingerprint: rogueKey.fingerprint }];
      const err = await stepPinHostKey(
        {
          host: IP,
          port: 22,
          instanceId: REPLACED,
          scanned,
          knownHostsFile: kh,
          previousInstanceId: OUTPUTS.instance_id,
        },
        {
          reporter: recordingReporter(),
          consoleOutput: async () => CONSOLE,
          keyscan: async (host) => {
            scans += 1;
            return `${host} ssh-ed25519 ${rogueKey.blob}\n`;
          },
          timeoutMs: 600_000,
          intervalMs: 1,
          now: () => (t += 120_000),
        },
      ).catch((e: OperatorError) => e);
      expect(err).toBeInstanceOf(OperatorError);
      expect((err as OperatorError).likelyCause).toMatch(/possible man-in-the-middle/);
      expect((err as OperatorError).next).toMatch(/^do not connect/);
      expect(scans).toBeGreaterThan(1);
      expect(readKnownHosts(kh).map((k) => k.fingerprint)).toEqual([hostKey.fingerprint]);
    });
  });

  test('failed smoke tests are reported (the connection file is still written, for troubleshoot.mjs)', async () => {
    const w = world({ failSmoke: true });
    const r = await runAwsSetup({ ...w.opts, yes: true }, w.deps);
    expect(r.smoke).toMatchObject({ ok: false, failed: 2 });
    expect(fs.existsSync(w.opts.envFile!)).toBe(true);
    expect(w.deps.reporter.events.some((e) => e[0] === 'detail' && e[1] === 'cause: sshd stopped')).toBe(true);
  });

  test('bad tfvars stop the run before any engine call', async () => {
    const w = world();
    fs.writeFileSync(path.join(w.opts.cwd!, 'terraform.tfvars'), 'ssh_public_key = "ssh-rsa AAAAB3Nza me"\n');
    await expect(runAwsSetup({ ...w.opts, yes: true }, w.deps)).rejects.toThrow(/terraform.tfvars has 1 problem/);
    expect(w.calls).toEqual([]);
  });

  test('missing AWS credentials stop the run at step 2 (after terraform.tfvars) with the fix', async () => {
    const w = world();
    const err = Object.assign(new Error('Could not load credentials from any providers'), {
      name: 'CredentialsProviderError',
    });
    w.deps.prereqDeps!.sts = {
      send: async () => {
        throw err;
      },
    } as never;
    await expect(runAwsSetup(w.opts, w.deps)).rejects.toThrow(/missing prerequisites: AWS credentials/);
    expect(w.calls).toEqual([]);
    expect(w.deps.reporter.events.filter((e) => e[0] === 'step').map((e) => e[3])).toEqual([
      'Validate terraform.tfvars',
      'Prerequisites',
    ]);
  });

  test('with no AWS credentials and a wrong key in terraform.tfvars, the key is reported first: tfvars need no AWS', async () => {
    const w = world();
    let stsCalls = 0;
    w.deps.prereqDeps!.sts = {
      send: async () => {
        stsCalls += 1;
        throw Object.assign(new Error('Could not load credentials from any providers'), {
          name: 'CredentialsProviderError',
        });
      },
    } as never;
    fs.writeFileSync(path.join(w.opts.cwd!, 'terraform.tfvars'), 'ssh_public_key = "ssh-rsa AAAAB3Nza me"\n');
    await expect(runAwsSetup(w.opts, w.deps)).rejects.toThrow(/terraform.tfvars has 1 problem/);
    expect(stsCalls).toBe(0);
    expect(w.calls).toEqual([]);
  });
});

describe('protectionSummary (what the stack made for snapshots, the recycle bin and the alarm)', () => {
  const values = validateTfvars({ ssh_public_key: 'x' }).values as TfvarsValues;
  const made = {
    ...OUTPUTS,
    snapshot_policy_id: 'policy-0123456789abcdef0',
    recycle_bin_rule_id: 'rule0123',
    recycle_bin_rule_scope: 'dlm-snapshots',
    backup_alarm_name: 'btrbk-no-completed-backup-vol-0123456789abcdef0',
    alert_topic_arn: '',
    alert_email: '',
  };

  test('an older stack without these outputs: no lines', () => {
    expect(protectionSummary(OUTPUTS, values)).toEqual([]);
  });

  test('defaults: snapshots, recycle bin, and an alarm that mails nobody, said as a warning', () => {
    const lines = protectionSummary(made, values);
    expect(lines[0]).toEqual([
      'ok',
      expect.stringMatching(/policy-0123456789abcdef0 snapshots the data volume every 24 h and keeps 7/),
    ]);
    expect(lines[1]).toEqual(['ok', expect.stringMatching(/stays recoverable for 7 days \(rule rule0123\)/)]);
    expect(lines[2]).toEqual([
      'warn',
      expect.stringMatching(/btrbk-no-completed-backup-vol-0123456789abcdef0 fires after 26 h.*mails nobody/),
    ]);
    expect(lines).toHaveLength(3);
  });

  test('with an address: where it mails, and that the subscription must be confirmed', () => {
    const lines = protectionSummary(
      {
        ...made,
        alert_email: 'me@example.org',
        alert_topic_arn: 'arn:aws:sns:us-west-1:123456789012:btrbk-backup-alerts-x',
      },
      { ...values, backup_alarm_hours: 50, alert_email: 'me@example.org' },
    );
    expect(lines[2]).toEqual([
      'ok',
      expect.stringMatching(/fires after 50 h.*it mails me@example\.org \(SNS topic arn:aws:sns:/),
    ]);
    expect(lines[3]).toEqual([
      'warn',
      expect.stringMatching(/confirmation link to me@example\.org.*stays pending and no alarm is mailed/),
    ]);
  });

  test('a Region-level rule: says what it keeps and prints the lock command; parts turned off are warnings', () => {
    const lines = protectionSummary(
      { ...made, snapshot_policy_id: '', recycle_bin_rule_scope: 'region', backup_alarm_name: '' },
      { ...values, recycle_bin_lock_days: 10 },
    );
    expect(lines).toEqual([
      ['warn', expect.stringMatching(/snapshots: none/)],
      [
        'warn',
        expect.stringMatching(
          /EVERY EBS snapshot deleted in us-west-1.*aws rbin lock-rule --region us-west-1 --identifier rule0123 --lock-configuration 'UnlockDelay=\{UnlockDelayValue=10,UnlockDelayUnit=DAYS\}'/,
        ),
      ],
      ['warn', expect.stringMatching(/alarm: none/)],
    ]);
  });
});

describe('single steps', () => {
  const noChanges = { hasChanges: false } as PlanAnalysis;
  const changes = { hasChanges: true } as PlanAnalysis;

  test('stepConfirm: nothing to do → false; --yes → true; prompt decides on a TTY', async () => {
    const reporter = recordingReporter();
    expect(await stepConfirm(noChanges, { target: 'aws' }, { reporter, isTTY: false })).toBe(false);
    expect(await stepConfirm(changes, { target: 'aws', yes: true }, { reporter, isTTY: false })).toBe(true);
    expect(await stepConfirm(changes, { target: 'aws' }, { reporter, isTTY: true, prompt: async () => true })).toBe(
      true,
    );
  });

  test('stepWaitForSsh times out with the cause and what to check', async () => {
    let t = 0;
    const reporter = recordingReporter();
    await expect(
      stepWaitForSsh(IP, 22, {
        reporter,
        timeoutMs: 300_000,
        intervalMs: 1,
        probe: async () => false,
        now: () => (t += 60_000),
      }),
    ).rejects.toThrow(/did not answer within 5 minutes/);
  });

  test('stepWaitForSsh keeps waiting while the port is open but no key is offered', async () => {
    const reporter = recordingReporter();
    let scans = 0;
    const keys = await stepWaitForSsh(IP, 22, {
      reporter,
      intervalMs: 1,
      probe: async () => true,
      keyscan: async () => ((scans += 1) < 3 ? '' : `${IP} ssh-ed25519 ${hostKey.blob}\n`),
    });
    expect(scans).toBe(3);
    expect(keys[0].fingerprint).toBe(hostKey.fingerprint);
  });

  test('stepPinHostKey gives up when the console never shows fingerprints, saying how to resume', async () => {
    let t = 0;
    const reporter = recordingReporter();
    const scanned = [{ host: IP, keyType: 'ssh-ed25519', blob: hostKey.blob, fingerprint: hostKey.fingerprint }];
    const err = await stepPinHostKey(
      { host: IP, port: 22, instanceId: 'i-1', scanned, knownHostsFile: path.join(tmp, 'kh-never') },
      { reporter, consoleOutput: async () => 'booting', timeoutMs: 600_000, intervalMs: 1, now: () => (t += 120_000) },
    ).catch((e: OperatorError) => e);
    expect(err).toBeInstanceOf(OperatorError);
    expect((err as OperatorError).what).toMatch(/no host key fingerprints after 10 minutes/);
    expect((err as OperatorError).next).toMatch(/re-run setup/);
    expect(fs.existsSync(path.join(tmp, 'kh-never'))).toBe(false);
  });

  test('an engine that cannot start is an OperatorError: it could not run (the output and status: core/process.test.ts)', async () => {
    const eng = {
      engine: { name: 'terraform' as const, path: '/nonexistent/engine', version: '1.11.4' },
      mirror: null,
      env: {},
    };
    await expect(stepApply(eng, path.join(tmp, 'plan.tfplan'), tmp, { reporter: recordingReporter() })).rejects.toThrow(
      /could not run/,
    );
  });

  test('promptYes accepts only "yes"', async () => {
    const ask = async (answer: string) => {
      const input = new PassThrough();
      const output = new PassThrough();
      const p = promptYes('Apply? ', { input, output });
      input.end(`${answer}\n`);
      return p;
    };
    expect(await ask('yes')).toBe(true);
    expect(await ask(' YES ')).toBe(true);
    expect(await ask('y')).toBe(false);
    expect(await ask('')).toBe(false);
  });

  test('consoleReporter prints steps and, without a TTY, spinner updates as plain lines', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d) => {
      text += d;
    });
    const r = consoleReporter({ stream: out, tty: false });
    r.step(7, 8, 'Wait for SSH');
    const spin = r.spinner('waiting for SSH');
    spin.update('port open');
    spin.stop();
    r.ok('done');
    expect(text).toBe('\n[7/8] Wait for SSH\n  … waiting for SSH\n  … port open\n  ✓ done\n');
  });

  test('checkOptions refuses an unknown target and a bad transfer figure', () => {
    expect(() => checkOptions({ target: 'gcp' as never })).toThrow(/unknown --target gcp/);
    expect(() => checkOptions({ target: 'aws', expectedTransferGb: Number('lots') })).toThrow(/expected-transfer-gb/);
    expect(checkOptions({ target: 'local' })).toEqual({ target: 'local' });
  });
});

describe('setup --target local (local target and smoke tests faked)', () => {
  function localWorld(offered = hostKey) {
    const w = world({ offered });
    const envFile = path.join(w.opts.cwd!, 'local_connection.env');
    const kh = path.join(w.opts.cwd!, 'local_known_hosts');
    fs.writeFileSync(kh, `[127.0.0.1]:2222 ssh-ed25519 ${hostKey.blob}\n`);
    const up = jest.fn(async () => {
      fs.writeFileSync(
        envFile,
        [
          `BTRBK_AWS_HOST='127.0.0.1'`,
          `BTRBK_AWS_USER='btrbk'`,
          `BTRBK_AWS_SSH_KEY='${path.join(sshDir, 'btrbk_aws')}'`,
          `BTRBK_AWS_TARGET='ssh://127.0.0.1:2222/backup_volume/backups'`,
          `BTRBK_AWS_PATH='/backup_volume/backups'`,
          `BTRBK_AWS_INSTANCE_ID='local-btrbk-target'`,
          `BTRBK_AWS_VOLUME_ID='local-volume'`,
          `BTRBK_AWS_REGION='local'`,
          `BTRBK_AWS_SSH_PORT='2222'`,
          `BTRBK_AWS_KNOWN_HOSTS='${kh}'`,
          '',
        ].join('\n'),
      );
      return { envFile };
    });
    return { w, up, envFile };
  }

  test('up, then the pinned key is checked against the running target, then the smoke tests', async () => {
    const { w, up, envFile } = localWorld();
    const r = await runLocalSetup({ target: 'local' }, { ...w.deps, localTarget: { up } });
    expect(up).toHaveBeenCalledTimes(1);
    expect(w.calls).toEqual([]); // no engine
    expect(r.envFile).toBe(envFile);
    expect(r.hostKey.fingerprint).toBe(hostKey.fingerprint);
    expect(w.checksCalls[0][1]).toEqual(['check-ssh', 'check-volume']);
    expect(r.btrbkConf).toContain('target send-receive ssh://127.0.0.1:2222/backup_volume/backups');
    expect(r.btrbkConf).toContain('the local target');
  });

  test('--env: the connection the local target wrote is copied there, validated', async () => {
    const { w, up, envFile } = localWorld();
    const copy = path.join(w.opts.cwd!, 'elsewhere.env');
    const r = await runLocalSetup({ target: 'local', envFile: copy }, { ...w.deps, localTarget: { up } });
    expect(r.envFile).toBe(copy);
    expect(readConnection(copy)).toEqual(readConnection(envFile));
  });

  test('a target offering another key than the pinned one is an error before any smoke test', async () => {
    const { w, up } = localWorld(rogueKey);
    await expect(runLocalSetup({ target: 'local' }, { ...w.deps, localTarget: { up } })).rejects.toThrow(
      /does not match the one pinned/,
    );
    expect(w.checksCalls).toHaveLength(0);
  });
});
