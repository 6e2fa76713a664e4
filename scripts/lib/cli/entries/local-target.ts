// local-target: the real boot script in a Debian container on this machine (docs/LOCAL-TARGET.md), and the laptop
// container that backs up to it.
import { spawnSync } from 'node:child_process';
import { OperatorError } from '../../core/errors.js';
import { bool, num, str, verb, type Context, type EntryPoint, type GroupSpec, type OptionSpec } from '../command.js';

const AS_ROOT = 'it mounts, attaches loop devices and starts a container';
const progress =
  (ctx: Context) =>
  (line: string): void =>
    ctx.say(ctx.paint.dim(line));

/** `--limits TYPE|none`, `--link RATE/RTT|none`: undefined when not given (keep what is set), null for none. */
export function noneOr<T>(value: string | undefined, parse: (v: string) => T): T | null | undefined {
  if (value === undefined) return undefined;
  return ['none', 'off', 'false'].includes(value) ? null : parse(value);
}

const LINK: OptionSpec = {
  name: 'link',
  type: 'string',
  valueName: 'RATE_MBIT/RTT_MS|none',
  help: 'shape the link to the sshd port, e.g. 32/40 (32 Mbit/s, 40 ms round trip); none lifts it',
};
const PURGE = (what: string): OptionSpec => ({ name: 'purge', type: 'boolean', help: `also delete ${what}` });
const link = async (ctx: Context) => {
  const { parseLinkShape } = await import('../../local-target/limits.js');
  return noneOr(str(ctx.args, 'link'), parseLinkShape);
};
const describeModule = () => import('../../local-target/describe.js');
const laptopNames = async () => {
  const { LAPTOP_DISK_MOUNT, UPLINK_UNIT } = await import('../../local-target/laptop.js');
  return { diskMount: LAPTOP_DISK_MOUNT, uplinkUnit: UPLINK_UNIT };
};
const unhealthy = (s: { running: boolean; healthy: boolean }): number => (s.running && !s.healthy ? 1 : 0);

const up = verb({
  name: 'up',
  summary: 'start the local target (idempotent): the real boot script in a Debian container, a loop-device volume',
  root: AS_ROOT,
  options: [
    {
      name: 'port',
      type: 'number',
      valueName: 'N',
      help: 'the sshd port on 127.0.0.1 (default: the last one used, else 2222)',
    },
    {
      name: 'volume-size',
      type: 'string',
      valueName: 'SIZE',
      help: 'size of a new volume image, e.g. 2G (an existing image is kept as it is)',
    },
    {
      name: 'limits',
      type: 'string',
      valueName: 'TYPE|none',
      help: "run under an instance type's CPU baseline and memory, e.g. t3a.nano (see instance-types); none lifts them",
    },
    LINK,
    {
      name: 'release',
      type: 'string',
      choices: ['12', '13'],
      valueName: '12|13',
      help: 'the Debian release the instance runs (default: the last one used, else 12; BTRBK_LOCAL_TARGET_RELEASE); a change replaces the instance and keeps the volume',
    },
    {
      name: 'devices',
      type: 'string',
      valueName: 'NAME,...|none',
      help: 'a key per device, each reaching only backups/NAME (id_ed25519-NAME in the state dir, connection-NAME.env beside the connection file; default: the last list used, else none; BTRBK_LOCAL_TARGET_DEVICES); a device left out is revoked: its key refused, its backups kept and frozen',
    },
  ],
  async run(ctx) {
    const lt = await import('../../local-target/local-target.js');
    return lt.up({
      port: num(ctx.args, 'port'),
      release: str(ctx.args, 'release'),
      // none: no devices (an empty list, not "keep the last one")
      devices:
        noneOr(str(ctx.args, 'devices'), (v) => v.split(/[\s,]+/).filter(Boolean)) ??
        (str(ctx.args, 'devices') === undefined ? undefined : []),
      volumeSize: str(ctx.args, 'volume-size'),
      limits: noneOr(str(ctx.args, 'limits'), String),
      link: await link(ctx),
      onProgress: progress(ctx),
    });
  },
  json: (r) => r,
  text: async (r, { paint }) => (await describeModule()).describeUp(r, paint),
});

