import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  assertTfvarsValid,
  findBackupKey,
  findPrivateKeyFor,
  instanceArchitecture,
  isEd25519KeyLine,
  KEYGEN_COMMAND,
  loadTfvars,
  parseTfvars,
  parseTfvarsJson,
  validateTfvars,
} from '../../scripts/lib/deploy/tfvars.js';
import { anchored, isCidr, RETENTION_MIN_SOURCE, RETENTION_SOURCE, VARIABLES } from '../../constructs/variables.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';

const RETENTION_RE = anchored(RETENTION_SOURCE);
const RETENTION_MIN_RE = anchored(RETENTION_MIN_SOURCE);

// A real key made by ssh-keygen (public half only; nothing secret).
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII1QzNzviaEpv/1Bxm4ktxpE/ECBze+ShGAXdDeSL8ad btrbk-backup';
const DEVICE_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAWHVd5gxknjqy08MpCjVa7JpmXcAjmtEgrHVwqT9UUg';
const OTHER_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDoLzncy0H5HqIEZfcW1ZGMwXzPILJHod8+YU+bqWt1f admin@laptop';

const EXAMPLE = `# the stack's inputs
ssh_public_key    = "${KEY}"
aws_region        = "eu-central-1"   // Frankfurt
ebs_volume_size   = 250
allowed_ssh_cidrs = [
  "203.0.113.7/32",   # home
  "2001:db8::/64",
]
/* defaults kept:
   instance_type */
instance_type = "t3a.micro"
`;

describe('parseTfvars (strict HCL subset)', () => {
  test('parses strings, numbers, lists across lines and all comment kinds', () => {
    expect(parseTfvars(EXAMPLE)).toEqual({
      ssh_public_key: KEY,
      aws_region: 'eu-central-1',
      ebs_volume_size: 250,
      allowed_ssh_cidrs: ['203.0.113.7/32', '2001:db8::/64'],
      instance_type: 't3a.micro',
    });
  });

  test('string escapes, booleans, negative and float numbers, empty list', () => {
    expect(parseTfvars('a = "x\\"y\\\\z"\nb = true\nc = -1.5\nd = []\ne = false')).toEqual({
      a: 'x"y\\z',
      b: true,
      c: -1.5,
      d: [],
      e: false,
    });
  });

  test.each([
    ['heredoc', 'ssh_public_key = <<EOT\nssh-ed25519 AAAA\nEOT\n', /heredoc/],
    ['interpolation', 'aws_region = "${var.x}"', /interpolation/],
    ['unterminated string', 'aws_region = "us-west-1\n', /:1: unterminated string/],
    ['duplicate key', 'aws_region = "a"\naws_region = "b"', /:2: aws_region is set twice/],
    ['map in a list', 'x = [{ a = "b" }]', /:1: a map is allowed only as a whole value/],
    ['unterminated map', 'devices = {\n  a = "b"\n', /:1: unterminated map/],
    [
      'map value not a string',
      'devices = {\n  a = "b"\n  b = 5\n}',
      /:3: the value of "b" must be a "double-quoted string"/,
    ],
    ['map in a map', 'devices = { a = { b = "c" } }', /:1: the value of "a" must be a "double-quoted string"/],
    ['duplicate map key', 'devices = {\n  a = "b"\n  "a" = "c"\n}', /:3: the map key "a" is set twice/],
    ['map key with a dot, bare', 'devices = { nas.home = "k" }', /:1: expected = after the map key "nas"/],
    ['map key starting with a digit, bare', 'devices = { 0x = "k" }', /:1: expected a map key .*"quoted name"/],
    [
      'two map entries on a line without a comma',
      'devices = { a = "b" c = "d" }',
      /:1: expected , or a new line or \}/,
    ],
    ['missing =', 'aws_region "x"', /expected = after aws_region/],
    ['trailing junk', 'ebs_volume_size = 100 GiB', /unexpected text after the value of ebs_volume_size/],
    ['bare word', 'aws_region = us-west-1', /expected a value/],
    ['unterminated list', 'allowed_ssh_cidrs = ["1.2.3.4/32"', /unterminated list|expected , or \]/],
    ['nested list', 'x = [["a"]]', /nested lists/],
    ['unknown escape', 'x = "a\\qb"', /unsupported escape/],
  ])('refuses %s with the line number', (_name, text, re) => {
    expect(() => parseTfvars(text, 'terraform.tfvars')).toThrow(OperatorError);
    expect(() => parseTfvars(text, 'terraform.tfvars')).toThrow(re);
  });

  test('maps of strings: multi-line or on one line, quoted or bare keys, = or :, commas optional at line ends', () => {
    const text = `devices = {
  "alice-laptop" = "${KEY} alice"   # her laptop
  bob            = "${OTHER_KEY}",
  // the server
  "nas.home": "k3"
}
empty = {}
one_line = { a = "x", "b-c" = "y" }
`;
    expect(parseTfvars(text)).toEqual({
      devices: { 'alice-laptop': `${KEY} alice`, bob: OTHER_KEY, 'nas.home': 'k3' },
      empty: {},
      one_line: { a: 'x', 'b-c': 'y' },
    });
    // the line numbers after a map are the file's
    expect(() => parseTfvars(`${text}aws_region = us`)).toThrow(/:9: expected a value/);
  });

  test('terraform.tfvars.json is read too, and must be one object', () => {
    expect(parseTfvarsJson(JSON.stringify({ devices: { alice: KEY } }))).toEqual({ devices: { alice: KEY } });
    expect(parseTfvarsJson(JSON.stringify({ ssh_public_key: KEY, ebs_volume_size: 5 }))).toEqual({
      ssh_public_key: KEY,
      ebs_volume_size: 5,
    });
    expect(() => parseTfvarsJson('[1]')).toThrow(/one JSON object/);
    expect(() => parseTfvarsJson('{')).toThrow(/not valid JSON/);
  });
});

