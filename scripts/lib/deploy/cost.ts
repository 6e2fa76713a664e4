// Monthly cost estimate of what the plan creates: instance hours, the data and root volumes (gp3 GB-months), the
// public IPv4 address (the Elastic IP), the data volume's snapshots and the recycle bin's deleted ones (EBS
// snapshot GB-months), the CloudWatch alarms, the SNS alert e-mails, and data transfer out.
//
// Where the unit prices come from, in this order:
// 1. The AWS Price List API (pricing:GetProducts) for the stack's region, when the caller has AWS credentials
//    (fetchApiPrices: the only function here that talks to AWS; the client is aws.ts makePricingClient).
// 2. OFFLINE_TABLE (price-table.ts), for every price the API did not give (no permission, throttled, no match), with the
//    reason. Its numbers are list prices as remembered by the tool's authors, written into the code in
//    November 2026 and not checked against AWS on a date: an estimate, and labelled so wherever it is printed.
// A price neither source has gives "estimate unavailable" and says which, never a guessed number.
// Everything else is pure: resolvePrices merges the two sources, estimateMonthlyCost turns prices and the plan's
// inputs into lines, formatEstimate prints them.
import { GetProductsCommand, type Filter, type PricingClient } from '@aws-sdk/client-pricing';
import { awsError } from './aws.js';
import { OFFLINE_TABLE, type OfflineTable } from './price-table.js';

// ---------------------------------------------------------------------------------------------------------
// Types

/** The priced parts of the plan. */
export type PriceKey = 'instance' | 'gp3Storage' | 'publicIpv4' | 'snapshotStorage' | 'alarm' | 'email';
export const PRICE_KEYS: readonly PriceKey[] = Object.freeze([
  'instance',
  'gp3Storage',
  'publicIpv4',
  'snapshotStorage',
  'alarm',
  'email',
]);

/** One unit price, USD. */
export interface UnitPrice {
  usd: number;
  /** The unit as the Price List API names it: Hrs, GB-Mo, Alarms, Notifications. */
  unit: string;
  /** Units per month that cost nothing (a 0-priced first tier, e.g. SNS's first 1,000 e-mails). */
  freeUpTo?: number;
}

/** A unit price and where it came from. `why`: for a table price, why the API's was not used (absent: no API asked). */
export interface SourcedPrice extends UnitPrice {
  origin: 'api' | 'table';
  why?: string;
}

/** What fetchApiPrices got from the Price List API. */
export interface ApiPrices {
  region: string;
  /** ISO time of the answer. */
  fetchedAt: string;
  prices: Partial<Record<PriceKey, UnitPrice>>;
  /** Why each price the API did not give is missing. */
  missing: Partial<Record<PriceKey, string>>;
  /** The API failed (no permission, no credentials, throttled): the reason, said once. */
  error?: string;
}

/** The prices an estimate uses: each part from the API or the table, and a label for the whole. */
export interface PriceBook {
  region: string;
  prices: Partial<Record<PriceKey, SourcedPrice>>;
  /** Parts neither source has, with why. */
  unavailable: Partial<Record<PriceKey, string>>;
  /** e.g. "AWS Price List API, us-west-1, fetched 2026-11-30 04:41 UTC". */
  source: string;
  /** When the API was asked and (some) prices came from the table: one line saying why. */
  fallback?: string;
}

/** What the stack keeps of the data volume: DLM snapshots and the recycle bin. */
export interface SnapshotPlan {
  /** Hours between snapshots (stack variable snapshot_interval_hours). */
  intervalHours: number;
  /** Snapshots kept (snapshot_retain_count; 0: no snapshots). */
  retainCount: number;
  /** Days a deleted snapshot stays in the recycle bin (recycle_bin_days; 0: no rule). */
  recycleBinDays: number;
  /** The assumption: data on the volume, GiB (default: the whole volume, the most the snapshots can hold of it). */
  usedGib?: number;
  /** The assumption: data changed per day, % of the used data (default DEFAULT_DAILY_CHANGE_PERCENT). */
  dailyChangePercent?: number;
}

