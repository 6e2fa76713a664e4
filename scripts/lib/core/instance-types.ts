// The facts of the instance types the stack supports (burstable t3a/t3 on x86_64, t4g on arm64), in one table:
// vCPUs, memory, the CPU baseline per vCPU in standard credit mode, and the network baseline and burst.
// Used by the local target's --limits (CPU quota, memory limit, link rate), the bench's `limits` item (the rate
// a type's CPU baseline can receive at) and setup's first-backup estimate (both lanes).
//
// Where the figures come from:
//   - vCPUs, memory, network baseline/burst: EC2's DescribeInstanceTypes (VCpuInfo.DefaultVCpus,
//     MemoryInfo.SizeInMiB, NetworkInfo.NetworkCards[0].BaselineBandwidthInGbps / PeakBandwidthInGbps).
//     verifyInstanceTypes() compares this table with the live API when credentials exist
//     (`npx zx scripts/local-target.mjs instance-types --verify [--profile P]`; tested with a mocked SDK);
//   - the CPU baseline is NOT in that API. It is AWS's "CPU credits earned per hour" table of the EC2 User Guide
//     (Burstable performance instances > Key concepts: "Credit table"): one credit is one vCPU at 100 % for one
//     minute, so baseline % per vCPU = credits per hour / 60 / vCPUs (t3a.nano: 6 / 60 / 2 = 5 %).
// the SDK's client code loads with verifyInstanceTypes only (about 1.8 s): the table is read by --help paths too
import type { EC2Client, _InstanceType } from '@aws-sdk/client-ec2';
// the families and sizes the stack accepts, and its default type: the stack's variables table
import { INSTANCE_FAMILIES, INSTANCE_SIZES, VARIABLE_DEFAULTS } from '../../../constructs/variables.js';

export interface InstanceFacts {
  vcpus: number;
  memoryMiB: number;
  /** CPU credits earned per hour (EC2 User Guide's credit table). */
  creditsPerHour: number;
  /** Network baseline and burst (Gbit/s), DescribeInstanceTypes NetworkInfo. */
  networkBaselineGbps: number;
  networkBurstGbps: number;
  arch: 'x86_64' | 'arm64';
}

// the same for t3, t3a and t4g of each size (vCPUs, MiB, credits/h, baseline Gbit/s); burst is 5 Gbit/s
const BY_SIZE: Record<(typeof INSTANCE_SIZES)[number], [number, number, number, number]> = {
  nano: [2, 512, 6, 0.032],
  micro: [2, 1024, 12, 0.064],
  small: [2, 2048, 24, 0.128],
  medium: [2, 4096, 24, 0.256],
  large: [2, 8192, 36, 0.512],
  xlarge: [4, 16384, 96, 1.024],
  '2xlarge': [8, 32768, 192, 2.048],
};

export const INSTANCE_TYPES: Readonly<Record<string, Readonly<InstanceFacts>>> = Object.freeze(
  Object.fromEntries(
    Object.entries(INSTANCE_FAMILIES).flatMap(([family, arch]) =>
      INSTANCE_SIZES.map((size) => {
        const [vcpus, memoryMiB, creditsPerHour, networkBaselineGbps] = BY_SIZE[size];
        const facts: InstanceFacts = {
          vcpus,
          memoryMiB,
          creditsPerHour,
          networkBaselineGbps,
          networkBurstGbps: 5,
          arch,
        };
        return [`${family}.${size}`, Object.freeze(facts)];
      }),
    ),
  ),
);

/** The stack's default type. */
export const DEFAULT_INSTANCE_TYPE: string = VARIABLE_DEFAULTS.instance_type;

/** The facts of a type, or null when this table does not know it. */
export function instanceFacts(type: string): Readonly<InstanceFacts> | null {
  return Object.hasOwn(INSTANCE_TYPES, type) ? INSTANCE_TYPES[type] : null;
}

/** Baseline CPU per vCPU as a fraction (t3a.nano: 0.05). */
export const baselinePerVcpu = (f: InstanceFacts): number => f.creditsPerHour / 60 / f.vcpus;

/** The whole instance's sustained CPU at its baseline, in cores (t3a.nano: 2 × 5 % = 0.1 of one core). */
export const baselineCores = (f: InstanceFacts): number => f.creditsPerHour / 60;

/** The network baseline in MB/s (10^6 bytes; t3a.nano: 4). */
export const networkBaselineMBps = (f: InstanceFacts): number => (f.networkBaselineGbps * 1000) / 8;

/** Throws a plain Error naming the known types when `type` is not one of them (callers wrap it). */
export function requireInstanceFacts(type: string): Readonly<InstanceFacts> {
  const f = instanceFacts(type);
  if (!f) throw new Error(`unknown instance type ${type}; this tool knows ${Object.keys(INSTANCE_TYPES).join(', ')}`);
  return f;
}

/** One difference between this table and DescribeInstanceTypes. */
export interface FactMismatch {
  type: string;
  field: 'vcpus' | 'memoryMiB' | 'networkBaselineGbps' | 'networkBurstGbps' | 'arch' | 'missing';
  table: number | string | null;
  live: number | string | null;
}

/**
 * Compares the table with EC2's DescribeInstanceTypes (the network figures, vCPUs, memory, architecture).
 * The CPU credit figures are not in that API and are not checked. Empty list: the table agrees.
 */
export async function verifyInstanceTypes(
  ec2: Pick<EC2Client, 'send'>,
  types: string[] = Object.keys(INSTANCE_TYPES),
): Promise<FactMismatch[]> {
  const live = new Map<
    string,
    { vcpus: number | null; memoryMiB: number | null; base: number | null; burst: number | null; arch: string | null }
  >();
  const { DescribeInstanceTypesCommand } = await import('@aws-sdk/client-ec2');
  // the API takes up to 100 names per call; this table has 21
  let token: string | undefined;
  do {
    const r = await ec2.send(
      new DescribeInstanceTypesCommand({ InstanceTypes: types as _InstanceType[], NextToken: token }),
    );
    for (const it of r.InstanceTypes ?? []) {
      const card = it.NetworkInfo?.NetworkCards?.[0];
      const arch = it.ProcessorInfo?.SupportedArchitectures?.find((a) => a === 'x86_64' || a === 'arm64') ?? null;
      live.set(String(it.InstanceType), {
        vcpus: it.VCpuInfo?.DefaultVCpus ?? null,
        memoryMiB: it.MemoryInfo?.SizeInMiB ?? null,
        base: card?.BaselineBandwidthInGbps ?? null,
        burst: card?.PeakBandwidthInGbps ?? null,
        arch,
      });
    }
    token = r.NextToken;
  } while (token);
  const out: FactMismatch[] = [];
  for (const type of types) {
    const t = INSTANCE_TYPES[type];
    const l = live.get(type);
    if (!l) {
      out.push({ type, field: 'missing', table: type, live: null });
      continue;
    }
    const cmp = (field: FactMismatch['field'], a: number | string, b: number | string | null) => {
      if (b !== null && a !== b) out.push({ type, field, table: a, live: b });
    };
    cmp('vcpus', t.vcpus, l.vcpus);
    cmp('memoryMiB', t.memoryMiB, l.memoryMiB);
    cmp('networkBaselineGbps', t.networkBaselineGbps, l.base);
    cmp('networkBurstGbps', t.networkBurstGbps, l.burst);
    cmp('arch', t.arch, l.arch);
  }
  return out;
}
