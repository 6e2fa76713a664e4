// The cost estimate: the pure parts (offline table, snapshot model, lines), and the AWS Price List API path
// against recorded-shape GetProducts responses. The API cannot be reached here, so it is a mock of the AWS SDK
// (aws-sdk-client-mock on PricingClient): a fake catalogue that applies the TERM_MATCH filters the way the API
// does and answers with PriceList entries shaped like the real ones (each a JSON string with product.attributes
// and terms.OnDemand.<offer>.priceDimensions.<rate>.pricePerUnit.USD, Reserved terms beside them for
// instances, sibling products that share a filter). The PRICES in these fixtures are made up, chosen to differ
// from the offline table so that each test can tell where a number came from; only the shapes follow AWS.
import {
  AccessDeniedException,
  GetProductsCommand,
  PricingClient,
  ThrottlingException,
  type GetProductsCommandInput,
} from '@aws-sdk/client-pricing';
import { mockClient } from 'aws-sdk-client-mock';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { INSTANCE_TYPES } from '../../scripts/lib/core/instance-types.js';
import { makePricingClient, PRICING_API_REGION } from '../../scripts/lib/deploy/aws.js';
import {
  costConfigFromTfvars,
  DEFAULT_SNAPSHOT_PLAN,
  estimateMonthlyCost,
  estimateWithPrices,
  fetchApiPrices,
  formatEstimate,
  OFFLINE_TABLE,
  parsePriceListItem,
  resolvePrices,
  ROOT_VOLUME_GIB,
  snapshotGb,
  transferCost,
  type CostConfig,
  type CostEstimate,
} from '../../scripts/lib/deploy/cost.js';
import { ROOT_VOLUME_GIB as STACK_ROOT_VOLUME_GIB } from '../../constructs/backup-host.js';

const cents = (x: number) => Math.round(x * 100);
const byItem = (est: CostEstimate) => {
  if (!est.available) throw new Error(est.reason);
  return Object.fromEntries(est.lines.map((l) => [l.item, l]));
};

// ---------------------------------------------------------------------------------------------------------
// Recorded-shape PriceList entries

const LOCATION: Record<string, string> = { 'us-west-1': 'US West (N. California)', 'eu-west-1': 'EU (Ireland)' };
const PREFIX: Record<string, string> = { 'us-west-1': 'USW1-', 'eu-west-1': 'EU-' };
let skuN = 0;
interface Dim {
  usd: string;
  unit: string;
  begin?: string;
  end?: string;
  description: string;
}
function entry(
  serviceCode: string,
  productFamily: string,
  region: string,
  attributes: Record<string, string>,
  dims: Dim[],
  { reserved = false } = {},
) {
  skuN += 1;
  const sku = `FAKESKU${String(skuN).padStart(9, '0')}`;
  const term = 'JRTCKXETXF';
  const rates = ['6YS6EN2CT7', 'Q7UJUT2CE6', '3ZY5D9K5CN'];
  const doc = {
    product: {
      productFamily,
      attributes: {
        regionCode: region,
        location: LOCATION[region] ?? region,
        locationType: 'AWS Region',
        servicecode: serviceCode,
        ...attributes,
      },
      sku,
    },
    serviceCode,
    terms: {
      OnDemand: {
        [`${sku}.${term}`]: {
          priceDimensions: Object.fromEntries(
            dims.map((d, i) => [
              `${sku}.${term}.${rates[i]}`,
              {
                unit: d.unit,
                endRange: d.end ?? 'Inf',
                description: d.description,
                appliesTo: [],
                rateCode: `${sku}.${term}.${rates[i]}`,
                beginRange: d.begin ?? '0',
                pricePerUnit: { USD: d.usd },
              },
            ]),
          ),
          sku,
          effectiveDate: '2026-11-01T00:00:00Z',
          offerTermCode: term,
          termAttributes: {},
        },
      },
      ...(reserved
        ? {
            Reserved: {
              [`${sku}.4NA7Y494T4`]: {
                priceDimensions: {
                  [`${sku}.4NA7Y494T4.6YS6EN2CT7`]: {
                    unit: 'Hrs',
                    endRange: 'Inf',
                    description: 'Linux/UNIX (Amazon VPC), t3a.nano reserved instance applied',
                    appliesTo: [],
                    rateCode: `${sku}.4NA7Y494T4.6YS6EN2CT7`,
                    beginRange: '0',
                    pricePerUnit: { USD: '0.0035000000' },
                  },
                },
                sku,
                effectiveDate: '2026-11-01T00:00:00Z',
                offerTermCode: '4NA7Y494T4',
                termAttributes: { LeaseContractLength: '1yr', OfferingClass: 'standard', PurchaseOption: 'No Upfront' },
              },
            },
          }
        : {}),
    },
    version: '20261121000000',
    publicationDate: '2026-11-21T00:00:00Z',
  };
  return {
    serviceCode,
    productFamily,
    attributes: doc.product.attributes as Record<string, string>,
    json: JSON.stringify(doc),
  };
}
type Entry = ReturnType<typeof entry>;