const down = verb({
  name: 'down',
  summary: 'stop the local target: nothing stays mounted or attached; the volume is kept (an instance replacement)',
  root: AS_ROOT,
  options: [PURGE('the volume image and ALL ITS BACKUPS')],
  async run(ctx) {
    const lt = await import('../../local-target/local-target.js');
    return lt.down({ purge: bool(ctx.args, 'purge'), onProgress: progress(ctx) });
  },
  json: (r) => r,
  text: async (r, { paint }) => (await describeModule()).describeDown(r, paint),
});

const status = verb({
  name: 'status',
  summary: "the target's state: running and healthy, ssh, volume, boot, limits (exit 1 when running but not healthy)",
  options: [],
  async run() {
    return (await import('../../local-target/local-target.js')).status();
  },
  json: (r) => r,
  text: async (r, { paint }) => (await describeModule()).describeTarget(r, paint),
  exit: (s) => unhealthy(s),
});

const limits = verb({
  name: 'limits',
  summary: "change a running target's instance-type limits and link shape, then show its state",
  root: AS_ROOT,
  positionals: [{ name: 'TYPE', help: 'an instance type (see instance-types), or none to lift the limits' }],
  options: [LINK],
  async run(ctx) {
    const type = ctx.args.positionals.TYPE as string | undefined;
    if (type === undefined && str(ctx.args, 'link') === undefined)
      throw new OperatorError('limits needs an instance type or none', {
        next: `${ctx.prog} t3a.nano (or: limits none)`,
      });
    const lt = await import('../../local-target/local-target.js');
    lt.setLimits({ limits: noneOr(type, String), link: await link(ctx), onProgress: progress(ctx) });
    return lt.status();
  },
  text: async (r, { paint }) => (await describeModule()).describeTarget(r, paint),
});

const instanceTypes = verb({
  name: 'instance-types',
  summary: 'the instance-type facts --limits uses; --verify compares them with EC2 DescribeInstanceTypes',
  options: [
    { name: 'verify', type: 'boolean', help: 'compare the table with DescribeInstanceTypes (AWS credentials)' },
    { name: 'profile', type: 'string', valueName: 'NAME', help: 'AWS profile for --verify' },
    { name: 'region', type: 'string', valueName: 'REGION', help: 'AWS region for --verify' },
  ],
  async run(ctx) {
    const { formatInstanceTypes, formatInstanceTypeCheck } = await describeModule();
    ctx.say(formatInstanceTypes());
    if (!bool(ctx.args, 'verify')) return;
    const it = await import('../../core/instance-types.js');
    const { makeEc2Client, awsError } = await import('../../deploy/aws.js');
    const profile = str(ctx.args, 'profile');
    let diffs;
    try {
      diffs = await it.verifyInstanceTypes(makeEc2Client({ profile, region: str(ctx.args, 'region') }));
    } catch (err) {
      throw awsError(err, 'DescribeInstanceTypes', { profile });
    }
    ctx.say(formatInstanceTypeCheck(diffs, ctx.paint));
    if (diffs.length)
      throw new OperatorError('the instance-type table differs from DescribeInstanceTypes', {
        next: 'update scripts/lib/core/instance-types.ts with the live figures above',
      });
  },
});

const laptopUp = verb({
  name: 'up',
  summary: 'start the laptop container (Debian 13, systemd, its own btrfs disk) linked to the local target',
  root: AS_ROOT,
  options: [
    {
      name: 'disk-size',
      type: 'string',
      valueName: 'SIZE',
      help: 'size of a new disk image, e.g. 1G (an existing one is kept as it is)',
    },
  ],
  connection: {
    default: 'none',
    required: true,
    help: "the target's connection file (default: BTRBK_ENV_FILE, else the local target's)",
  },
  async run(ctx) {
    const { laptopUp } = await import('../../local-target/laptop.js');
    return laptopUp({ envFile: ctx.envFile, diskSize: str(ctx.args, 'disk-size'), onProgress: progress(ctx) });
  },
  json: (r) => r,
  text: async (r, { paint }) => (await describeModule()).describeLaptopUp(r, await laptopNames(), paint),
});

