// Monthly cost estimate of the planned configuration: instance hours, data volume (and root volume) GiB-months,
// the public IPv4 address, and data transfer out. A price table in code, with its date and source; a region or
// instance type that is not in the table gives "estimate unavailable", never a wrong number.

/** Prices of one region, USD. */
export interface RegionPrices {
  /** On-demand Linux price per hour, by instance type. */
  instancePerHour: Readonly<Record<string, number>>;
  gp3PerGibMonth: number;
  /** Per provisioned IOPS-month above the gp3 baseline. */
  gp3PerIopsMonth: number;
  /** Per provisioned MB/s-month above the gp3 baseline. */
  gp3PerMBpsMonth: number;
}

export interface TransferTier {
  /** The tier ends at this total of GB in the month (Infinity for the last). */
  uptoGb: number;
  perGb: number;
}

export interface PriceTable {
  asOf: string;
  source: string;
  hoursPerMonth: number;
  publicIpv4PerHour: number;
  gp3BaselineIops: number;
  gp3BaselineThroughputMBps: number;
  transferFreeGb: number;
  transferTiers: ReadonlyArray<Readonly<TransferTier>>;
  regions: Readonly<Record<string, Readonly<RegionPrices>>>;
}

/** The planned configuration whose monthly cost is estimated. */
export interface CostConfig {
  region: string;
  instanceType: string;
  volumeGib: number;
  /** Default 8. */
  rootVolumeGib?: number;
  /** Provisioned data volume IOPS (default: the gp3 baseline). */
  iops?: number;
  /** Provisioned data volume throughput (default: the gp3 baseline). */
  throughputMBps?: number;
  /** Internet egress per month (default 0). */
  expectedTransferGb?: number;
}

export interface CostLine {
  item: string;
  detail: string;
  /** USD per month, rounded to cents. */
  monthly: number;
}

export type CostEstimate =
  | { available: true; region: string; lines: CostLine[]; total: number; asOf: string; source: string; notes: string[] }
  | { available: false; reason: string; asOf: string; source: string };

/** When and where the prices below were read. On-demand, Linux, USD, excluding tax. */
export const PRICES: Readonly<PriceTable> = Object.freeze({
  asOf: '2025-06',
  source:
    'AWS public price pages: aws.amazon.com/ec2/pricing/on-demand/ (Linux, shared tenancy), aws.amazon.com/ebs/pricing/ (gp3), '
    + 'aws.amazon.com/vpc/pricing/ (public IPv4), aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer (internet egress)',
  hoursPerMonth: 730,
  /** Public IPv4 address (an Elastic IP associated with a running instance counts the same), per hour, all regions. */
  publicIpv4PerHour: 0.005,
  /** gp3 baseline included in the GiB price. */
  gp3BaselineIops: 3000,
  gp3BaselineThroughputMBps: 125,
  /** Data transfer out to the internet: first 100 GB/month free (aggregated across AWS), then tiered, per GB. */
  transferFreeGb: 100,
  transferTiers: Object.freeze([
    { uptoGb: 10 * 1024, perGb: 0.09 },
    { uptoGb: 50 * 1024, perGb: 0.085 },
    { uptoGb: 150 * 1024, perGb: 0.07 },
    { uptoGb: Infinity, perGb: 0.05 },
  ]),
  regions: Object.freeze({
    'us-east-1': region({ 't2.nano': 0.0058, 't2.micro': 0.0116, 't3.nano': 0.0052, 't3.micro': 0.0104, 't3.small': 0.0208, 't3.medium': 0.0416, 't3a.nano': 0.0047, 't3a.micro': 0.0094, 't3a.small': 0.0188, 't3a.medium': 0.0376 }, 0.08, 0.005, 0.04),
    'us-east-2': region({ 't2.nano': 0.0058, 't2.micro': 0.0116, 't3.nano': 0.0052, 't3.micro': 0.0104, 't3.small': 0.0208, 't3.medium': 0.0416, 't3a.nano': 0.0047, 't3a.micro': 0.0094, 't3a.small': 0.0188, 't3a.medium': 0.0376 }, 0.08, 0.005, 0.04),
    'us-west-2': region({ 't2.nano': 0.0058, 't2.micro': 0.0116, 't3.nano': 0.0052, 't3.micro': 0.0104, 't3.small': 0.0208, 't3.medium': 0.0416, 't3a.nano': 0.0047, 't3a.micro': 0.0094, 't3a.small': 0.0188, 't3a.medium': 0.0376 }, 0.08, 0.005, 0.04),
    'us-west-1': region({ 't2.nano': 0.0069, 't2.micro': 0.0138, 't3.nano': 0.0062, 't3.micro': 0.0124, 't3.small': 0.0248, 't3.medium': 0.0496, 't3a.nano': 0.0056, 't3a.micro': 0.0112, 't3a.small': 0.0224, 't3a.medium': 0.0448 }, 0.096, 0.006, 0.048),
    'eu-central-1': region({ 't2.nano': 0.0067, 't2.micro': 0.0134, 't3.nano': 0.006, 't3.micro': 0.012, 't3.small': 0.024, 't3.medium': 0.048, 't3a.nano': 0.0054, 't3a.micro': 0.0108, 't3a.small': 0.0216, 't3a.medium': 0.0432 }, 0.0952, 0.006, 0.0476),
    'eu-west-1': region({ 't2.nano': 0.0063, 't2.micro': 0.0126, 't3.nano': 0.0057, 't3.micro': 0.0114, 't3.small': 0.0228, 't3.medium': 0.0456, 't3a.nano': 0.0051, 't3a.micro': 0.0102, 't3a.small': 0.0204, 't3a.medium': 0.0408 }, 0.088, 0.0055, 0.044),
  }),
});