const instanceEntry = (region: string, type: string, usd: string, extra: Record<string, string> = {}) =>
  entry(
    'AmazonEC2',
    'Compute Instance',
    region,
    {
      instanceType: type,
      instanceFamily: 'General purpose',
      vcpu: '2',
      memory: '0.5 GiB',
      storage: 'EBS only',
      networkPerformance: 'Up to 5 Gigabit',
      physicalProcessor: type.startsWith('t4g') ? 'AWS Graviton2 Processor' : 'AMD EPYC 7571',
      processorArchitecture: '64-bit',
      tenancy: 'Shared',
      operatingSystem: 'Linux',
      licenseModel: 'No License required',
      preInstalledSw: 'NA',
      capacitystatus: 'Used',
      marketoption: 'OnDemand',
      operation: 'RunInstances',
      usagetype: `${PREFIX[region] ?? ''}BoxUsage:${type}`,
      servicename: 'Amazon Elastic Compute Cloud',
      currentGeneration: 'Yes',
      ...extra,
    },
    [{ usd: usd, unit: 'Hrs', description: `$${usd} per On Demand Linux ${type} Instance Hour` }],
    { reserved: true },
  );

/** What the API holds for one region: the products the stack needs and their siblings under the same filters. */
function catalogue(region: string, { without = [] as string[], t4g = false } = {}): Entry[] {
  const p = PREFIX[region] ?? '';
  const all: Record<string, Entry> = {
    instance: instanceEntry(region, t4g ? 't4g.nano' : 't3a.nano', t4g ? '0.0047000000' : '0.0059000000'),
    instanceReservedCapacity: instanceEntry(region, 't3a.nano', '0.0059000000', {
      capacitystatus: 'UnusedCapacityReservation',
      usagetype: `${p}UnusedBox:t3a.nano`,
    }),
    instanceDedicated: instanceEntry(region, 't3a.nano', '0.0110000000', {
      tenancy: 'Dedicated',
      usagetype: `${p}DedicatedUsage:t3a.nano`,
    }),
    instanceSql: instanceEntry(region, 't3a.nano', '0.0270000000', {
      preInstalledSw: 'SQL Web',
      usagetype: `${p}BoxUsage:t3a.nano`,
      operation: 'RunInstances:0200',
    }),
    gp3: entry(
      'AmazonEC2',
      'Storage',
      region,
      {
        volumeApiName: 'gp3',
        volumeType: 'General Purpose',
        storageMedia: 'SSD-backed',
        maxVolumeSize: '16 TiB',
        maxIopsvolume: '16000',
        maxThroughputvolume: '1000 MiB/s',
        usagetype: `${p}EBS:VolumeUsage.gp3`,
        operation: '',
      },
      [
        {
          usd: '0.1000000000',
          unit: 'GB-Mo',
          description: '$0.10 per GB-month of General Purpose (gp3) provisioned storage',
        },
      ],
    ),
    gp2: entry(
      'AmazonEC2',
      'Storage',
      region,
      { volumeApiName: 'gp2', volumeType: 'General Purpose', usagetype: `${p}EBS:VolumeUsage.gp2`, operation: '' },
      [
        {
          usd: '0.1200000000',
          unit: 'GB-Mo',
          description: '$0.12 per GB-month of General Purpose SSD (gp2) provisioned storage',
        },
      ],
    ),
    ipv4: entry(
      'AmazonVPC',
      'VPC Public IPv4 Address',
      region,
      {
        group: 'VPCPublicIPv4Address',
        groupDescription: 'Hourly charge for In-use Public IPv4 Addresses',
        usagetype: `${p}PublicIPv4:InUseAddress`,
        operation: '',
      },
      [{ usd: '0.0060000000', unit: 'Hrs', description: '$0.006 per In-use public IPv4 address per hour' }],
    ),
    ipv4Idle: entry(
      'AmazonVPC',
      'VPC Public IPv4 Address',
      region,
      {
        group: 'VPCPublicIPv4Address',
        groupDescription: 'Hourly charge for Idle Public IPv4 Addresses',
        usagetype: `${p}PublicIPv4:IdleAddress`,
        operation: '',
      },
      [{ usd: '0.0060000000', unit: 'Hrs', description: '$0.006 per Idle public IPv4 address per hour' }],
    ),
    snapshot: entry(
      'AmazonEC2',
      'Storage Snapshot',
      region,
      { storageMedia: 'Amazon S3', usagetype: `${p}EBS:SnapshotUsage`, operation: '' },
      [{ usd: '0.0600000000', unit: 'GB-Mo', description: '$0.06 per GB-Month of snapshot data stored' }],
    ),
    snapshotArchive: entry(
      'AmazonEC2',
      'Storage Snapshot',
      region,
      { storageMedia: 'Amazon S3 Glacier', usagetype: `${p}EBS:SnapshotArchiveStorage`, operation: '' },
      [{ usd: '0.0150000000', unit: 'GB-Mo', description: '$0.015 per GB-month of snapshot archive data stored' }],
    ),
    alarm: entry(
      'AmazonCloudWatch',
      'Alarm',
      region,
      {
        alarmType: 'Standard',
        usagetype: `${p}CW:AlarmMonitorUsage`,
        operation: 'Unknown',
        servicename: 'AmazonCloudWatch',
      },
      [{ usd: '0.1100000000', unit: 'Alarms', description: '$0.11 per alarm metric month - standard resolution' }],
    ),
    alarmHighRes: entry(
      'AmazonCloudWatch',
      'Alarm',
      region,
      {
        alarmType: 'High Resolution',
        usagetype: `${p}CW:HighResAlarmMonitorUsage`,
        operation: 'Unknown',
        servicename: 'AmazonCloudWatch',
      },
      [{ usd: '0.3300000000', unit: 'Alarms', description: '$0.33 per alarm metric month - high resolution' }],
    ),
    email: entry(
      'AmazonSNS',
      'Message Delivery',
      region,
      { endpointType: 'SMTP', usagetype: `${p}DeliveryAttempts-SMTP`, operation: '' },
      [
        {
          usd: '0.0000000000',
          unit: 'Notifications',
          begin: '0',
          end: '1000',
          description: 'First 1,000 Amazon SNS Email/Email-JSON Notifications per month are free',
        },
        {
          usd: '0.0000200000',
          unit: 'Notifications',
          begin: '1000',
          end: 'Inf',
          description: '$2.00 per 100,000 Amazon SNS Email/Email-JSON Notifications',
        },
      ],
    ),
    emailHttp: entry(
      'AmazonSNS',
      'Message Delivery',
      region,
      { endpointType: 'HTTP', usagetype: `${p}DeliveryAttempts-HTTP`, operation: '' },
      [
        {
          usd: '0.0000000000',
          unit: 'Notifications',
          begin: '0',
          end: '100000',
          description: 'First 100,000 Amazon SNS HTTP/HTTPS Notifications per month are free',
        },
        {
          usd: '0.0000006000',
          unit: 'Notifications',
          begin: '100000',
          end: 'Inf',
          description: '$0.60 per 1,000,000 Amazon SNS HTTP/HTTPS Notifications',
        },
      ],
    ),
  };
  return Object.entries(all)
    .filter(([k]) => !without.includes(k))
    .map(([, e]) => e);
}