const laptopDown = verb({
  name: 'down',
  summary: 'stop the laptop container; its disk is kept',
  root: AS_ROOT,
  options: [PURGE("the laptop's disk image")],
  async run(ctx) {
    const { laptopDown } = await import('../../local-target/laptop.js');
    return laptopDown({ purge: bool(ctx.args, 'purge'), onProgress: progress(ctx) });
  },
  json: (r) => r,
  text: async (r, { paint }) => (await describeModule()).describeLaptopDown(r, paint),
});

const laptopStatus = verb({
  name: 'status',
  summary: "the laptop's state: running and healthy, disk, network (exit 1 when running but not healthy)",
  options: [],
  async run() {
    return (await import('../../local-target/laptop.js')).laptopStatus();
  },
  json: (r) => r,
  text: async (r, { paint }) => (await describeModule()).describeLaptop(r, await laptopNames(), paint),
  exit: (s) => unhealthy(s),
});

const laptopExec = verb({
  name: 'exec',
  summary: 'run a command as root inside the laptop, in the project directory (its exit status is the exit status)',
  root: AS_ROOT,
  positionals: [{ name: 'CMD', required: true, variadic: true, help: 'the command and its arguments, after --' }],
  options: [],
  notes: 'example: npx zx scripts/local-target.mjs laptop exec -- btrbk --version',
  async run(ctx) {
    const { laptopExecArgs } = await import('../../local-target/laptop.js');
    const r = spawnSync('nsenter', laptopExecArgs(ctx.args.positionals.CMD as string[]), { stdio: 'inherit' });
    if (r.error) throw new OperatorError('cannot run nsenter', { cause: r.error.message, next: 'install util-linux' });
    return r.status ?? 1;
  },
  exit: (status) => status,
});

const laptopNetwork = verb({
  name: 'network',
  summary: "cut (down) or restore (up) the laptop's link to the target",
  root: AS_ROOT,
  positionals: [{ name: 'STATE', required: true, choices: ['down', 'up'], help: 'down: cut the link; up: restore it' }],
  options: [],
  async run(ctx) {
    const state = ctx.args.positionals.STATE as 'down' | 'up';
    await (await import('../../local-target/laptop.js')).laptopNetwork(state);
    return state;
  },
  text: (state, { paint }) => paint.green(`✓ the laptop's network is ${state}`),
});

const laptopDemo = verb({
  name: 'demo',
  summary: "npm run demo's laptop half: install, back up, restore a file, a new laptop from the backups",
  root: AS_ROOT,
  options: [],
  connection: {
    default: 'local',
    required: true,
    help: "the target's connection file (default: local_connection.env)",
  },
  async run(ctx) {
    const { laptopDemo } = await import('../../local-target/laptop-demo.js');
    await laptopDemo({ envFile: ctx.envFile, c: ctx.paint });
  },
});

const laptop: GroupSpec = {
  name: 'laptop',
  summary: 'the laptop container that backs up to the local target: up, down, status, exec, network, demo',
  verbs: [laptopUp, laptopDown, laptopStatus, laptopExec, laptopNetwork, laptopDemo],
  defaultVerb: 'status',
};

export const LOCAL_TARGET: EntryPoint = {
  name: 'local-target',
  summary:
    'the local target: the real boot script in a Debian container on this machine, in the aws_connection.env format (docs/LOCAL-TARGET.md)',
  command: {
    name: 'local-target',
    summary: 'the local target',
    verbs: [up, down, status, limits, instanceTypes, laptop],
    defaultVerb: 'status',
  },
};