/** The planned configuration whose monthly cost is estimated. */
export interface CostConfig {
  region: string;
  instanceType: string;
  volumeGib: number;
  /** Default ROOT_VOLUME_GIB. */
  rootVolumeGib?: number;
  /** Internet egress per month (default 0). */
  expectedTransferGb?: number;
  /** Default: the stack's defaults (DEFAULT_SNAPSHOT_PLAN). */
  snapshots?: SnapshotPlan;
  /** Standard-resolution CloudWatch alarms (default 1: the missed-backup alarm). */
  alarms?: number;
  /** Whether alert_email is set (an SNS e-mail subscription). */
  alertEmail?: boolean;
}

export interface CostLine {
  item: string;
  detail: string;
  /** USD per month, rounded to cents. */
  monthly: number;
  /** Where the unit price came from: the Price List API or the offline table (transfer out: always the table). */
  origin: 'api' | 'table';
}

export type CostEstimate =
  | {
      available: true;
      region: string;
      lines: CostLine[];
      total: number;
      source: string;
      fallback?: string;
      assumptions: string[];
      notes: string[];
    }
  | { available: false; region: string; reason: string; source: string; fallback?: string };

// ---------------------------------------------------------------------------------------------------------
// The offline table

export const HOURS_PER_MONTH = 730;
/** The stack's root volume (constructs/backup-host.ts ROOT_VOLUME_GIB). */
export const ROOT_VOLUME_GIB = 8;
/** What gp3 includes in its GB-month price; the stack provisions no more. */
export const GP3_BASELINE = Object.freeze({ iops: 3000, throughputMBps: 125 });
/** The snapshot assumption's default daily change, % of the used data. */
export const DEFAULT_DAILY_CHANGE_PERCENT = 2;
/** The stack's defaults (snapshot_interval_hours 24, snapshot_retain_count 7, recycle_bin_days 7). */
export const DEFAULT_SNAPSHOT_PLAN: Readonly<SnapshotPlan> = Object.freeze({
  intervalHours: 24,
  retainCount: 7,
  recycleBinDays: 7,
});

export { OFFLINE_TABLE, type OfflineTable, type TableRegion, type TransferTier } from './price-table.js';

/** The table's price of one part, or why it has none. */
export function tablePrice(
  key: PriceKey,
  region: string,
  instanceType: string,
  table: OfflineTable = OFFLINE_TABLE,
): UnitPrice | { missing: string } {
  switch (key) {
    case 'publicIpv4':
      return { usd: table.publicIpv4PerHour, unit: 'Hrs' };
    case 'alarm':
      return { usd: table.alarmPerMonth, unit: 'Alarms' };
    case 'email':
      return { usd: table.emailPerNotification, unit: 'Notifications', freeUpTo: table.emailFreePerMonth };
    default:
      break;
  }
  const r = table.regions[region];
  if (!r)
    return {
      missing: `the offline table has no prices for region ${region} (it has ${Object.keys(table.regions).join(', ')})`,
    };
  if (key === 'gp3Storage') return { usd: r.gp3PerGbMonth, unit: 'GB-Mo' };
  if (key === 'snapshotStorage') return { usd: r.snapshotPerGbMonth, unit: 'GB-Mo' };
  const hourly = r.instancePerHour[instanceType];
  if (hourly === undefined)
    return {
      missing: `the offline table has no price for ${instanceType} in ${region} (it has ${Object.keys(r.instancePerHour).join(', ')})`,
    };
  return { usd: hourly, unit: 'Hrs' };
}

// ---------------------------------------------------------------------------------------------------------
// The Price List API