/** A fake GetProducts: ServiceCode and every TERM_MATCH filter must equal the product's (productFamily included). */
function fakeApi(entries: Entry[], { pageSize = 100 } = {}) {
  const mock = mockClient(PricingClient);
  const calls: GetProductsCommandInput[] = [];
  mock.on(GetProductsCommand).callsFake((input: GetProductsCommandInput) => {
    calls.push(input);
    const hits = entries.filter(
      (e) =>
        e.serviceCode === input.ServiceCode &&
        (input.Filters ?? []).every((f) => {
          if (f.Type !== 'TERM_MATCH') throw new Error(`unexpected filter type ${f.Type}`);
          return (f.Field === 'productFamily' ? e.productFamily : e.attributes[f.Field!]) === f.Value;
        }),
    );
    const start = input.NextToken ? Number(input.NextToken) : 0;
    const page = hits.slice(start, start + Math.min(pageSize, input.MaxResults ?? 100));
    const next = start + page.length < hits.length ? String(start + page.length) : undefined;
    return {
      $metadata: {
        httpStatusCode: 200,
        requestId: 'c0ffee00-0000-4000-8000-000000000001',
        attempts: 1,
        totalRetryDelay: 0,
      },
      FormatVersion: 'aws_v1',
      PriceList: page.map((e) => e.json),
      ...(next ? { NextToken: next } : {}),
    };
  });
  return {
    client: new PricingClient({
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIAFAKE', secretAccessKey: 'fake' },
    }),
    mock,
    calls,
  };
}

