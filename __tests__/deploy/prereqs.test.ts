import { mockClient } from 'aws-sdk-client-mock';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { EC2Client, GetConsoleOutputCommand } from '@aws-sdk/client-ec2';
import {
  assertPrereqs,
  checkSources,
  formatPrereqReport,
  runPrereqs,
  type PrereqDeps,
} from '../../scripts/lib/deploy/prereqs.js';
import { clientConfig, getConsoleOutput } from '../../scripts/lib/deploy/aws.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { runResult } from '../../scripts/lib/core/process.js';
import { LAPTOP_MOUNTINFO } from '../support/btrfs-samples.js';

const TOOL_OUTPUT: Record<string, { stdout?: string; stderr?: string }> = {
  ssh: { stderr: 'OpenSSH_9.2p1 Debian-2+deb12u3, OpenSSL 3.0.15 3 Sep 2024' },
  btrfs: { stdout: 'btrfs-progs v6.2\n' },
  btrbk: { stdout: 'btrbk command line client, version 0.32.5\n' },
  'systemd-nspawn': { stdout: 'systemd 252 (252.36-1~deb12u1)\n+PAM +AUDIT\n' },
};
function deps(missing: string[] = [], sts?: STSClient): PrereqDeps {
  return {
    findEngine: () => {
      if (missing.includes('engine')) throw new OperatorError('neither tofu nor terraform is on PATH');
      return { name: 'tofu', path: '/usr/bin/tofu', version: '1.10.6' };
    },
    which: (name) => (missing.includes(name) ? null : `/usr/bin/${name}`),
    runSync: (cmd) =>
      missing.includes(cmd)
        ? runResult({ error: Object.assign(new Error(`spawn ${cmd} ENOENT`), { code: 'ENOENT' }) })
        : runResult({ status: 0, ...TOOL_OUTPUT[cmd] }),
    sts,
    mountinfo: () => LAPTOP_MOUNTINFO,
    realpath: (p) => p,
  };
}