describe("validateTfvars (the stack's rules)", () => {
  test('a good file passes with the defaults filled in, and an open-SSH warning only when 0.0.0.0/0', () => {
    const r = validateTfvars(parseTfvars(EXAMPLE));
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.values).toMatchObject({
      key_pair_name: 'btrbk-backup-key',
      admin_ssh_public_key: '',
      availability_zone: '',
      ebs_volume_size: 250,
    });
    expect(r.warnings).toEqual([]);
    const open = validateTfvars({ ssh_public_key: KEY });
    expect(open.ok).toBe(true);
    expect(open.values.aws_region).toBe('us-west-1');
    expect(open.warnings.map((w) => w.key)).toEqual(['allowed_ssh_cidrs']);
  });

  test('a missing file says how to make one, with the keygen command', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfvars-'));
    expect(() => loadTfvars(undefined, dir)).toThrow(/no terraform.tfvars found/);
    try {
      loadTfvars(undefined, dir);
    } catch (err) {
      expect((err as OperatorError).next).toContain(KEYGEN_COMMAND);
    }
    fs.writeFileSync(path.join(dir, 'terraform.tfvars.json'), JSON.stringify({ ssh_public_key: KEY }));
    expect(loadTfvars(undefined, dir).vars).toEqual({ ssh_public_key: KEY });
  });

  const bad: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['no key', {}, 'ssh_public_key', /required/],
    [
      'an RSA key',
      { ssh_public_key: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me@x' },
      'ssh_public_key',
      /must be one ssh-ed25519 public key line.*ssh-keygen -t ed25519/,
    ],
    [
      'a truncated key',
      { ssh_public_key: KEY.slice(0, 60) },
      'ssh_public_key',
      /must be one ssh-ed25519 public key line/,
    ],
    ['a key with a newline', { ssh_public_key: `${KEY}\n` }, 'ssh_public_key', /no trailing newline/],
    ['a private key', { ssh_public_key: '-----BEGIN OPENSSH PRIVATE KEY-----' }, 'ssh_public_key', /PRIVATE key/],
    [
      'a key blob one character short',
      { ssh_public_key: KEY.replace('ad btrbk', 'a btrbk') },
      'ssh_public_key',
      /must be one ssh-ed25519 public key line/,
    ],
    ['a comment with a quote', { ssh_public_key: `${KEY}"x` }, 'ssh_public_key', /optional comment of letters/],
    ['a bad region', { ssh_public_key: KEY, aws_region: 'US-West-1' }, 'aws_region', /must be an AWS region code/],
    [
      'a zone outside the region',
      { ssh_public_key: KEY, aws_region: 'us-west-1', availability_zone: 'us-east-1a' },
      'availability_zone',
      /not in aws_region/,
    ],
    ['size 0', { ssh_public_key: KEY, ebs_volume_size: 0 }, 'ebs_volume_size', /1 to 16384/],
    ['size too big', { ssh_public_key: KEY, ebs_volume_size: 16385 }, 'ebs_volume_size', /1 to 16384/],
    ['fractional size', { ssh_public_key: KEY, ebs_volume_size: 10.5 }, 'ebs_volume_size', /whole number/],
    ['size as string', { ssh_public_key: KEY, ebs_volume_size: '100' }, 'ebs_volume_size', /must be a number/],
    [
      'empty CIDR list',
      { ssh_public_key: KEY, allowed_ssh_cidrs: [] },
      'allowed_ssh_cidrs',
      /must be a non-empty list of CIDR blocks/,
    ],
    [
      'a bad CIDR',
      { ssh_public_key: KEY, allowed_ssh_cidrs: ['203.0.113.7'] },
      'allowed_ssh_cidrs',
      /non-empty list of CIDR blocks such as/,
    ],
    [
      'a prefix too long',
      { ssh_public_key: KEY, allowed_ssh_cidrs: ['10.0.0.0/33'] },
      'allowed_ssh_cidrs',
      /non-empty list of CIDR blocks such as/,
    ],
    [
      'a t2 (Xen) type, saying why',
      { ssh_public_key: KEY, instance_type: 't2.micro' },
      'instance_type',
      /t2 is a Xen type with no NVMe.*finds the data volume by its NVMe serial/,
    ],
    [
      'an arm64 family the stack does not list',
      { ssh_public_key: KEY, instance_type: 'm6g.medium' },
      'instance_type',
      /Nitro burstable type: t3a, t3 or t4g, nano to 2xlarge/,
    ],
    [
      'snapshot_interval_hours 5',
      { ssh_public_key: KEY, snapshot_interval_hours: 5 },
      'snapshot_interval_hours',
      /one of 1, 2, 3, 4, 6, 8, 12, 24: the intervals in hours Data Lifecycle Manager accepts/,
    ],
    [
      'snapshot_retain_count 1001',
      { ssh_public_key: KEY, snapshot_retain_count: 1001 },
      'snapshot_retain_count',
      /0 \(no snapshots\) to 1000/,
    ],
    [
      'snapshot_retain_count 2.5',
      { ssh_public_key: KEY, snapshot_retain_count: 2.5 },
      'snapshot_retain_count',
      /whole number/,
    ],
    ['recycle_bin_days 366', { ssh_public_key: KEY, recycle_bin_days: 366 }, 'recycle_bin_days', /to 365/],
    [
      'recycle_bin_lock_days 6',
      { ssh_public_key: KEY, recycle_bin_lock_days: 6 },
      'recycle_bin_lock_days',
      /from 7 to 30/,
    ],
    [
      'recycle_bin_lock_days 31',
      { ssh_public_key: KEY, recycle_bin_lock_days: 31 },
      'recycle_bin_lock_days',
      /from 7 to 30/,
    ],
    [
      'a volume id as restore_snapshot_id',
      { ssh_public_key: KEY, restore_snapshot_id: 'vol-0123456789abcdef0' },
      'restore_snapshot_id',
      /snapshot id such as snap-/,
    ],
    [
      'backup_alarm_hours 169 (CloudWatch: 7 days)',
      { ssh_public_key: KEY, backup_alarm_hours: 169 },
      'backup_alarm_hours',
      /at most 7 days \(period x evaluation periods <= 604800 seconds/,
    ],
    ['backup_alarm_hours -1', { ssh_public_key: KEY, backup_alarm_hours: -1 }, 'backup_alarm_hours', /0 \(no alarm\)/],
    [
      'an address without a dot in the domain',
      { ssh_public_key: KEY, alert_email: 'me@localhost' },
      'alert_email',
      /one email address/,
    ],
    [
      'two addresses',
      { ssh_public_key: KEY, alert_email: 'a@example.org,b@example.org' },
      'alert_email',
      /one email address/,
    ],
    ['a bad key pair name', { ssh_public_key: KEY, key_pair_name: '-x' }, 'key_pair_name', /1-255 characters/],
    [
      'the backup key as admin key',
      { ssh_public_key: KEY, admin_ssh_public_key: KEY },
      'admin_ssh_public_key',
      /must differ/,
    ],
    ['an unknown variable', { ssh_public_key: KEY, region: 'us-west-1' }, 'region', /unknown variable region/],
    [
      'append_only as a string',
      { ssh_public_key: KEY, append_only: 'false' },
      'append_only',
      /append_only must be true or false \(no quotes\)/,
    ],
    ['an unknown retention unit', { ssh_public_key: KEY, retention: '14x' }, 'retention', /in the order h d w m y/],
    [
      'retention out of order',
      { ssh_public_key: KEY, retention: '14d 48h' },
      'retention',
      /each unit at most once and in the order/,
    ],
    [
      'an empty retention',
      { ssh_public_key: KEY, retention: '' },
      'retention',
      /^retention must be btrbk retention terms/,
    ],
    ['retention as a number', { ssh_public_key: KEY, retention: 14 }, 'retention', /retention must be a string/],
    ['retention_min without a unit', { ssh_public_key: KEY, retention_min: '5' }, 'retention_min', /"latest", or "no"/],
    [
      'retention_min all',
      { ssh_public_key: KEY, retention_min: 'all' },
      'retention_min',
      /^retention_min must be a count/,
    ],
  ];
  test('t3a, t3 and t4g types pass; the image architecture follows the type (t4g: arm64)', () => {
    for (const t of ['t3a.nano', 't3.2xlarge', 't4g.nano', 't4g.small'])
      expect([t, validateTfvars({ ssh_public_key: KEY, instance_type: t }).ok]).toEqual([t, true]);
    expect(['t3a.nano', 't3.micro', 't4g.nano', 't4g.xlarge'].map(instanceArchitecture)).toEqual([
      'x86_64',
      'x86_64',
      'arm64',
      'arm64',
    ]);
  });

  test('snapshots, recycle bin and alarm: the defaults, the limits accepted, 0 turning each off', () => {
    const d = validateTfvars({ ssh_public_key: KEY });
    expect(d.values).toMatchObject({
      snapshot_interval_hours: 24,
      snapshot_retain_count: 7,
      recycle_bin_days: 7,
      recycle_bin_lock_days: 0,
      restore_snapshot_id: '',
      backup_alarm_hours: 26,
      alert_email: '',
    });
    for (const vars of [
      {
        snapshot_interval_hours: 1,
        snapshot_retain_count: 1000,
        recycle_bin_days: 365,
        recycle_bin_lock_days: 30,
        backup_alarm_hours: 168,
      },
      {
        snapshot_retain_count: 0,
        recycle_bin_days: 0,
        backup_alarm_hours: 0,
        restore_snapshot_id: 'snap-01234567',
        alert_email: 'first.last+backup@mail.example.org',
      },
    ])
      expect([vars, validateTfvars({ ssh_public_key: KEY, ...vars }).errors]).toEqual([vars, []]);
  });

  test('a lock warns that the rule becomes Region-level and that this provider does not send the lock', () => {
    const r = validateTfvars({ ssh_public_key: KEY, recycle_bin_lock_days: 7, aws_region: 'eu-west-1' });
    expect(r.ok).toBe(true);
    expect(r.warnings.find((w) => w.key === 'recycle_bin_lock_days')?.message).toMatch(
      /Region-level.*EVERY EBS snapshot deleted in eu-west-1.*does not send the lock/,
    );
  });

  test.each(bad)('refuses %s', (_name, vars, key, re) => {
    const r = validateTfvars(vars);
    expect(r.ok).toBe(false);
    // (a rule's message first, then what setup adds: a pasted private key, a zone outside the region)
    const said = r.errors.filter((x) => x.key === key).map((x) => x.message);
    expect(said.some((m) => re.test(m)) ? said : [...said, re]).toEqual(said);
  });

  test("append_only, retention and retention_min default to the host's defaults, and good values pass", () => {
    expect(validateTfvars({ ssh_public_key: KEY }).values).toMatchObject({
      append_only: true,
      retention: '48h 14d 8w 12m',
      retention_min: '1d',
    });
    const r = validateTfvars({ ssh_public_key: KEY, append_only: false, retention: '*d', retention_min: 'latest' });
    expect(r.errors).toEqual([]);
    expect(r.values).toMatchObject({ append_only: false, retention: '*d', retention_min: 'latest' });
    expect(parseTfvars('append_only = false\nretention = "7d 4w"\nretention_min = "no"')).toEqual({
      append_only: false,
      retention: '7d 4w',
      retention_min: 'no',
    });
  });

  test('the retention rule: count (1-4 digits) or * with h d w m y, each unit once, in that order, single spaces', () => {
    for (const ok of ['48h 14d 8w 12m', '*d', '7d 4w', '1y', '0h', '9999h *d 1w 2m 3y', '24h 30m', '*h *d *w *m *y'])
      expect([ok, RETENTION_RE.test(ok)]).toEqual([ok, true]);
    for (const no of [
      '14x',
      '14d 48h',
      '',
      'd',
      '12345d',
      '14d 14d',
      '* 30d',
      '*',
      ' 1d',
      '1d ',
      '1d  4w',
      '1d\t4w',
      '1d\n',
      '-1d',
      '1D',
      '1.5d',
      '+1d',
      '1d,4w',
      "1d'",
    ]) {
      expect([no, RETENTION_RE.test(no)]).toEqual([no, false]);
    }
  });

  test('the retention_min rule: count (1-4 digits) with h d w m y, or latest, or no', () => {
    for (const ok of ['1d', '0h', '9999y', '12m', 'latest', 'no'])
      expect([ok, RETENTION_MIN_RE.test(ok)]).toEqual([ok, true]);
    for (const no of ['5', 'all', '-1d', '', 'd', '12345d', '*d', '1d 2w', 'Latest', 'none', 'no\n', ' 1d'])
      expect([no, RETENTION_MIN_RE.test(no)]).toEqual([no, false]);
  });

  test('devices: a map of device names to ed25519 keys, beside the legacy key or instead of it', () => {
    const devices = { 'alice-laptop': `${OTHER_KEY.split(' ').slice(0, 2).join(' ')} alice`, bob: DEVICE_KEY };
    expect(validateTfvars({ ssh_public_key: KEY, devices }).errors).toEqual([]);
    expect(validateTfvars({ ssh_public_key: KEY, devices }).values.devices).toEqual(devices);
    expect(validateTfvars({ ssh_public_key: '', devices }).errors).toEqual([]);
    expect(validateTfvars({ ssh_public_key: KEY }).values.devices).toEqual({});
    // from a tfvars file, and from its JSON form
    const fromFile = parseTfvars(`ssh_public_key = ""\ndevices = {\n  bob = "${DEVICE_KEY}"\n}\n`);
    expect(validateTfvars(fromFile).errors).toEqual([]);
    expect(validateTfvars(parseTfvarsJson(JSON.stringify(fromFile))).errors).toEqual([]);
  });

  test.each([
    ['a bad name', { Alice: DEVICE_KEY }, /^devices must have names of 1-63 characters/],
    ['a name with ..', { 'a..b': DEVICE_KEY }, /^devices must have names/],
    ['the reserved name selftest', { selftest: DEVICE_KEY }, /^devices must have names/],
    ['a name of 64 characters', { [`a${'b'.repeat(63)}`]: DEVICE_KEY }, /^devices must have names/],
    [
      'an rsa key',
      { alice: 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me' },
      /^devices must map each name to one ssh-ed25519/,
    ],
    [
      'a key shared by two devices',
      { alice: DEVICE_KEY, bob: `${DEVICE_KEY} other` },
      /^devices must give each device a key of its own/,
    ],
    ['the legacy key', { alice: KEY }, /^no key in devices may be ssh_public_key or admin_ssh_public_key/],
    ['a private key', { alice: '-----BEGIN OPENSSH PRIVATE KEY-----' }, /^devices.alice holds a PRIVATE key/],
    ['a list', ['x'], /^devices must be a map of strings/],
  ])('devices with %s is refused with its message', (_name, devices, re) => {
    const r = validateTfvars({ ssh_public_key: KEY, devices });
    expect(r.ok).toBe(false);
    expect(r.errors.filter((e) => e.key === 'devices').map((e) => e.message)).toContainEqual(expect.stringMatching(re));
  });

  test('no legacy key and no devices: refused with the message of the stack', () => {
    const r = validateTfvars({ ssh_public_key: '', devices: {} });
    expect(r.errors.map((e) => e.key)).toEqual(['ssh_public_key']);
    expect(r.errors[0].message).toMatch(/^give ssh_public_key .*, or devices/);
  });

  test('an admin key different from the backup key is accepted', () => {
    expect(isEd25519KeyLine(OTHER_KEY)).toBe(true);
    expect(validateTfvars({ ssh_public_key: KEY, admin_ssh_public_key: OTHER_KEY }).ok).toBe(true);
  });

  test('assertTfvarsValid lists every problem in one error and offers ssh-keygen for key problems', () => {
    const r = validateTfvars({ ssh_public_key: 'nope', ebs_volume_size: 0 });
    let err: OperatorError | undefined;
    try {
      assertTfvarsValid(r, 'terraform.tfvars');
    } catch (e) {
      err = e as OperatorError;
    }
    expect(err?.what).toBe('terraform.tfvars has 2 problems');
    expect(err?.details).toMatch(/ssh_public_key[\s\S]*ebs_volume_size/);
    expect(err?.next).toContain(KEYGEN_COMMAND);
  });

  test('isCidr follows cidrhost(): IPv4 and IPv6 with a prefix', () => {
    for (const ok of ['0.0.0.0/0', '203.0.113.7/32', '10.1.2.3/24', '::/0', '2001:db8::/64'])
      expect(isCidr(ok)).toBe(true);
    for (const no of ['203.0.113.7', '256.0.0.1/32', '1.2.3.4/-1', '2001:db8::/129', 'x/8', '', 7])
      expect(isCidr(no)).toBe(false);
  });
});