const NOW = () => new Date('2026-11-30T04:41:07Z');
const DEFAULTS: CostConfig = {
  region: 'us-west-1',
  instanceType: 't3a.nano',
  volumeGib: 100,
  snapshots: { ...DEFAULT_SNAPSHOT_PLAN },
  alarms: 1,
  alertEmail: true,
};

// ---------------------------------------------------------------------------------------------------------

describe('cost estimate: the offline table', () => {
  test('is labelled for what it is: remembered list prices, not checked against AWS on a date; no claimed source page or date', () => {
    expect(OFFLINE_TABLE.provenance).toMatch(/as remembered by the authors/);
    expect(OFFLINE_TABLE.provenance).toMatch(/not checked against AWS on a date/);
    expect(OFFLINE_TABLE.provenance).not.toMatch(/aws\.amazon\.com|as of|read in/);
    const est = estimateMonthlyCost(DEFAULTS);
    expect(est.source).toBe(OFFLINE_TABLE.provenance);
    expect(formatEstimate(est)).toContain(`(prices: ${OFFLINE_TABLE.provenance})`);
  });

  test('covers the types the stack allows (t3a, t3, t4g; no t2) in its regions', () => {
    for (const [region, r] of Object.entries(OFFLINE_TABLE.regions)) {
      for (const t of Object.keys(INSTANCE_TYPES)) expect([t, r.instancePerHour[t]]).toEqual([t, expect.any(Number)]);
      expect(r.instancePerHour['t3a.2xlarge']).toBeCloseTo(r.instancePerHour['t3a.nano'] * 64, 4);
      expect(Object.keys(r.instancePerHour).filter((k) => k.startsWith('t2.'))).toEqual([]);
      expect(r.snapshotPerGbMonth).toBeGreaterThan(0);
      expect(region).toMatch(/^[a-z]{2}-[a-z]+-\d$/);
    }
    expect(OFFLINE_TABLE.regions['us-east-1'].instancePerHour['t4g.small']).toBe(0.0168);
  });

  test("README's cost table shows what the code computes for the defaults", () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Monthly cost'), readme.indexOf('## State'));
    expect(section).toMatch(
      /list prices as remembered by the authors \(written into the code\s+in November 2026\), not checked against AWS on a date/,
    );
    const est = estimateMonthlyCost({ ...DEFAULTS, alertEmail: true });
    if (!est.available) throw new Error(est.reason);
    const rows: Record<string, RegExp> = {
      instance: /^\| instance `t3a\.nano`.*\| \$([\d.]+) \|$/m,
      'data volume': /^\| data volume gp3 100 GiB.*\| \$([\d.]+) \|$/m,
      'root volume': /^\| root volume gp3 8 GiB.*\| \$([\d.]+) \|$/m,
      'public IPv4 address': /^\| public IPv4 address.*\| \$([\d.]+) \|$/m,
      snapshots: /^\| snapshots of the data volume.*\| \$([\d.]+) \|$/m,
      'recycle bin': /^\| recycle bin.*\| \$([\d.]+) \|$/m,
      'CloudWatch alarms': /^\| CloudWatch alarm.*\| \$([\d.]+) \|$/m,
      'alert e-mail (SNS)': /^\| alert e-mail \(SNS\).*\| \$([\d.]+) \|$/m,
    };
    for (const [item, re] of Object.entries(rows)) {
      expect([item, Number(section.match(re)?.[1])]).toEqual([item, est.lines.find((l) => l.item === item)?.monthly]);
    }
    expect(section).toContain(`**≈ $${est.total.toFixed(2)}**`);
  });

  test('the root volume size agrees with the stack', () => {
    expect(ROOT_VOLUME_GIB).toBe(STACK_ROOT_VOLUME_GIB);
  });

  test('the default configuration in us-west-1: instance, volumes, IPv4, 7 daily snapshots + 7 recycle-bin days, one alarm', () => {
    const by = byItem(estimateMonthlyCost({ ...DEFAULTS, alertEmail: false }));
    expect(by.instance.monthly).toBe(4.09); // 0.0056 × 730
    expect(by['data volume'].monthly).toBe(9.6); // 100 × 0.096
    expect(by['root volume'].monthly).toBe(0.77); // 8 × 0.096
    expect(by['public IPv4 address'].monthly).toBe(3.65); // 730 × 0.005
    // 100 GiB used + 2 %/day × 6 days = 112 GB; bin: 2 %/day × 7 days = 14 GB; × 0.055
    expect(by.snapshots.monthly).toBe(6.16);
    expect(by['recycle bin'].monthly).toBe(0.77);
    expect(by['CloudWatch alarms'].monthly).toBe(0.1);
    expect(by['transfer out'].monthly).toBe(0);
    expect(by['alert e-mail (SNS)']).toBeUndefined();
    const est = estimateMonthlyCost({ ...DEFAULTS, alertEmail: false });
    if (!est.available) throw new Error(est.reason);
    expect(cents(est.total)).toBe(cents(4.088 + 9.6 + 0.768 + 3.65 + 112 * 0.055 + 14 * 0.055 + 0.1));
    expect(est.lines.every((l) => l.origin === 'table')).toBe(true);
    expect(est.lines.some((l) => /\[table\]/.test(l.detail))).toBe(false); // all from the table: the source line says so once
  });

  test('an unknown region or instance type gives no number, and says why', () => {
    const r = estimateMonthlyCost({ ...DEFAULTS, region: 'ap-south-2' });
    expect(r.available).toBe(false);
    expect(r).not.toHaveProperty('total');
    if (!r.available) expect(r.reason).toMatch(/instance: the offline table has no prices for region ap-south-2/);
    const t = estimateMonthlyCost({ ...DEFAULTS, instanceType: 'm5.large' });
    if (t.available) throw new Error('expected unavailable');
    expect(t.reason).toMatch(/no price for m5.large in us-west-1/);
    expect(formatEstimate(t)).toMatch(/^cost estimate unavailable/);
  });
});

