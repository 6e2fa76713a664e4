// An instance type's limits on the local target (issue 12): its CPU baseline as a CPU quota, its memory as a
// memory limit, and (for the bench) the link to its sshd port shaped to a rate and round-trip time.
//
// The container is started with --keep-unit --register=no (this machine's PID 1 is not systemd), so nspawn's
// --property=CPUQuota=/MemoryMax= (which ask systemd for a scope) do not work here. Instead the container's
// processes are moved into a cgroup of their own, and everything they fork (sshd's sessions, the gate's stages,
// btrfs receive) stays in it:
//   - cgroup v1 (this machine: cpu, cpuacct and memory mounted separately under /sys/fs/cgroup):
//     cpu/<name>/cpu.cfs_quota_us + cpu.cfs_period_us, memory/<name>/memory.limit_in_bytes, and
//     cpuacct/<name>/cpuacct.usage for the CPU the group used;
//   - cgroup v2 (a unified /sys/fs/cgroup with the cpu controller): <name>/cpu.max, memory.max, cpu.stat.
// Kernel threads (btrfs checksums and compression workers, kworkers) are in no container's cgroup and are NOT
// limited: the bench measures their time separately (kernelThreadCpuSeconds).
import fs from 'node:fs';
import path from 'node:path';
import { OperatorError } from '../core/errors.js';
import { baselineCores, instanceFacts, INSTANCE_TYPES, type InstanceFacts } from '../core/instance-types.js';
import { runSync } from '../core/process.js';

export const CGROUP_ROOT = '/sys/fs/cgroup';
/** The CFS period the quota is a share of (µs). */
export const CFS_PERIOD_US = 100_000;

export interface CgroupLayout {
  version: 1 | 2;
  /** v1: the cpu, cpuacct and memory hierarchies; v2: the unified root three times. */
  cpu: string;
  cpuacct: string;
  memory: string;
}

/** Which cgroup layout this machine has, or null when neither has a cpu controller we can use. */
export function detectCgroups(
  root = CGROUP_ROOT,
  exists: (p: string) => boolean = fs.existsSync,
  read: (p: string) => string = (p) => fs.readFileSync(p, 'utf8'),
): CgroupLayout | null {
  if (
    exists(path.join(root, 'cpu', 'cpu.cfs_quota_us')) &&
    exists(path.join(root, 'memory', 'memory.limit_in_bytes'))
  ) {
    const acct = exists(path.join(root, 'cpuacct', 'cpuacct.usage'))
      ? path.join(root, 'cpuacct')
      : path.join(root, 'cpu');
    return { version: 1, cpu: path.join(root, 'cpu'), cpuacct: acct, memory: path.join(root, 'memory') };
  }
  try {
    const controllers = read(path.join(root, 'cgroup.controllers')).split(/\s+/);
    if (controllers.includes('cpu') && controllers.includes('memory'))
      return { version: 2, cpu: root, cpuacct: root, memory: root };
  } catch {
    /* no v2 root */
  }
  return null;
}

export interface Limits {
  type: string;
  /** CPU time per period (µs): the whole instance's baseline (t3a.nano: 10 % of one core = 10000 of 100000). */
  cpuQuotaUs: number;
  cpuPeriodUs: number;
  memoryBytes: number;
}

/** The limits of an instance type (its facts from core/instance-types.ts). */
export function limitsFor(type: string, facts: InstanceFacts | null = instanceFacts(type)): Limits {
  if (!facts) {
    throw new OperatorError(`unknown instance type ${type} for --limits`, {
      next: `use one of: ${Object.keys(INSTANCE_TYPES).join(', ')}`,
    });
  }
  return {
    type,
    cpuQuotaUs: Math.round(baselineCores(facts) * CFS_PERIOD_US),
    cpuPeriodUs: CFS_PERIOD_US,
    memoryBytes: facts.memoryMiB * 1024 * 1024,
  };
}

