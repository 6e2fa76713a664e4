// The instance-type table against the figures AWS publishes, and its live check against DescribeInstanceTypes
// (mocked at the SDK boundary with answers shaped like the real ones).
import { DescribeInstanceTypesCommand, EC2Client, type InstanceTypeInfo } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import {
  INSTANCE_TYPES,
  baselineCores,
  baselinePerVcpu,
  instanceFacts,
  networkBaselineMBps,
  requireInstanceFacts,
  verifyInstanceTypes,
} from '../../scripts/lib/core/instance-types.js';

const liveType = (
  name: string,
  { vcpus = 2, mib = 512, base = 0.032, peak = 5.0, arch = 'x86_64' } = {},
): InstanceTypeInfo => ({
  InstanceType: name as InstanceTypeInfo['InstanceType'],
  CurrentGeneration: true,
  BurstablePerformanceSupported: true,
  ProcessorInfo: { SupportedArchitectures: [arch as 'x86_64' | 'arm64'], SustainedClockSpeedInGhz: 2.2 },
  VCpuInfo: { DefaultVCpus: vcpus, DefaultCores: 1, DefaultThreadsPerCore: 2 },
  MemoryInfo: { SizeInMiB: mib },
  NetworkInfo: {
    NetworkPerformance: 'Up to 5 Gigabit',
    MaximumNetworkInterfaces: 2,
    NetworkCards: [
      {
        NetworkCardIndex: 0,
        NetworkPerformance: 'Up to 5 Gigabit',
        MaximumNetworkInterfaces: 2,
        BaselineBandwidthInGbps: base,
        PeakBandwidthInGbps: peak,
      },
    ],
  },
});

test('t3a.nano: 2 vCPUs at 5 % each (0.1 of one core), 0.5 GiB, a 0.032 Gbit/s (4 MB/s) network baseline', () => {
  const f = requireInstanceFacts('t3a.nano');
  expect(f).toMatchObject({
    vcpus: 2,
    memoryMiB: 512,
    networkBaselineGbps: 0.032,
    networkBurstGbps: 5,
    arch: 'x86_64',
  });
  expect(baselinePerVcpu(f)).toBeCloseTo(0.05);
  expect(baselineCores(f)).toBeCloseTo(0.1);
  expect(networkBaselineMBps(f)).toBeCloseTo(4);
});

test("the table covers t3a, t3 and t4g from nano to 2xlarge with the credit table's baselines", () => {
  expect(Object.keys(INSTANCE_TYPES)).toHaveLength(21);
  expect(baselinePerVcpu(requireInstanceFacts('t3.large'))).toBeCloseTo(0.3);
  expect(baselinePerVcpu(requireInstanceFacts('t3a.xlarge'))).toBeCloseTo(0.4);
  expect(requireInstanceFacts('t4g.small').arch).toBe('arm64');
  expect(instanceFacts('m5.large')).toBeNull();
  expect(instanceFacts('toString')).toBeNull();
  expect(() => requireInstanceFacts('m5.large')).toThrow(/unknown instance type m5.large; this tool knows t3a.nano/);
});

describe('verifyInstanceTypes (DescribeInstanceTypes, mocked)', () => {
  const ec2 = mockClient(EC2Client);
  afterEach(() => ec2.reset());

  test('agreeing answers (over two pages) give no mismatch', async () => {
    ec2
      .on(DescribeInstanceTypesCommand)
      .resolvesOnce({ InstanceTypes: [liveType('t3a.nano')], NextToken: 'p2' })
      .resolvesOnce({ InstanceTypes: [liveType('t3a.large', { mib: 8192, base: 0.512 })] });
    await expect(
      verifyInstanceTypes(new EC2Client({ region: 'eu-central-1' }), ['t3a.nano', 't3a.large']),
    ).resolves.toEqual([]);
    const calls = ec2.commandCalls(DescribeInstanceTypesCommand);
    expect(calls).toHaveLength(2);
    expect(calls[0].args[0].input.InstanceTypes).toEqual(['t3a.nano', 't3a.large']);
    expect(calls[1].args[0].input.NextToken).toBe('p2');
  });

  test('a changed network baseline and a type the API does not return are reported', async () => {
    ec2.on(DescribeInstanceTypesCommand).resolves({ InstanceTypes: [liveType('t3a.nano', { base: 0.064 })] });
    await expect(
      verifyInstanceTypes(new EC2Client({ region: 'eu-central-1' }), ['t3a.nano', 't4g.nano']),
    ).resolves.toEqual([
      { type: 't3a.nano', field: 'networkBaselineGbps', table: 0.032, live: 0.064 },
      { type: 't4g.nano', field: 'missing', table: 't4g.nano', live: null },
    ]);
  });
});

describe('the facts table and the stack agree on the instance types', () => {
  // tfvars.ts holds the rule the stack and setup enforce; this table holds the facts --limits, the bench and the
  // first-backup estimate use: every type the one accepts has facts, with the same architecture, and no more
  test('every accepted type has facts, every fact is of an accepted type, architectures match', async () => {
    const { INSTANCE_FAMILIES, INSTANCE_SIZES } = await import('../../constructs/variables.js');
    const { INSTANCE_TYPE_RE, instanceArchitecture } = await import('../../scripts/lib/deploy/tfvars.js');
    const accepted = Object.keys(INSTANCE_FAMILIES).flatMap((f) => INSTANCE_SIZES.map((s) => `${f}.${s}`));
    expect(accepted.every((t) => INSTANCE_TYPE_RE.test(t))).toBe(true);
    expect(Object.keys(INSTANCE_TYPES).sort()).toEqual([...accepted].sort());
    for (const t of accepted) expect([t, INSTANCE_TYPES[t].arch]).toEqual([t, instanceArchitecture(t)]);
    expect(INSTANCE_TYPE_RE.test('t2.nano')).toBe(false);
  });
});