describe('cost estimate: snapshots, alarms, e-mail', () => {
  test('snapshot storage: used data + daily change × the days the kept snapshots span; the recycle bin adds its days', () => {
    const s = snapshotGb(
      { intervalHours: 24, retainCount: 7, recycleBinDays: 7, usedGib: 50, dailyChangePercent: 1 },
      100,
    );
    expect(s.snapshotsGb).toBeCloseTo(50 + 50 * 0.01 * 6);
    expect(s.recycleBinGb).toBeCloseTo(50 * 0.01 * 7);
    expect(s.assumption).toMatch(/first holds the used data, 50 GiB \(given\)/);
    expect(s.assumption).toMatch(/1 % of the used data per day/);
    expect(s.assumption).toMatch(/7 kept every 24 h span 6 days of changes/);
    const hourly = snapshotGb({ intervalHours: 6, retainCount: 9, recycleBinDays: 0 }, 100);
    expect(hourly.snapshotsGb).toBeCloseTo(100 + 100 * 0.02 * 2); // 8 intervals of 6 h = 2 days
    expect(hourly.recycleBinGb).toBe(0);
    expect(hourly.assumption).toMatch(/assumed: the whole volume/);
    expect(hourly.assumption).not.toMatch(/recycle bin/);
  });

  test('snapshot_retain_count = 0: no snapshot or recycle-bin line, and the estimate says nothing survives the volume', () => {
    const est = estimateMonthlyCost({
      ...DEFAULTS,
      snapshots: { intervalHours: 24, retainCount: 0, recycleBinDays: 7 },
    });
    if (!est.available) throw new Error(est.reason);
    expect(est.lines.map((l) => l.item)).not.toContain('snapshots');
    expect(est.lines.map((l) => l.item)).not.toContain('recycle bin');
    expect(est.assumptions.join(' ')).toMatch(/no snapshots/);
  });

  test('alarms are counted; the SNS e-mail line is $0 within the free tier and appears only with an address', () => {
    const by = byItem(estimateMonthlyCost({ ...DEFAULTS, alarms: 2, alertEmail: true }));
    expect(by['CloudWatch alarms'].monthly).toBe(0.2);
    expect(by['CloudWatch alarms'].detail).toMatch(/2 standard alarms/);
    expect(by['alert e-mail (SNS)'].monthly).toBe(0);
    expect(by['alert e-mail (SNS)'].detail).toMatch(/within the 1000 free e-mails/);
    const none = byItem(estimateMonthlyCost({ ...DEFAULTS, alarms: 0, alertEmail: false }));
    expect(none['CloudWatch alarms']).toBeUndefined();
  });

  test('costConfigFromTfvars: the stack defaults, and with a plan only what the plan creates is priced', () => {
    const values = { aws_region: 'eu-west-1', instance_type: 't4g.micro', ebs_volume_size: 200 };
    expect(costConfigFromTfvars(values)).toEqual({
      region: 'eu-west-1',
      instanceType: 't4g.micro',
      volumeGib: 200,
      expectedTransferGb: 0,
      snapshots: { intervalHours: 24, retainCount: 7, recycleBinDays: 7 },
      alarms: 1,
      alertEmail: false,
    });
    const set = {
      ...values,
      snapshot_interval_hours: 12,
      snapshot_retain_count: 14,
      recycle_bin_days: 0,
      alert_email: 'me@example.org',
      backup_alarm_hours: 26,
    };
    expect(costConfigFromTfvars(set, { usedGib: 30, dailyChangePercent: 0.5, expectedTransferGb: 5 })).toMatchObject({
      snapshots: { intervalHours: 12, retainCount: 14, recycleBinDays: 0, usedGib: 30, dailyChangePercent: 0.5 },
      alarms: 1,
      alertEmail: true,
      expectedTransferGb: 5,
    });
    const plan = {
      aws_instance: 1,
      aws_ebs_volume: 1,
      aws_cloudwatch_metric_alarm: 2,
      aws_dlm_lifecycle_policy: 1,
      aws_rbin_rule: 1,
    };
    expect(costConfigFromTfvars(set, { resourceCounts: plan })).toMatchObject({
      alarms: 2,
      alertEmail: false,
      snapshots: { retainCount: 14, recycleBinDays: 0 },
    });
    // a plan without the DLM policy (a stack that makes no snapshots) prices none, whatever the tfvars say
    expect(costConfigFromTfvars(set, { resourceCounts: { aws_instance: 1 } })).toMatchObject({
      alarms: 0,
      alertEmail: false,
      snapshots: { retainCount: 0, recycleBinDays: 0 },
    });
  });

  test('transfer out: 100 GB free, then tiers counted on the total', () => {
    expect(transferCost(0)).toBe(0);
    expect(transferCost(100)).toBe(0);
    expect(cents(transferCost(150))).toBe(cents(50 * 0.09));
    expect(cents(transferCost(10 * 1024 + 1000))).toBe(cents((10 * 1024 - 100) * 0.09 + 1000 * 0.085));
    expect(cents(transferCost(200 * 1024))).toBe(
      cents((10240 - 100) * 0.09 + 40 * 1024 * 0.085 + 100 * 1024 * 0.07 + 50 * 1024 * 0.05),
    );
    expect(
      byItem(estimateMonthlyCost({ ...DEFAULTS, region: 'eu-central-1', expectedTransferGb: 300 }))['transfer out']
        .monthly,
    ).toBe(18);
  });
});