/** The files to write (path relative to the group's directory in each hierarchy, value) for limits, or to lift them. */
export function limitFiles(
  layout: CgroupLayout,
  limits: Limits | null,
): Array<{ hierarchy: 'cpu' | 'memory'; file: string; value: string }> {
  if (layout.version === 1) {
    return [
      { hierarchy: 'cpu', file: 'cpu.cfs_period_us', value: String(limits?.cpuPeriodUs ?? CFS_PERIOD_US) },
      { hierarchy: 'cpu', file: 'cpu.cfs_quota_us', value: limits ? String(limits.cpuQuotaUs) : '-1' },
      { hierarchy: 'memory', file: 'memory.limit_in_bytes', value: limits ? String(limits.memoryBytes) : '-1' },
    ];
  }
  return [
    {
      hierarchy: 'cpu',
      file: 'cpu.max',
      value: limits ? `${limits.cpuQuotaUs} ${limits.cpuPeriodUs}` : `max ${CFS_PERIOD_US}`,
    },
    { hierarchy: 'memory', file: 'memory.max', value: limits ? String(limits.memoryBytes) : 'max' },
  ];
}

/** The group's directories for a container name. */
export function groupDirs(layout: CgroupLayout, name: string): { cpu: string; cpuacct: string; memory: string } {
  const g = `btrbk-lt-${name}`;
  return { cpu: path.join(layout.cpu, g), cpuacct: path.join(layout.cpuacct, g), memory: path.join(layout.memory, g) };
}

/** Every process of the container: those in the leader's PID namespace, and nspawn itself. */
export function containerPids(leader: number, nspawn: number | null): number[] {
  let ns: string;
  try {
    ns = fs.readlinkSync(`/proc/${leader}/ns/pid`);
  } catch {
    return [];
  }
  const pids = new Set<number>(nspawn ? [nspawn] : []);
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (fs.readlinkSync(`/proc/${d}/ns/pid`) === ns) pids.add(Number(d));
    } catch {
      /* gone */
    }
  }
  return [...pids];
}

function requireLayout(): CgroupLayout {
  const layout = detectCgroups();
  if (!layout) {
    throw new OperatorError('cannot apply instance limits: no usable cgroup cpu and memory controllers', {
      cause: `neither cgroup v1 (${CGROUP_ROOT}/cpu/cpu.cfs_quota_us) nor v2 (cpu and memory in ${CGROUP_ROOT}/cgroup.controllers) is there`,
      next: 'run without --limits, or on a machine with cgroups mounted',
    });
  }
  return layout;
}

/**
 * Moves the container's processes into its group and sets the limits (null: lifts them, the processes stay in
 * the group so its CPU is still counted). Returns the group's directories.
 */
export function applyLimits(
  name: string,
  pids: number[],
  limits: Limits | null,
): { layout: CgroupLayout; dirs: ReturnType<typeof groupDirs> } {
  const layout = requireLayout();
  const dirs = groupDirs(layout, name);
  try {
    for (const d of new Set(Object.values(dirs))) fs.mkdirSync(d, { recursive: true });
    if (layout.version === 2) {
      // the cpu and memory controllers must be enabled for the root's children
      try {
        fs.writeFileSync(path.join(layout.cpu, 'cgroup.subtree_control'), '+cpu +memory');
      } catch {
        /* already, or not allowed */
      }
    }
    for (const f of limitFiles(layout, limits)) fs.writeFileSync(path.join(dirs[f.hierarchy], f.file), f.value);
    for (const pid of pids) {
      for (const d of new Set(Object.values(dirs))) {
        try {
          fs.writeFileSync(path.join(d, 'cgroup.procs'), String(pid));
        } catch (err) {
          // a process that exited meanwhile
          if (fs.existsSync(`/proc/${pid}`)) throw err;
        }
      }
    }
  } catch (err) {
    throw new OperatorError(`cannot apply the limits of ${limits?.type ?? 'none'} to the local target's cgroup`, {
      details: err instanceof Error ? err.message : String(err),
      cause: 'the cgroup hierarchy is read-only here, or a controller is in use by another manager',
      next: 'run without --limits',
    });
  }
  return { layout, dirs };
}