describe('prerequisites (mocked AWS SDK)', () => {
  const stsMock = mockClient(STSClient);
  beforeEach(() => stsMock.reset());

  test('everything present: versions and the AWS account are reported', async () => {
    stsMock
      .on(GetCallerIdentityCommand)
      .resolves({ Account: '123456789012', Arn: 'arn:aws:iam::123456789012:user/backup-admin', UserId: 'AIDAEXAMPLE' });
    const r = await runPrereqs({ target: 'aws', profile: 'backup' }, deps([], new STSClient({ region: 'us-west-1' })));
    expect(r.ok).toBe(true);
    const by = Object.fromEntries(r.checks.map((c) => [c.id, c]));
    expect(by.engine).toMatchObject({ ok: true, version: 'tofu 1.10.6', required: true });
    expect(by.aws).toMatchObject({
      ok: true,
      version: 'account 123456789012',
      detail: 'arn:aws:iam::123456789012:user/backup-admin',
    });
    expect(by.ssh).toMatchObject({ ok: true, version: 'OpenSSH_9.2p1' });
    expect(by['btrfs-progs']).toMatchObject({ ok: true, version: '6.2', required: false });
    expect(by.btrbk).toMatchObject({ ok: true, version: '0.32.5', required: false });
    expect(stsMock.commandCalls(GetCallerIdentityCommand)).toHaveLength(1);
  });

  test('no credentials: AWS is missing, with the configure hint; optional tools missing only warn', async () => {
    stsMock
      .on(GetCallerIdentityCommand)
      .rejects(
        Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }),
      );
    const r = await runPrereqs({ target: 'aws' }, deps(['btrbk', 'btrfs'], new STSClient({ region: 'us-west-1' })));
    expect(r.ok).toBe(false);
    const by = Object.fromEntries(r.checks.map((c) => [c.id, c]));
    expect(by.aws).toMatchObject({ ok: false, status: 'missing' });
    expect(by.aws.detail).toMatch(/no AWS credentials found/);
    expect(by.aws.hint).toMatch(/aws configure/);
    expect(by.btrbk).toMatchObject({ status: 'warn', hint: expect.stringMatching(/apt-get install btrbk/) });
    expect(by['btrfs-progs'].status).toBe('warn');
    expect(() => assertPrereqs(r)).toThrow(/missing prerequisites: AWS credentials/);
  });

  test('expired session and denied access get their own messages', async () => {
    stsMock
      .on(GetCallerIdentityCommand)
      .rejects(
        Object.assign(new Error('The security token included in the request is expired'), { name: 'ExpiredToken' }),
      );
    const r1 = await runPrereqs(
      { target: 'aws', profile: 'sso-dev' },
      deps([], new STSClient({ region: 'us-west-1' })),
    );
    expect(r1.checks.find((c) => c.id === 'aws')?.detail).toMatch(/session has expired \(profile sso-dev\)/);
    stsMock.reset();
    stsMock.on(GetCallerIdentityCommand).rejects(
      Object.assign(new Error('The security token included in the request is invalid.'), {
        name: 'InvalidClientTokenId',
      }),
    );
    const r2 = await runPrereqs({ target: 'aws' }, deps([], new STSClient({ region: 'us-west-1' })));
    expect(r2.checks.find((c) => c.id === 'aws')?.detail).toMatch(/AWS refused the credentials/);
  });

  test('no engine and no ssh: both missing, each with an install hint, in the coloured report too', async () => {
    stsMock.on(GetCallerIdentityCommand).resolves({ Account: '1', Arn: 'arn', UserId: 'u' });
    const r = await runPrereqs(
      { target: 'aws' },
      deps(['engine', 'ssh', 'ssh-keyscan'], new STSClient({ region: 'us-west-1' })),
    );
    const missing = r.checks.filter((c) => c.status === 'missing').map((c) => c.id);
    expect(missing).toEqual(['engine', 'ssh', 'ssh-keyscan']);
    const text = formatPrereqReport(r, { red: (s: string) => `<r>${s}</r>` });
    expect(text).toMatch(/<r>✗<\/r> engine \(tofu\/terraform\)/);
    expect(text).toContain('opentofu.org/docs/intro/install');
    expect(text).toContain('apt-get install openssh-client');
    expect(text).toMatch(/missing: engine \(tofu\/terraform\), ssh client, ssh-keyscan/);
  });

  test('--target local needs no AWS credentials and no engine, but the container tools', async () => {
    const r = await runPrereqs({ target: 'local' }, deps(['engine', 'debootstrap']));
    expect(stsMock.commandCalls(GetCallerIdentityCommand)).toHaveLength(0);
    const by = Object.fromEntries(r.checks.map((c) => [c.id, c]));
    expect(by.aws.status).toBe('skipped');
    expect(by.engine).toMatchObject({ ok: false, required: false, status: 'warn' });
    expect(by.nspawn).toMatchObject({ ok: true, version: 'systemd 252' });
    expect(by.debootstrap).toMatchObject({ status: 'missing', hint: expect.stringMatching(/debootstrap/) });
    expect(r.ok).toBe(false);
  });

  test('EC2 GetConsoleOutput is decoded, and falls back from Latest where it is unsupported', async () => {
    const ec2Mock = mockClient(EC2Client);
    ec2Mock
      .on(GetConsoleOutputCommand, { InstanceId: 'i-1', Latest: true })
      .rejects(Object.assign(new Error('not supported'), { name: 'UnsupportedOperation' }));
    ec2Mock
      .on(GetConsoleOutputCommand, { InstanceId: 'i-1' })
      .resolves({ InstanceId: 'i-1', Output: Buffer.from('-----BEGIN SSH HOST KEY KEYS-----\n').toString('base64') });
    expect(await getConsoleOutput(new EC2Client({ region: 'us-west-1' }), 'i-1')).toBe(
      '-----BEGIN SSH HOST KEY KEYS-----\n',
    );
    ec2Mock.reset();
    ec2Mock.on(GetConsoleOutputCommand).resolves({ InstanceId: 'i-2' });
    expect(await getConsoleOutput(new EC2Client({ region: 'us-west-1' }), 'i-2')).toBe('');
    ec2Mock.restore();
  });

  test('clientConfig honours the region and a named profile', () => {
    const c = clientConfig({ profile: 'backup', region: 'eu-west-1' });
    expect(c.region).toBe('eu-west-1');
    expect(typeof c.credentials).toBe('function');
  });
});

describe('btrfs sources and noatime (/proc/self/mountinfo)', () => {
  test('noatime passes; relatime and strictatime warn with the remount command; non-btrfs warns', () => {
    const r = checkSources(['/home/me', '/var/lib', '/mnt/my data/x', '/boot/efi'], {
      mountinfo: () => LAPTOP_MOUNTINFO,
      realpath: (p: string) => p,
    });
    expect(r.map((c) => c.status)).toEqual(['ok', 'warn', 'warn', 'warn']);
    expect(r[1].detail).toMatch(/mounted relatime: every file read since the last snapshot changes its atime/);
    expect(r[1].hint).toContain('sudo mount -o remount,noatime /');
    expect(r[2].detail).toMatch(/strictatime/);
    expect(r[3].detail).toMatch(/on vfat, not btrfs/);
  });

  test('a source that does not exist is a warning, and sources are optional (report stays ok)', async () => {
    const r = checkSources(['/nope'], {
      mountinfo: () => LAPTOP_MOUNTINFO,
      realpath: () => {
        throw new Error('ENOENT');
      },
    });
    expect(r[0]).toMatchObject({ status: 'warn', detail: 'does not exist' });
    const report = await runPrereqs({ target: 'local', sources: ['/var/lib'] }, deps());
    expect(report.ok).toBe(true);
    expect(report.checks.at(-1)).toMatchObject({ id: 'source', status: 'warn' });
  });
});