describe('cost estimate: AWS Price List API (mocked AWS SDK: PricingClient with recorded-shape GetProducts answers)', () => {
  test("setup's client asks the API's own endpoint region whatever region is priced", async () => {
    expect(PRICING_API_REGION).toBe('us-east-1');
    expect(await makePricingClient({ region: 'eu-west-1' }).config.region()).toBe('us-east-1');
  });

  test('parsePriceListItem reads product attributes and only the OnDemand price dimensions, tiers sorted', () => {
    const p = parsePriceListItem(catalogue('us-west-1').find((e) => e.productFamily === 'Compute Instance')!.json);
    expect(p).toMatchObject({
      productFamily: 'Compute Instance',
      attributes: { usagetype: 'USW1-BoxUsage:t3a.nano' },
      dimensions: [{ unit: 'Hrs', usd: 0.0059, beginRange: 0, endRange: Infinity }],
    });
    const sns = parsePriceListItem(
      catalogue('us-west-1').find((e) => e.attributes.usagetype === 'USW1-DeliveryAttempts-SMTP')!.json,
    );
    expect(sns?.dimensions.map((d) => [d.usd, d.beginRange, d.endRange])).toEqual([
      [0, 0, 1000],
      [0.00002, 1000, Infinity],
    ]);
    expect(parsePriceListItem('not json')).toBeNull();
    expect(parsePriceListItem(JSON.stringify({ serviceCode: 'AmazonEC2' }))).toBeNull();
  });

  test('full success: every price from the API for the region, with TERM_MATCH filters for exactly what the plan creates', async () => {
    const api = fakeApi(catalogue('us-west-1'));
    const est = await estimateWithPrices(DEFAULTS, api.client, { now: NOW });
    if (!est.available) throw new Error(est.reason);
    expect(est.source).toBe('AWS Price List API, us-west-1, fetched 2026-11-30 04:41 UTC');
    expect(est.fallback).toBeUndefined();
    expect(est.lines.filter((l) => l.item !== 'transfer out').every((l) => l.origin === 'api')).toBe(true);
    const by = byItem(est);
    expect(by.instance.monthly).toBe(4.31); // 0.0059 × 730, the API's, not the table's 0.0056
    expect(by['data volume'].monthly).toBe(10); // 100 × 0.10
    expect(by['public IPv4 address'].monthly).toBe(4.38); // 0.006 × 730
    expect(by.snapshots.monthly).toBe(6.72); // 112 GB × 0.06
    expect(by['CloudWatch alarms'].monthly).toBe(0.11);
    expect(by['alert e-mail (SNS)'].detail).toMatch(/1000 free e-mails; then \$0\.00002 each/);
    expect(by['transfer out'].detail).toMatch(/\[table\]/);
    // the queries: one per product, in us-east-1's API, filtered to the region and the product
    const ec2 = api.calls.find((c) => c.Filters?.some((f) => f.Field === 'instanceType'))!;
    expect(ec2.ServiceCode).toBe('AmazonEC2');
    expect(Object.fromEntries(ec2.Filters!.map((f) => [f.Field, f.Value]))).toEqual({
      regionCode: 'us-west-1',
      instanceType: 't3a.nano',
      operatingSystem: 'Linux',
      tenancy: 'Shared',
      preInstalledSw: 'NA',
      capacitystatus: 'Used',
      marketoption: 'OnDemand',
    });
    expect(api.calls.flatMap((c) => c.Filters!.map((f) => f.Type))).toEqual(expect.arrayContaining(['TERM_MATCH']));
    expect(new Set(api.calls.flatMap((c) => c.Filters!.map((f) => f.Type)))).toEqual(new Set(['TERM_MATCH']));
    expect(api.calls.map((c) => c.ServiceCode)).toEqual([
      'AmazonEC2',
      'AmazonEC2',
      'AmazonVPC',
      'AmazonEC2',
      'AmazonCloudWatch',
      'AmazonSNS',
    ]);
    expect(await api.client.config.region()).toBe('us-east-1');
    api.mock.restore();
  });

  test('a Graviton type (t4g) is priced by the API like any other', async () => {
    const api = fakeApi(catalogue('us-west-1', { t4g: true }));
    const est = await estimateWithPrices({ ...DEFAULTS, instanceType: 't4g.nano' }, api.client, { now: NOW });
    expect(byItem(est).instance).toMatchObject({ monthly: 3.43, origin: 'api' }); // 0.0047 × 730
    api.mock.restore();
  });

  test('pages are followed (NextToken) until the product is found', async () => {
    const api = fakeApi(catalogue('us-west-1'), { pageSize: 1 });
    const got = await fetchApiPrices(
      api.client,
      { region: 'us-west-1', instanceType: 't3a.nano', keys: ['snapshotStorage'] },
      { now: NOW },
    );
    expect(got.prices.snapshotStorage).toEqual({ usd: 0.06, unit: 'GB-Mo' });
    expect(api.calls.length).toBe(2);
    expect(api.calls[1].NextToken).toBe('1');
    api.mock.restore();
  });

  test('partial: a product the API does not return is priced from the table, and that line says so', async () => {
    const api = fakeApi(catalogue('us-west-1', { without: ['snapshot'] }));
    const est = await estimateWithPrices(DEFAULTS, api.client, { now: NOW });
    const by = byItem(est);
    expect(by.snapshots).toMatchObject({ origin: 'table', monthly: 6.16 }); // 112 GB × the table's 0.055
    expect(by.snapshots.detail).toMatch(/\[table\]$/);
    expect(by['recycle bin'].detail).toMatch(/\[table\]$/);
    expect(by.instance).toMatchObject({ origin: 'api', monthly: 4.31 });
    expect(est.source).toBe(
      `AWS Price List API, us-west-1, fetched 2026-11-30 04:41 UTC; snapshot storage from the ${OFFLINE_TABLE.provenance}`,
    );
    expect(est.fallback).toMatch(
      /gave no price for snapshot storage \(no EBS snapshot storage product in the answer \(1 other product\)\): that price is from the offline table, marked \[table\]/,
    );
    const text = formatEstimate(est);
    expect(text.split('\n')[0]).toMatch(/^note: the AWS Price List API gave no price for snapshot storage/);
  });

  test('access denied: one call, then every price from the labelled table with the reason and what to grant; no stack trace', async () => {
    const mock = mockClient(PricingClient);
    mock.on(GetProductsCommand).rejects(
      new AccessDeniedException({
        $metadata: { httpStatusCode: 400, requestId: 'deadbeef-0000-4000-8000-000000000002' },
        message:
          'User: arn:aws:iam::123456789012:user/backup-operator is not authorized to perform: pricing:GetProducts because no identity-based policy allows the pricing:GetProducts action',
      }),
    );
    const est = await estimateWithPrices(DEFAULTS, new PricingClient({ region: 'us-east-1' }), { now: NOW });
    expect(mock.commandCalls(GetProductsCommand)).toHaveLength(1);
    if (!est.available) throw new Error(est.reason);
    expect(est.source).toBe(OFFLINE_TABLE.provenance);
    expect(est.fallback).toMatch(
      /^the AWS Price List API was not used: AWS denied pricing:GetProducts \(AccessDeniedException: User: arn:aws:iam::123456789012:user\/backup-operator is not authorized/,
    );
    expect(est.fallback).toMatch(/to use live prices: grant the identity permission for pricing:GetProducts/);
    expect(est.fallback).toMatch(
      /the figures below are from the offline table: list prices as remembered by the authors/,
    );
    expect(est.lines.every((l) => l.origin === 'table')).toBe(true);
    expect(byItem(est).instance.monthly).toBe(4.09);
    expect(formatEstimate(est)).not.toMatch(/\n\s+at |Error:|\.ts:\d+/);
    mock.restore();
  });

  test("throttled (after the SDK's retries): the table, with the reason", async () => {
    const mock = mockClient(PricingClient);
    mock
      .on(GetProductsCommand)
      .rejects(new ThrottlingException({ $metadata: { httpStatusCode: 429 }, message: 'Rate exceeded' }));
    const est = await estimateWithPrices(DEFAULTS, new PricingClient({ region: 'us-east-1' }), { now: NOW });
    expect(est.available).toBe(true);
    expect(est.fallback).toMatch(
      /^the AWS Price List API was not used: the Price List API throttled the requests \(ThrottlingException: Rate exceeded\); to use live prices: re-run setup in a minute/,
    );
    mock.restore();
  });

  test('no credentials: the table, with the reason and how to configure them', async () => {
    const mock = mockClient(PricingClient);
    mock
      .on(GetProductsCommand)
      .rejects(
        Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }),
      );
    const est = await estimateWithPrices(DEFAULTS, new PricingClient({ region: 'us-east-1' }), { now: NOW });
    expect(est.fallback).toMatch(/not used: no AWS credentials found .*to use live prices: run `aws configure`/);
    mock.restore();
  });

  test('a region with no match: a region the table has is priced from the table, labelled; one it lacks is unavailable, with both reasons', async () => {
    const api = fakeApi(catalogue('us-west-1')); // the API knows nothing of eu-west-1 or ap-south-2 here
    const eu = await estimateWithPrices({ ...DEFAULTS, region: 'eu-west-1' }, api.client, { now: NOW });
    if (!eu.available) throw new Error(eu.reason);
    expect(eu.source).toBe(OFFLINE_TABLE.provenance);
    expect(eu.fallback).toMatch(
      /gave no price for instance \(the API has no t3a.nano on-demand Linux product for eu-west-1\)/,
    );
    expect(eu.fallback).toMatch(/the figures are from the offline table/);
    expect(byItem(eu).instance.monthly).toBe(3.72); // the table's 0.0051 × 730
    const ap = await estimateWithPrices({ ...DEFAULTS, region: 'ap-south-2' }, api.client, { now: NOW });
    if (ap.available) throw new Error('expected unavailable');
    expect(ap.reason).toMatch(
      /instance: the API has no t3a.nano on-demand Linux product for ap-south-2; the offline table has no prices for region ap-south-2/,
    );
    expect(formatEstimate(ap)).toMatch(/cost estimate unavailable: instance:/);
    api.mock.restore();
  });

  test('two products with different prices for one part are not guessed between', async () => {
    const entries = [
      ...catalogue('us-west-1'),
      instanceEntry('us-west-1', 't3a.nano', '0.0099000000', { licenseModel: 'Bring your own license' }),
    ];
    const api = fakeApi(entries);
    const got = await fetchApiPrices(
      api.client,
      { region: 'us-west-1', instanceType: 't3a.nano', keys: ['instance'] },
      { now: NOW },
    );
    expect(got.prices.instance).toBeUndefined();
    expect(got.missing.instance).toMatch(
      /2 t3a.nano on-demand Linux products with different prices \(0.0059, 0.0099\)/,
    );
    const book = resolvePrices(got, { region: 'us-west-1', instanceType: 't3a.nano' }, OFFLINE_TABLE, ['instance']);
    expect(book.prices.instance).toMatchObject({ origin: 'table', usd: 0.0056 });
    api.mock.restore();
  });
});