describe('findPrivateKeyFor', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshdir-'));
  const keyFile = path.join(dir, 'btrbk_aws');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'btrbk-backup', '-f', keyFile]);
  const pub = fs.readFileSync(`${keyFile}.pub`, 'utf8').trim();

  test('the key made by the offered ssh-keygen command validates', () => {
    expect(validateTfvars({ ssh_public_key: pub }).ok).toBe(true);
  });

  test('finds the private key by its .pub in the ssh directory', () => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'aaa_other')]);
    expect(findPrivateKeyFor(pub, { sshDir: dir })).toEqual({ file: keyFile, matched: true });
  });

  test('an explicit key whose .pub is another key is refused', () => {
    expect(() => findPrivateKeyFor(pub, { explicit: path.join(dir, 'aaa_other') })).toThrow(
      /is not the key in ssh_public_key/,
    );
    expect(findPrivateKeyFor(pub, { explicit: keyFile }).file).toBe(keyFile);
  });

  test('no legacy key (devices only): findBackupKey takes the first device (by name) whose key pair is in the ssh directory', () => {
    const devDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshdir-dev-'));
    const make = (name: string) => {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path.join(devDir, name)]);
      return fs.readFileSync(path.join(devDir, `${name}.pub`), 'utf8').trim();
    };
    const [zed, bob] = [make('btrbk_aws_zed'), make('btrbk_aws_bob')];
    // carol's key is not here: the first device with its pair found is bob (alice has none either)
    const devices = { zed, carol: OTHER_KEY, bob, alice: DEVICE_KEY };
    expect(findBackupKey({ ssh_public_key: '', devices }, { sshDir: devDir })).toEqual({
      file: path.join(devDir, 'btrbk_aws_bob'),
      matched: true,
      device: 'bob',
    });
    // an explicit key names its device by its .pub
    expect(
      findBackupKey({ ssh_public_key: '', devices }, { sshDir: devDir, explicit: path.join(devDir, 'btrbk_aws_zed') }),
    ).toEqual({ file: path.join(devDir, 'btrbk_aws_zed'), matched: true, device: 'zed' });
    // the legacy key, when there is one, comes first: no device
    expect(findBackupKey({ ssh_public_key: pub, devices }, { sshDir: dir })).toEqual({ file: keyFile, matched: true });
    // a key of no device, or none found: what to pass, and how to deploy without setup
    expect(() => findBackupKey({ ssh_public_key: '', devices }, { sshDir: devDir, explicit: keyFile })).toThrow(
      /btrbk_aws is not the key of any device in terraform.tfvars/,
    );
    expect(() => findBackupKey({ ssh_public_key: '', devices: { carol: OTHER_KEY } }, { sshDir: devDir })).toThrow(
      /cannot find a device's private key/,
    );
    expect(() => findPrivateKeyFor('', { sshDir: os.tmpdir() })).toThrow(/no public key to find/);
  });

  test('no matching key: says how to make or name one', () => {
    expect(() => findPrivateKeyFor(OTHER_KEY, { sshDir: dir })).toThrow(/cannot find the private key/);
    expect(() => findPrivateKeyFor(pub, { explicit: path.join(dir, 'missing') })).toThrow(/no private key at/);
  });
});

