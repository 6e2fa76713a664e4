// The local target's instance limits: cgroup layout detection, the quota and memory of a type, the files
// written for v1 and v2, the tc commands of the shaped link, and the /proc parsers of the CPU accounting.
import {
  detectCgroups,
  limitFiles,
  limitsFor,
  linkShapeCommands,
  parseLinkShape,
  statCpuSeconds,
  systemBusySeconds,
} from '../../scripts/lib/local-target/limits.js';

const fakeFs = (files: Record<string, string>) => ({
  exists: (p: string) => p in files,
  read: (p: string) => {
    if (!(p in files)) throw new Error(`ENOENT ${p}`);
    return files[p];
  },
});

test("cgroup v1 with separate cpu, cpuacct and memory hierarchies (this machine's layout)", () => {
  const f = fakeFs({
    '/cg/cpu/cpu.cfs_quota_us': '-1',
    '/cg/memory/memory.limit_in_bytes': '9223372036854771712',
    '/cg/cpuacct/cpuacct.usage': '0',
  });
  expect(detectCgroups('/cg', f.exists, f.read)).toEqual({
    version: 1,
    cpu: '/cg/cpu',
    cpuacct: '/cg/cpuacct',
    memory: '/cg/memory',
  });
});

test('cgroup v2 needs cpu and memory in cgroup.controllers; neither layout gives null', () => {
  expect(
    detectCgroups(
      '/cg',
      ...(Object.values(fakeFs({ '/cg/cgroup.controllers': 'cpuset cpu io memory pids\n' })) as [never, never]),
    ),
  ).toEqual({ version: 2, cpu: '/cg', cpuacct: '/cg', memory: '/cg' });
  const hybrid = fakeFs({ '/cg/cgroup.controllers': '\n' });
  expect(detectCgroups('/cg', hybrid.exists, hybrid.read)).toBeNull();
});

test('t3a.nano: 10 % of one core as 10000 µs per 100000 µs, 512 MiB; t3.xlarge: 160 %', () => {
  expect(limitsFor('t3a.nano')).toEqual({
    type: 't3a.nano',
    cpuQuotaUs: 10000,
    cpuPeriodUs: 100000,
    memoryBytes: 512 * 2 ** 20,
  });
  expect(limitsFor('t3.xlarge').cpuQuotaUs).toBe(160000);
  expect(() => limitsFor('m5.large')).toThrow(/unknown instance type m5.large/);
});

test('the files written: v1 quota/period/limit_in_bytes, v2 cpu.max/memory.max; lifting writes the unlimited values', () => {
  const v1 = { version: 1 as const, cpu: '/c', cpuacct: '/a', memory: '/m' };
  const v2 = { version: 2 as const, cpu: '/u', cpuacct: '/u', memory: '/u' };
  const nano = limitsFor('t3a.nano');
  expect(limitFiles(v1, nano)).toEqual([
    { hierarchy: 'cpu', file: 'cpu.cfs_period_us', value: '100000' },
    { hierarchy: 'cpu', file: 'cpu.cfs_quota_us', value: '10000' },
    { hierarchy: 'memory', file: 'memory.limit_in_bytes', value: '536870912' },
  ]);
  expect(limitFiles(v1, null).map((x) => x.value)).toEqual(['100000', '-1', '-1']);
  expect(limitFiles(v2, nano)).toEqual([
    { hierarchy: 'cpu', file: 'cpu.max', value: '10000 100000' },
    { hierarchy: 'memory', file: 'memory.max', value: '536870912' },
  ]);
  expect(limitFiles(v2, null).map((x) => x.value)).toEqual(['max 100000', 'max']);
});

test('--link RATE[/RTT]: Mbit/s and ms; anything else is refused with the form to use', () => {
  expect(parseLinkShape('32')).toEqual({ rateMbit: 32, rttMs: 0 });
  expect(parseLinkShape('32mbit/40ms')).toEqual({ rateMbit: 32, rttMs: 40 });
  expect(parseLinkShape('2.5/10')).toEqual({ rateMbit: 2.5, rttMs: 10 });
  expect(() => parseLinkShape('fast')).toThrow(/cannot read the link shape/);
  expect(() => parseLinkShape('0')).toThrow(/cannot read the link shape/);
});

test('the link shape touches only the sshd port: two u32 filters into the rate class, all else the unlimited default', () => {
  const cmds = linkShapeCommands(2222, { rateMbit: 32, rttMs: 0 });
  expect(cmds[0]).toEqual([
    'tc',
    'qdisc',
    'add',
    'dev',
    'lo',
    'root',
    'handle',
    '1:',
    'htb',
    'default',
    '1',
    'r2q',
    '1000',
  ]);
  expect(cmds.map((c) => c.join(' ')).filter((c) => c.includes('filter'))).toEqual([
    'tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport 2222 0xffff flowid 1:10',
    'tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport 2222 0xffff flowid 1:10',
  ]);
  expect(cmds.some((c) => c.includes('32mbit') && c.includes('1:10'))).toBe(true);
  expect(cmds.some((c) => c.includes('netem'))).toBe(false);
  // a round trip: half of it on each direction
  expect(linkShapeCommands(2222, { rateMbit: 32, rttMs: 40 }).find((c) => c.includes('netem'))).toEqual(
    expect.arrayContaining(['delay', '20ms']),
  );
});

test('/proc parsers: utime+stime of a stat line whose name holds spaces and parentheses; busy time of /proc/stat', () => {
  const line =
    '1234 (btrfs (recv) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 1000 10 18446744073709551615';
  expect(statCpuSeconds(line)).toBeCloseTo(3.0);
  const stat = 'cpu  100 10 50 9000 40 5 5 2 0 0\ncpu0 50 5 25 4500 20 2 3 1 0 0\n';
  // user nice system irq softirq steal; not idle or iowait
  expect(systemBusySeconds(stat)).toBeCloseTo(1.72);
});