/** The limits now set on a container's group (null values: no limit or no group). */
export function readLimits(
  name: string,
): { cpuQuotaUs: number | null; cpuPeriodUs: number | null; memoryBytes: number | null } | null {
  const layout = detectCgroups();
  if (!layout) return null;
  const dirs = groupDirs(layout, name);
  const rd = (p: string) => {
    try {
      return fs.readFileSync(p, 'utf8').trim();
    } catch {
      return null;
    }
  };
  if (layout.version === 1) {
    const q = rd(path.join(dirs.cpu, 'cpu.cfs_quota_us'));
    if (q === null) return null;
    const m = Number(rd(path.join(dirs.memory, 'memory.limit_in_bytes')));
    return {
      cpuQuotaUs: Number(q) > 0 ? Number(q) : null,
      cpuPeriodUs: Number(rd(path.join(dirs.cpu, 'cpu.cfs_period_us'))),
      memoryBytes: m > 0 && m < 2 ** 62 ? m : null,
    };
  }
  const max = rd(path.join(dirs.cpu, 'cpu.max'));
  if (max === null) return null;
  const [q, p] = max.split(/\s+/);
  const m = rd(path.join(dirs.memory, 'memory.max'));
  return {
    cpuQuotaUs: q === 'max' ? null : Number(q),
    cpuPeriodUs: Number(p),
    memoryBytes: m && m !== 'max' ? Number(m) : null,
  };
}

/** CPU seconds the container's group has used so far (user + system), or null without a group. */
export function groupCpuSeconds(name: string): number | null {
  const layout = detectCgroups();
  if (!layout) return null;
  const dirs = groupDirs(layout, name);
  try {
    if (layout.version === 1)
      return Number(fs.readFileSync(path.join(dirs.cpuacct, 'cpuacct.usage'), 'utf8').trim()) / 1e9;
    const m = /^usage_usec (\d+)/m.exec(fs.readFileSync(path.join(dirs.cpu, 'cpu.stat'), 'utf8'));
    return m ? Number(m[1]) / 1e6 : null;
  } catch {
    return null;
  }
}

/** Removes a container's group (after the container stopped; a group with processes stays, quietly). */
export function removeGroup(name: string): void {
  const layout = detectCgroups();
  if (!layout) return;
  for (const d of new Set(Object.values(groupDirs(layout, name)))) {
    try {
      fs.rmdirSync(d);
    } catch {
      /* absent or busy */
    }
  }
}

// ------------------------------------------------------------------------------------------- CPU accounting

const CLK_TCK = 100;

/** utime + stime (seconds) of one /proc/PID/stat line; the command name may hold spaces and parentheses. */
export function statCpuSeconds(statLine: string, clkTck = CLK_TCK): number {
  const rest = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15
  return (Number(rest[11]) + Number(rest[12])) / clkTck;
}

/** CPU seconds of all kernel threads (children of kthreadd, PID 2) so far: the work no container cgroup sees. */
export function kernelThreadCpuSeconds(): number {
  let total = 0;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const line = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = line.slice(line.lastIndexOf(')') + 2).split(' ');
      // field 4 (ppid) is rest[1]; kthreadd itself is PID 2
      if (d === '2' || rest[1] === '2') total += statCpuSeconds(line);
    } catch {
      /* gone */
    }
  }
  return total;
}

/** Machine-wide busy CPU seconds so far (all CPUs, /proc/stat: everything but idle and iowait). */
export function systemBusySeconds(statText = fs.readFileSync('/proc/stat', 'utf8'), clkTck = CLK_TCK): number {
  const cpu = /^cpu\s+(.*)$/m.exec(statText);
  if (!cpu) return 0;
  const v = cpu[1].trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal (guest is inside user)
  return (v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] ?? 0)) / clkTck;
}

/** CPU seconds of this process and its waited-for children (what the bench's client side spends). */
export function selfAndChildrenCpuSeconds(): number {
  const u = process.resourceUsage();
  const self = (u.userCPUTime + u.systemCPUTime) / 1e6;
  // children: /proc/self/stat fields 16 and 17 (cutime, cstime)
  try {
    const line = fs.readFileSync('/proc/self/stat', 'utf8');
    const rest = line.slice(line.lastIndexOf(')') + 2).split(' ');
    return self + (Number(rest[13]) + Number(rest[14])) / CLK_TCK;
  } catch {
    return self;
  }
}

// ------------------------------------------------------------------------------------------------- the link

export interface LinkShape {
  /** Mbit/s, both directions. */
  rateMbit: number;
  /** Round-trip time (ms): half of it is added on each direction. */
  rttMs: number;
}