function region(instancePerHour: Record<string, number>, gp3PerGibMonth: number, gp3PerIopsMonth: number, gp3PerMBpsMonth: number): Readonly<RegionPrices> {
  return Object.freeze({ instancePerHour: Object.freeze(instancePerHour), gp3PerGibMonth, gp3PerIopsMonth, gp3PerMBpsMonth });
}

/** Cost of `gb` GB of internet egress in one month: the first transferFreeGb free, the rest by tier (tiers count total GB). */
export function transferCost(gb: number, prices: PriceTable = PRICES): number {
  let cost = 0;
  let floor = 0;
  for (const tier of prices.transferTiers) {
    const from = Math.max(floor, prices.transferFreeGb);
    const inTier = Math.max(0, Math.min(gb, tier.uptoGb) - from);
    cost += inTier * tier.perGb;
    floor = tier.uptoGb;
    if (gb <= floor) break;
  }
  return cost;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

/** Estimates the monthly cost; `available: false` with the reason when the table lacks the region or type. */
export function estimateMonthlyCost(cfg: CostConfig, prices: PriceTable = PRICES): CostEstimate {
  const base = { asOf: prices.asOf, source: prices.source };
  const r = prices.regions[cfg.region];
  if (!r) {
    return { ...base, available: false, reason: `no prices for region ${cfg.region} in this tool's table (it has ${Object.keys(prices.regions).join(', ')}); see the AWS Pricing Calculator` };
  }
  const hourly = r.instancePerHour[cfg.instanceType];
  if (hourly === undefined) {
    return { ...base, available: false, reason: `no price for instance type ${cfg.instanceType} in ${cfg.region} in this tool's table (it has ${Object.keys(r.instancePerHour).join(', ')})` };
  }
  const h = prices.hoursPerMonth;
  const rootGib = cfg.rootVolumeGib ?? 8;
  const iopsExtra = Math.max(0, (cfg.iops ?? prices.gp3BaselineIops) - prices.gp3BaselineIops);
  const tputExtra = Math.max(0, (cfg.throughputMBps ?? prices.gp3BaselineThroughputMBps) - prices.gp3BaselineThroughputMBps);
  const transferGb = cfg.expectedTransferGb ?? 0;
  const lines: CostLine[] = [
    { item: 'instance', detail: `${cfg.instanceType}, ${h} h × $${hourly}/h`, monthly: hourly * h },
    { item: 'data volume', detail: `gp3 ${cfg.volumeGib} GiB × $${r.gp3PerGibMonth}/GiB-month`, monthly: cfg.volumeGib * r.gp3PerGibMonth },
    { item: 'root volume', detail: `gp3 ${rootGib} GiB × $${r.gp3PerGibMonth}/GiB-month`, monthly: rootGib * r.gp3PerGibMonth },
  ];
  if (iopsExtra) lines.push({ item: 'data volume IOPS', detail: `${iopsExtra} IOPS above ${prices.gp3BaselineIops} × $${r.gp3PerIopsMonth}`, monthly: iopsExtra * r.gp3PerIopsMonth });
  if (tputExtra) lines.push({ item: 'data volume throughput', detail: `${tputExtra} MB/s above ${prices.gp3BaselineThroughputMBps} × $${r.gp3PerMBpsMonth}`, monthly: tputExtra * r.gp3PerMBpsMonth });
  lines.push({ item: 'public IPv4 address', detail: `${h} h × $${prices.publicIpv4PerHour}/h`, monthly: prices.publicIpv4PerHour * h });
  lines.push({
    item: 'transfer out',
    detail: `${transferGb} GB/month (first ${prices.transferFreeGb} GB free across your AWS account, then from $${prices.transferTiers[0].perGb}/GB)`,
    monthly: transferCost(transferGb, prices),
  });
  const rounded = lines.map((l) => ({ ...l, monthly: round2(l.monthly) }));
  return {
    ...base,
    available: true,
    region: cfg.region,
    lines: rounded,
    total: round2(lines.reduce((s, l) => s + l.monthly, 0)),
    notes: [
      'backups travel INTO AWS, which is free; transfer out is what restores and verification reads cost',
      'on-demand prices excluding tax; check the AWS Pricing Calculator for your account (free tier, savings plans)',
    ],
  };
}

/** Text table of an estimate, for the setup output. */
export function formatEstimate(est: CostEstimate): string {
  if (!est.available) return `cost estimate unavailable: ${est.reason}\n(prices as of ${est.asOf})`;
  const w = Math.max(...est.lines.map((l) => l.item.length));
  const rows = est.lines.map((l) => `  ${l.item.padEnd(w)}  $${l.monthly.toFixed(2).padStart(7)}  ${l.detail}`);
  return [
    `Estimated monthly cost in ${est.region} (prices as of ${est.asOf}):`,
    ...rows,
    `  ${'total'.padEnd(w)}  $${est.total.toFixed(2).padStart(7)}  per month`,
    ...est.notes.map((n) => `  note: ${n}`),
  ].join('\n');
}