/** One GetProducts query: TERM_MATCH filters, then the product whose usagetype matches (it carries a region prefix). */
export interface ProductQuery {
  key: PriceKey;
  what: string;
  serviceCode: string;
  filters: Readonly<Record<string, string>>;
  usagetype: RegExp;
  /** Units the price may be quoted in (anything else is refused, not converted by guess). */
  units: readonly string[];
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A usagetype with or without its region prefix: "BoxUsage:t3a.nano" (us-east-1), "USW1-BoxUsage:t3a.nano". */
const usage = (name: string): RegExp => new RegExp(`^([A-Z0-9]+-)?${escapeRe(name)}$`);

/** The queries for the parts of the plan (exactly what the stack creates in `region`). */
export function productQueries(
  region: string,
  instanceType: string,
  keys: readonly PriceKey[] = PRICE_KEYS,
): ProductQuery[] {
  const all: Record<PriceKey, ProductQuery> = {
    instance: {
      key: 'instance',
      what: `${instanceType} on-demand Linux`,
      serviceCode: 'AmazonEC2',
      filters: {
        regionCode: region,
        instanceType,
        operatingSystem: 'Linux',
        tenancy: 'Shared',
        preInstalledSw: 'NA',
        capacitystatus: 'Used',
        marketoption: 'OnDemand',
      },
      usagetype: usage(`BoxUsage:${instanceType}`),
      units: ['Hrs'],
    },
    gp3Storage: {
      key: 'gp3Storage',
      what: 'gp3 storage',
      serviceCode: 'AmazonEC2',
      filters: { regionCode: region, productFamily: 'Storage', volumeApiName: 'gp3' },
      usagetype: usage('EBS:VolumeUsage.gp3'),
      units: ['GB-Mo'],
    },
    publicIpv4: {
      key: 'publicIpv4',
      what: 'in-use public IPv4 address',
      serviceCode: 'AmazonVPC',
      filters: { regionCode: region, group: 'VPCPublicIPv4Address' },
      usagetype: usage('PublicIPv4:InUseAddress'),
      units: ['Hrs'],
    },
    snapshotStorage: {
      key: 'snapshotStorage',
      what: 'EBS snapshot storage',
      serviceCode: 'AmazonEC2',
      filters: { regionCode: region, productFamily: 'Storage Snapshot' },
      usagetype: usage('EBS:SnapshotUsage'),
      units: ['GB-Mo'],
    },
    alarm: {
      key: 'alarm',
      what: 'CloudWatch standard alarm',
      serviceCode: 'AmazonCloudWatch',
      filters: { regionCode: region, productFamily: 'Alarm' },
      usagetype: usage('CW:AlarmMonitorUsage'),
      units: ['Alarms'],
    },
    email: {
      key: 'email',
      what: 'SNS e-mail notification',
      serviceCode: 'AmazonSNS',
      filters: { regionCode: region, productFamily: 'Message Delivery' },
      usagetype: usage('DeliveryAttempts-SMTP'),
      units: ['Notifications'],
    },
  };
  return keys.map((k) => all[k]);
}

/** One price dimension of an OnDemand term. */
interface PriceDimension {
  unit: string;
  usd: number;
  beginRange: number;
  endRange: number;
}

/** One PriceList entry, parsed: its attributes and its OnDemand price dimensions. */
export interface ParsedProduct {
  sku: string;
  productFamily: string;
  attributes: Record<string, string>;
  dimensions: PriceDimension[];
}

const range = (s: unknown, dflt: number): number => (s === undefined || s === 'Inf' ? dflt : Number(s));

/**
 * Parses one PriceList entry (the API returns each product as a JSON string: product.attributes and
 * terms.OnDemand.<offer>.priceDimensions.<rate>.pricePerUnit.USD). null for an entry that is not that shape.
 */
export function parsePriceListItem(item: unknown): ParsedProduct | null {
  let doc: unknown = item;
  try {
    if (typeof item === 'string') doc = JSON.parse(item);
    else if (item && typeof item === 'object' && !('product' in item)) doc = JSON.parse(String(item)); // the SDK's lazy JSON string
  } catch {
    return null;
  }
  const d = doc as {
    product?: { sku?: string; productFamily?: string; attributes?: Record<string, string> };
    terms?: {
      OnDemand?: Record<
        string,
        {
          priceDimensions?: Record<
            string,
            { unit?: string; beginRange?: string; endRange?: string; pricePerUnit?: { USD?: string } }
          >;
        }
      >;
    };
  };
  if (!d?.product?.attributes) return null;
  const dimensions: PriceDimension[] = [];
  for (const offer of Object.values(d.terms?.OnDemand ?? {})) {
    for (const dim of Object.values(offer.priceDimensions ?? {})) {
      const usd = Number(dim.pricePerUnit?.USD);
      if (!Number.isFinite(usd) || !dim.unit) continue;
      dimensions.push({
        unit: dim.unit,
        usd,
        beginRange: range(dim.beginRange, 0),
        endRange: range(dim.endRange, Infinity),
      });
    }
  }
  return {
    sku: d.product.sku ?? '',
    productFamily: d.product.productFamily ?? '',
    attributes: d.product.attributes,
    dimensions: dimensions.sort((a, b) => a.beginRange - b.beginRange),
  };
}

/** The unit price of a product: its first paid tier, and the free allowance of a 0-priced first tier. */
export function unitPriceOf(p: ParsedProduct): UnitPrice | null {
  if (!p.dimensions.length) return null;
  const first = p.dimensions[0];
  const paid = p.dimensions.find((d) => d.usd > 0);
  const freeUpTo =
    first.usd === 0 && first.beginRange === 0 && Number.isFinite(first.endRange) ? first.endRange : undefined;
  return { usd: paid?.usd ?? 0, unit: (paid ?? first).unit, ...(freeUpTo !== undefined ? { freeUpTo } : {}) };
}

/** Picks the price of `q` from the products GetProducts returned, or says why there is none. */
export function pickPrice(q: ProductQuery, products: ParsedProduct[]): UnitPrice | { missing: string } {
  const matching = products.filter((p) => q.usagetype.test(p.attributes.usagetype ?? ''));
  if (!matching.length) {
    return {
      missing: products.length
        ? `no ${q.what} product in the answer (${products.length} other product${products.length === 1 ? '' : 's'})`
        : `the API has no ${q.what} product for ${q.filters.regionCode}`,
    };
  }
  const prices = matching.map(unitPriceOf).filter((x): x is UnitPrice => x !== null);
  if (!prices.length) return { missing: `the ${q.what} product has no on-demand price` };
  const wrongUnit = prices.find((x) => !q.units.includes(x.unit));
  if (wrongUnit) return { missing: `the ${q.what} price is per ${wrongUnit.unit}, expected ${q.units.join(' or ')}` };
  if (new Set(prices.map((x) => x.usd)).size > 1) {
    return {
      missing: `${matching.length} ${q.what} products with different prices (${prices.map((x) => x.usd).join(', ')})`,
    };
  }
  return prices[0];
}

/** GetProducts pages read per query at most (the stack's queries match a few products each). */
export const MAX_PAGES = 5;

/** Why the API failed, in one line: what, the likely cause, what to do (aws.ts's wording), never a stack trace. */
export function apiFailureReason(err: unknown, { profile }: { profile?: string } = {}): string {
  const name = String((err as { name?: unknown } | null)?.name ?? '');
  if (/Throttl|TooManyRequests/.test(name)) {
    return `the Price List API throttled the requests (${name}: ${(err as Error).message}); to use live prices: re-run setup in a minute`;
  }
  const e = awsError(err, 'pricing:GetProducts', { profile });
  return `${e.what}${e.likelyCause ? ` (${e.likelyCause})` : ''}${e.next ? `; to use live prices: ${e.next}` : ''}`;
}

/**
 * Asks the Price List API for the region's price of each part. Never throws: a failed call (no credentials,
 * no permission, throttled after the SDK's retries) ends the fetching and is returned as `error`; a query that
 * matches nothing is returned in `missing`.
 */
export async function fetchApiPrices(
  client: PricingClient,
  {
    region,
    instanceType,
    keys = PRICE_KEYS,
    profile,
  }: { region: string; instanceType: string; keys?: readonly PriceKey[]; profile?: string },
  { now = () => new Date() }: { now?: () => Date } = {},
): Promise<ApiPrices> {
  const out: ApiPrices = { region, fetchedAt: now().toISOString(), prices: {}, missing: {} };
  for (const q of productQueries(region, instanceType, keys)) {
    if (out.error) {
      out.missing[q.key] = 'the API failed before this query';
      continue;
    }
    const Filters: Filter[] = Object.entries(q.filters).map(([Field, Value]) => ({ Type: 'TERM_MATCH', Field, Value }));
    const products: ParsedProduct[] = [];
    try {
      let NextToken: string | undefined;
      for (let page = 0; page < MAX_PAGES; page += 1) {
        const r = await client.send(
          new GetProductsCommand({
            ServiceCode: q.serviceCode,
            Filters,
            FormatVersion: 'aws_v1',
            MaxResults: 100,
            NextToken,
          }),
        );
        for (const item of r.PriceList ?? []) {
          const p = parsePriceListItem(item);
          if (p) products.push(p);
        }
        NextToken = r.NextToken;
        if (!NextToken) break;
      }
    } catch (err) {
      out.error = apiFailureReason(err, { profile });
      out.missing[q.key] = out.error;
      continue;
    }
    const price = pickPrice(q, products);
    if ('missing' in price) out.missing[q.key] = price.missing;
    else out.prices[q.key] = price;
  }
  return out;
}

const utcMinute = (iso: string): string => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;

/**
 * Each part's price from the API when it gave one, else from the table (with why), else unavailable.
 * `api` null: the API was not asked (no credentials): every price from the table, no fallback line.
 */
export function resolvePrices(
  api: ApiPrices | null,
  { region, instanceType }: { region: string; instanceType: string },
  table: OfflineTable = OFFLINE_TABLE,
  keys: readonly PriceKey[] = PRICE_KEYS,
): PriceBook {
  const prices: PriceBook['prices'] = {};
  const unavailable: PriceBook['unavailable'] = {};
  const fromTable: PriceKey[] = [];
  for (const key of keys) {
    const got = api?.prices[key];
    if (got) {
      prices[key] = { ...got, origin: 'api' };
      continue;
    }
    const why = api ? (api.missing[key] ?? 'not asked') : undefined;
    const t = tablePrice(key, region, instanceType, table);
    if ('missing' in t) {
      unavailable[key] = why ? `${why}; ${t.missing}` : t.missing;
    } else {
      prices[key] = { ...t, origin: 'table', ...(why ? { why } : {}) };
    }
    if (api) fromTable.push(key);
  }
  if (!api) return { region, prices, unavailable, source: table.provenance };
  const used = keys.filter((k) => prices[k]?.origin === 'api');
  const source = used.length
    ? `AWS Price List API, ${region}, fetched ${utcMinute(api.fetchedAt)}${fromTable.length ? `; ${fromTable.map((k) => LABEL[k]).join(', ')} from the ${table.provenance}` : ''}`
    : table.provenance;
  const fallback = api.error
    ? `the AWS Price List API was not used: ${api.error}; the figures below are from the ${table.provenance}`
    : fromTable.length
      ? `the AWS Price List API gave no price for ${fromTable.map((k) => `${LABEL[k]} (${api.missing[k]})`).join(', ')}: ${used.length ? `${fromTable.length === 1 ? 'that price is' : 'those prices are'} from the offline table, marked [table]` : 'the figures are from the offline table'}`
      : undefined;
  return { region, prices, unavailable, source, ...(fallback ? { fallback } : {}) };
}

// ---------------------------------------------------------------------------------------------------------
// The estimate (pure)

/** Cost of `gb` GB of internet egress in one month: the first transferFreeGb free, the rest by tier (tiers count total GB). */
export function transferCost(gb: number, table: OfflineTable = OFFLINE_TABLE): number {
  let cost = 0;
  let floor = 0;
  for (const tier of table.transferTiers) {
    const from = Math.max(floor, table.transferFreeGb);
    const inTier = Math.max(0, Math.min(gb, tier.uptoGb) - from);
    cost += inTier * tier.perGb;
    floor = tier.uptoGb;
    if (gb <= floor) break;
  }
  return cost;
}

/** The snapshot storage the plan keeps, GB-months, and what the figure assumes. */
export function snapshotGb(
  plan: SnapshotPlan,
  volumeGib: number,
): { snapshotsGb: number; recycleBinGb: number; assumption: string } {
  const used = plan.usedGib ?? volumeGib;
  const rate = (plan.dailyChangePercent ?? DEFAULT_DAILY_CHANGE_PERCENT) / 100;
  if (plan.retainCount <= 0)
    return { snapshotsGb: 0, recycleBinGb: 0, assumption: 'no snapshots (snapshot_retain_count = 0)' };
  const daysKept = ((plan.retainCount - 1) * plan.intervalHours) / 24;
  const binDays = Math.max(0, plan.recycleBinDays);
  const round1 = (x: number) => Math.round(x * 10) / 10;
  return {
    snapshotsGb: used + used * rate * daysKept,
    recycleBinGb: used * rate * binDays,
    assumption:
      `snapshots are incremental: the first holds the used data, ${used} GiB (${plan.usedGib === undefined ? 'assumed: the whole volume' : 'given'}), ` +
      `each later one the blocks changed since, assumed ${round1(rate * 100)} % of the used data per day; ` +
      `${plan.retainCount} kept every ${plan.intervalHours} h span ${round1(daysKept)} days of changes` +
      (binDays
        ? `, and the recycle bin keeps each deleted one ${binDays} more days (its changed blocks, billed as snapshot storage)`
        : ''),
  };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const LABEL: Record<PriceKey, string> = {
  instance: 'instance',
  gp3Storage: 'gp3 storage',
  publicIpv4: 'public IPv4 address',
  snapshotStorage: 'snapshot storage',
  alarm: 'CloudWatch alarm',
  email: 'SNS e-mail',
};

/** The parts a configuration needs prices for. */
export function neededKeys(cfg: CostConfig): PriceKey[] {
  const snaps = cfg.snapshots ?? DEFAULT_SNAPSHOT_PLAN;
  return PRICE_KEYS.filter((k) =>
    k === 'snapshotStorage'
      ? snaps.retainCount > 0
      : k === 'alarm'
        ? (cfg.alarms ?? 1) > 0
        : k === 'email'
          ? !!cfg.alertEmail
          : true,
  );
}

/** Estimates the monthly cost from `book` (default: the offline table); unavailable, with why, when a price is missing. */
export function estimateMonthlyCost(cfg: CostConfig, book: PriceBook = resolvePrices(null, cfg)): CostEstimate {
  const head = { region: cfg.region, source: book.source, ...(book.fallback ? { fallback: book.fallback } : {}) };
  const keys = neededKeys(cfg);
  const gaps = keys.filter((k) => !book.prices[k]);
  if (gaps.length) {
    return {
      ...head,
      available: false,
      reason: gaps.map((k) => `${LABEL[k]}: ${book.unavailable[k] ?? 'no price'}`).join('; '),
    };
  }
  const p = book.prices as Record<PriceKey, SourcedPrice>;
  const h = HOURS_PER_MONTH;
  const rootGib = cfg.rootVolumeGib ?? ROOT_VOLUME_GIB;
  const transferGb = cfg.expectedTransferGb ?? 0;
  const snaps = cfg.snapshots ?? DEFAULT_SNAPSHOT_PLAN;
  const alarms = cfg.alarms ?? 1;
  // with some prices from the API, the lines priced from the table say so
  const mixed = keys.some((k) => p[k].origin === 'api');
  const tableMark = mixed ? ' [table]' : '';
  const mark = (k: PriceKey) => (p[k].origin === 'table' ? tableMark : '');
  const lines: CostLine[] = [
    {
      item: 'instance',
      detail: `${cfg.instanceType}, ${h} h × $${p.instance.usd}/h${mark('instance')}`,
      monthly: p.instance.usd * h,
      origin: p.instance.origin,
    },
    {
      item: 'data volume',
      detail: `gp3 ${cfg.volumeGib} GiB × $${p.gp3Storage.usd}/GB-month (${GP3_BASELINE.iops} IOPS, ${GP3_BASELINE.throughputMBps} MB/s included)${mark('gp3Storage')}`,
      monthly: cfg.volumeGib * p.gp3Storage.usd,
      origin: p.gp3Storage.origin,
    },
    {
      item: 'root volume',
      detail: `gp3 ${rootGib} GiB × $${p.gp3Storage.usd}/GB-month${mark('gp3Storage')}`,
      monthly: rootGib * p.gp3Storage.usd,
      origin: p.gp3Storage.origin,
    },
    {
      item: 'public IPv4 address',
      detail: `the Elastic IP, ${h} h × $${p.publicIpv4.usd}/h${mark('publicIpv4')}`,
      monthly: p.publicIpv4.usd * h,
      origin: p.publicIpv4.origin,
    },
  ];
  const assumptions: string[] = [];
  if (snaps.retainCount > 0) {
    const s = snapshotGb(snaps, cfg.volumeGib);
    const price = p.snapshotStorage.usd;
    lines.push({
      item: 'snapshots',
      detail: `≈ ${Math.round(s.snapshotsGb)} GB × $${price}/GB-month (${snaps.retainCount} kept, every ${snaps.intervalHours} h)${mark('snapshotStorage')}`,
      monthly: s.snapshotsGb * price,
      origin: p.snapshotStorage.origin,
    });
    if (snaps.recycleBinDays > 0) {
      lines.push({
        item: 'recycle bin',
        detail: `≈ ${Math.round(s.recycleBinGb)} GB × $${price}/GB-month (deleted snapshots kept ${snaps.recycleBinDays} days)${mark('snapshotStorage')}`,
        monthly: s.recycleBinGb * price,
        origin: p.snapshotStorage.origin,
      });
    }
    assumptions.push(s.assumption);
  } else {
    assumptions.push('no snapshots (snapshot_retain_count = 0): nothing outside the volume survives its loss');
  }
  if (alarms > 0) {
    lines.push({
      item: 'CloudWatch alarms',
      detail: `${alarms} standard alarm${alarms === 1 ? '' : 's'} × $${p.alarm.usd.toFixed(2)}/alarm-month${mark('alarm')} (the first ${OFFLINE_TABLE.alarmFreeCount} per account are free: then $0)`,
      monthly: alarms * p.alarm.usd,
      origin: p.alarm.origin,
    });
  }
  if (cfg.alertEmail) {
    const free = p.email.freeUpTo ?? 0;
    lines.push({
      item: 'alert e-mail (SNS)',
      detail: `a few a month, within the ${free} free e-mails; then $${p.email.usd} each${mark('email')}`,
      monthly: 0,
      origin: p.email.origin,
    });
  }
  lines.push({
    item: 'transfer out',
    detail: `${transferGb} GB/month (first ${OFFLINE_TABLE.transferFreeGb} GB free across your AWS account, then from $${OFFLINE_TABLE.transferTiers[0].perGb}/GB)${tableMark}`,
    monthly: transferCost(transferGb),
    origin: 'table',
  });
  const rounded = lines.map((l) => ({ ...l, monthly: round2(l.monthly) }));
  return {
    ...head,
    available: true,
    lines: rounded,
    total: round2(lines.reduce((s, l) => s + l.monthly, 0)),
    assumptions,
    notes: [
      'backups travel INTO AWS, which is free; transfer out is what restores and verification reads cost',
      'DLM policies, the recycle-bin rule, the IAM role and the SNS topic cost nothing themselves',
      'on-demand list prices before tax; your bill may differ (free tier, savings plans, credits)',
    ],
  };
}

/** Text of an estimate, for setup's output and the README. */
export function formatEstimate(est: CostEstimate): string {
  const head = est.fallback ? [`note: ${est.fallback}`] : [];
  if (!est.available)
    return [...head, `cost estimate unavailable: ${est.reason}`, `(prices: ${est.source})`].join('\n');
  const w = Math.max(...est.lines.map((l) => l.item.length));
  const rows = est.lines.map((l) => `  ${l.item.padEnd(w)}  $${l.monthly.toFixed(2).padStart(7)}  ${l.detail}`);
  return [
    ...head,
    `Estimated monthly cost in ${est.region} (prices: ${est.source}):`,
    ...rows,
    `  ${'total'.padEnd(w)}  $${est.total.toFixed(2).padStart(7)}  per month`,
    ...est.assumptions.map((a) => `  assumes: ${a}`),
    ...est.notes.map((n) => `  note: ${n}`),
  ].join('\n');
}

/**
 * The estimate with the best prices available: the Price List API through `client` (null: not asked), the
 * table for the rest. Never throws.
 */
export async function estimateWithPrices(
  cfg: CostConfig,
  client: PricingClient | null,
  opts: { profile?: string; now?: () => Date } = {},
): Promise<CostEstimate> {
  const keys = neededKeys(cfg);
  const api = client
    ? await fetchApiPrices(
        client,
        { region: cfg.region, instanceType: cfg.instanceType, keys, profile: opts.profile },
        opts,
      )
    : null;
  return estimateMonthlyCost(cfg, resolvePrices(api, cfg, OFFLINE_TABLE, keys));
}

// ---------------------------------------------------------------------------------------------------------
// From the stack's inputs

/** The resource types whose presence in the plan decides a cost line. */
export const PRICED_RESOURCE_TYPES = Object.freeze({
  snapshots: 'aws_dlm_lifecycle_policy',
  recycleBin: 'aws_rbin_rule',
  alarm: 'aws_cloudwatch_metric_alarm',
  emailSubscription: 'aws_sns_topic_subscription',
});

const num = (v: unknown, dflt: number): number =>
  typeof v === 'number' && Number.isFinite(v)
    ? v
    : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))
      ? Number(v)
      : dflt;