describe('terraform.tfvars.example', () => {
  const text = fs.readFileSync(new URL('../../terraform.tfvars.example', import.meta.url), 'utf8');

  test('parses, and its only problem is the placeholder key a person must replace', () => {
    const r = validateTfvars(parseTfvars(text, 'terraform.tfvars.example'));
    expect(r.errors.map((e) => e.key)).toEqual(['ssh_public_key']);
  });

  test('mentions every variable of the stack and the ssh-keygen command', () => {
    for (const name of Object.keys(VARIABLES)) {
      expect(text).toMatch(new RegExp(`^#? ?${name} = `, 'm'));
    }
    expect(text).toContain(KEYGEN_COMMAND);
  });
});

test("README's variables table lists every variable of the stack with its default", () => {
  const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  // a cell shows a default as `value`, strings quoted or not (`us-west-1`, `""`, `"1d"`)
  const plain = (cell: string | undefined): string | undefined => cell?.replace(/^`|`$/g, '').replace(/^"(.*)"$/, '$1');
  for (const [name, spec] of Object.entries(VARIABLES) as [string, { default?: unknown }][]) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
    const shown = spec.default === undefined ? '(required)' : plain(`\`${JSON.stringify(spec.default)}\``);
    expect([name, plain(row?.split(' | ')[1])]).toEqual([name, shown]);
  }
});