/** Parses `RATE[/RTT]` as given on the command line: `32` or `32mbit/40ms` (Mbit/s, ms). */
export function parseLinkShape(text: string): LinkShape {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:mbit)?\s*(?:\/\s*(\d+(?:\.\d+)?)\s*(?:ms)?)?\s*$/i.exec(text);
  if (!m || Number(m[1]) <= 0)
    throw new OperatorError(`cannot read the link shape ${JSON.stringify(text)}`, {
      next: 'give RATE_MBIT[/RTT_MS], e.g. --link 32/40 (32 Mbit/s, 40 ms round trip)',
    });
  return { rateMbit: Number(m[1]), rttMs: m[2] ? Number(m[2]) : 0 };
}

/**
 * The tc commands that shape loopback traffic to and from `port` only: an htb root qdisc whose default class
 * (all other loopback traffic) is unlimited, and a class at the rate that only the two port filters (u32) reach.
 * A round-trip time adds a netem leaf with half of it per direction (needs sch_netem: not on every kernel).
 */
export function linkShapeCommands(port: number, shape: LinkShape, dev = 'lo'): string[][] {
  const cmds = [
    ['tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1', 'r2q', '1000'],
    ['tc', 'class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '100gbit'],
    // loopback packets are up to 64 KiB (GSO): the bucket must hold several
    [
      'tc',
      'class',
      'add',
      'dev',
      dev,
      'parent',
      '1:',
      'classid',
      '1:10',
      'htb',
      'rate',
      `${shape.rateMbit}mbit`,
      'burst',
      '256k',
      'cburst',
      '256k',
    ],
  ];
  if (shape.rttMs > 0)
    cmds.push([
      'tc',
      'qdisc',
      'add',
      'dev',
      dev,
      'parent',
      '1:10',
      'handle',
      '10:',
      'netem',
      'delay',
      `${shape.rttMs / 2}ms`,
      'limit',
      '100000',
    ]);
  for (const dir of ['dport', 'sport']) {
    cmds.push([
      'tc',
      'filter',
      'add',
      'dev',
      dev,
      'parent',
      '1:',
      'protocol',
      'ip',
      'prio',
      '1',
      'u32',
      'match',
      'ip',
      dir,
      String(port),
      '0xffff',
      'flowid',
      '1:10',
    ]);
  }
  return cmds;
}

/** Shapes the link to the local target's port (replacing a shape of ours; refusing someone else's qdisc). */
export function shapeLink(port: number, shape: LinkShape | null, dev = 'lo'): void {
  const cur = runSync('tc', ['qdisc', 'show', 'dev', dev]);
  if (cur.status !== 0)
    throw new OperatorError('cannot read the loopback qdisc (tc)', {
      details: cur.stderr,
      next: 'install iproute2, or run without --link',
    });
  const root = /qdisc (\S+) (\S+) root/.exec(cur.stdout);
  const ours = Boolean(
    root &&
    root[1] === 'htb' &&
    root[2] === '1:' &&
    / default 0?x?1 /.test(cur.stdout) &&
    runSync('tc', ['class', 'show', 'dev', dev, 'classid', '1:10']).stdout.includes('1:10'),
  );
  if (root && root[1] !== 'noqueue' && !ours) {
    throw new OperatorError(`the loopback device already has a ${root[1]} qdisc that this tool did not add`, {
      details: cur.stdout,
      next: 'remove it (tc qdisc del dev lo root) or run without --link',
    });
  }
  if (ours) runSync('tc', ['qdisc', 'del', 'dev', dev, 'root']);
  if (!shape) return;
  for (const argv of linkShapeCommands(port, shape, dev)) {
    const r = runSync(argv[0], argv.slice(1));
    if (r.status !== 0) {
      runSync('tc', ['qdisc', 'del', 'dev', dev, 'root']);
      throw new OperatorError('cannot shape the loopback link (tc)', {
        details: `${argv.join(' ')}\n${r.stderr}`,
        cause: argv.includes('netem')
          ? 'this kernel has no sch_netem (a round-trip time needs it)'
          : 'the sch_htb or cls_u32 module is missing',
        next: argv.includes('netem') ? 'give the rate only (--link 32), or run without --link' : 'run without --link',
      });
    }
  }
}