/**
 * The cost configuration of the validated tfvars values (defaults as the stack's) and, when setup has it, the
 * plan's resource counts: then a line is priced only when the plan creates its resource (snapshots: a DLM
 * policy; recycle bin: a rule; alarms: as many as the plan has; e-mail: a subscription).
 */
export function costConfigFromTfvars(
  values: Readonly<Record<string, unknown>>,
  {
    resourceCounts,
    expectedTransferGb,
    usedGib,
    dailyChangePercent,
  }: {
    resourceCounts?: Readonly<Record<string, number>>;
    expectedTransferGb?: number;
    usedGib?: number;
    dailyChangePercent?: number;
  } = {},
): CostConfig {
  const has = (type: string, fallback: boolean): boolean =>
    resourceCounts ? (resourceCounts[type] ?? 0) > 0 : fallback;
  const retainCount = num(values.snapshot_retain_count, DEFAULT_SNAPSHOT_PLAN.retainCount);
  const recycleBinDays = num(values.recycle_bin_days, DEFAULT_SNAPSHOT_PLAN.recycleBinDays);
  return {
    region: String(values.aws_region),
    instanceType: String(values.instance_type),
    volumeGib: num(values.ebs_volume_size, 100),
    expectedTransferGb: expectedTransferGb ?? 0,
    snapshots: {
      intervalHours: num(values.snapshot_interval_hours, DEFAULT_SNAPSHOT_PLAN.intervalHours),
      retainCount: has(PRICED_RESOURCE_TYPES.snapshots, retainCount > 0) ? retainCount : 0,
      recycleBinDays: has(PRICED_RESOURCE_TYPES.recycleBin, recycleBinDays > 0) ? recycleBinDays : 0,
      ...(usedGib !== undefined ? { usedGib } : {}),
      ...(dailyChangePercent !== undefined ? { dailyChangePercent } : {}),
    },
    alarms: resourceCounts
      ? (resourceCounts[PRICED_RESOURCE_TYPES.alarm] ?? 0)
      : num(values.backup_alarm_hours, 26) > 0
        ? 1
        : 0,
    alertEmail: has(
      PRICED_RESOURCE_TYPES.emailSubscription,
      typeof values.alert_email === 'string' && values.alert_email.trim() !== '',
    ),
  };
}
