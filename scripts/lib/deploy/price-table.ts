// The offline price table (cost.ts, source 2: list prices as remembered, not checked against AWS on a date), in a
// module of its own that imports no AWS SDK: the laptop's first-backup estimate (deploy/first-backup.ts, loaded by
// every backup.mjs verb) reads the instance prices from it, and loading the SDK's clients with cost.ts cost each
// backup.mjs call about a CPU second.
import { INSTANCE_SIZES } from '../../../constructs/variables.js';

export interface TransferTier {
  /** The tier ends at this total of GB in the month (Infinity for the last). */
  uptoGb: number;
  perGb: number;
}

export interface TableRegion {
  /** On-demand Linux, shared tenancy, per hour. */
  instancePerHour: Readonly<Record<string, number>>;
  gp3PerGbMonth: number;
  snapshotPerGbMonth: number;
}

export interface OfflineTable {
  /** Where the numbers came from and when: printed with every estimate that uses them. */
  provenance: string;
  publicIpv4PerHour: number;
  alarmPerMonth: number;
  /** CloudWatch's free tier: alarms per account per month at no charge. */
  alarmFreeCount: number;
  emailPerNotification: number;
  emailFreePerMonth: number;
  transferFreeGb: number;
  transferTiers: ReadonlyArray<Readonly<TransferTier>>;
  regions: Readonly<Record<string, Readonly<TableRegion>>>;
}

/** Prices of every supported t3a, t3 and t4g size from its nano price (each size doubles it, as AWS prices T types:
 * the first-backup fast lane names sizes up to 2xlarge). */
const tFamilies = (t3a: number, t3: number, t4g: number): Record<string, number> =>
  Object.fromEntries(
    Object.entries({ t3a, t3, t4g }).flatMap(([family, nano]) =>
      INSTANCE_SIZES.map((size, i) => [`${family}.${size}`, Math.round(nano * 2 ** i * 1e5) / 1e5]),
    ),
  );
const tableRegion = (
  instancePerHour: Record<string, number>,
  gp3PerGbMonth: number,
  snapshotPerGbMonth: number,
): Readonly<TableRegion> =>
  Object.freeze({ instancePerHour: Object.freeze(instancePerHour), gp3PerGbMonth, snapshotPerGbMonth });

/** On-demand, Linux, USD, before tax. NOT checked against AWS on a date: see provenance. */
export const OFFLINE_TABLE: Readonly<OfflineTable> = Object.freeze({
  provenance:
    'offline table: list prices as remembered by the authors (written into the code in November 2026), not checked against AWS on a date',
  publicIpv4PerHour: 0.005,
  alarmPerMonth: 0.1,
  alarmFreeCount: 10,
  emailPerNotification: 0.00002,
  emailFreePerMonth: 1000,
  /** Data transfer out to the internet: first 100 GB/month free (aggregated across AWS), then tiered, per GB. */
  transferFreeGb: 100,
  transferTiers: Object.freeze([
    { uptoGb: 10 * 1024, perGb: 0.09 },
    { uptoGb: 50 * 1024, perGb: 0.085 },
    { uptoGb: 150 * 1024, perGb: 0.07 },
    { uptoGb: Infinity, perGb: 0.05 },
  ]),
  regions: Object.freeze({
    'us-east-1': tableRegion(tFamilies(0.0047, 0.0052, 0.0042), 0.08, 0.05),
    'us-east-2': tableRegion(tFamilies(0.0047, 0.0052, 0.0042), 0.08, 0.05),
    'us-west-2': tableRegion(tFamilies(0.0047, 0.0052, 0.0042), 0.08, 0.05),
    'us-west-1': tableRegion(tFamilies(0.0056, 0.0062, 0.005), 0.096, 0.055),
    'eu-central-1': tableRegion(tFamilies(0.0054, 0.006, 0.0048), 0.0952, 0.054),
    'eu-west-1': tableRegion(tFamilies(0.0051, 0.0057, 0.0046), 0.088, 0.05),
  }),
});
