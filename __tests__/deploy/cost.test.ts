import { estimateMonthlyCost, formatEstimate, PRICES, transferCost } from '../../scripts/lib/deploy/cost.js';

const cents = (x: number) => Math.round(x * 100);

describe('cost estimate', () => {
  test('the price table says when and where its prices come from, and covers the stack\'s default', () => {
    expect(PRICES.asOf).toMatch(/^\d{4}-\d{2}$/);
    expect(PRICES.source).toMatch(/aws\.amazon\.com\/ec2\/pricing/);
    for (const r of ['us-west-1', 'us-east-1', 'us-east-2', 'us-west-2', 'eu-central-1', 'eu-west-1']) {
      expect(PRICES.regions[r].instancePerHour['t3a.nano']).toBeGreaterThan(0);
    }
  });

  test('the default configuration in us-west-1: instance + 100 GiB + root 8 GiB + IPv4, 730 h', () => {
    const est = estimateMonthlyCost({ region: 'us-west-1', instanceType: 't3a.nano', volumeGib: 100 });
    if (!est.available) throw new Error(est.reason);
    const by = Object.fromEntries(est.lines.map((l) => [l.item, l.monthly]));
    expect(by.instance).toBe(Math.round(0.0056 * 730 * 100) / 100); // 4.09
    expect(by['data volume']).toBe(9.6); // 100 × 0.096
    expect(by['root volume']).toBe(0.77); // 8 × 0.096
    expect(by['public IPv4 address']).toBe(3.65); // 730 × 0.005
    expect(by['transfer out']).toBe(0);
    expect(cents(est.total)).toBe(cents(4.088 + 9.6 + 0.768 + 3.65));
    expect(est.lines.map((l) => l.item)).not.toContain('data volume IOPS');
  });

  test('IOPS and throughput above the gp3 baseline are charged; the baseline is free', () => {
    const est = estimateMonthlyCost({ region: 'us-east-1', instanceType: 't3a.nano', volumeGib: 100, iops: 4000, throughputMBps: 250 });
    if (!est.available) throw new Error(est.reason);
    const by = Object.fromEntries(est.lines.map((l) => [l.item, l.monthly]));
    expect(by['data volume IOPS']).toBe(5); // 1000 × 0.005
    expect(by['data volume throughput']).toBe(5); // 125 × 0.04
  });

  test('transfer out: 100 GB free, then tiers counted on the total', () => {
    expect(transferCost(0)).toBe(0);
    expect(transferCost(100)).toBe(0);
    expect(cents(transferCost(150))).toBe(cents(50 * 0.09));
    expect(cents(transferCost(10 * 1024))).toBe(cents((10 * 1024 - 100) * 0.09));
    expect(cents(transferCost(10 * 1024 + 1000))).toBe(cents((10 * 1024 - 100) * 0.09 + 1000 * 0.085));
    expect(cents(transferCost(200 * 1024))).toBe(cents((10240 - 100) * 0.09 + 40 * 1024 * 0.085 + 100 * 1024 * 0.07 + 50 * 1024 * 0.05));
    const est = estimateMonthlyCost({ region: 'eu-central-1', instanceType: 't3a.nano', volumeGib: 50, expectedTransferGb: 300 });
    if (!est.available) throw new Error(est.reason);
    expect(est.lines.find((l) => l.item === 'transfer out')?.monthly).toBe(18); // 200 × 0.09
  });

  test('an unknown region or instance type gives no number, and says why', () => {
    const r = estimateMonthlyCost({ region: 'ap-south-2', instanceType: 't3a.nano', volumeGib: 100 });
    expect(r.available).toBe(false);
    expect(r).not.toHaveProperty('total');
    if (!r.available) expect(r.reason).toMatch(/no prices for region ap-south-2/);
    const t = estimateMonthlyCost({ region: 'us-west-1', instanceType: 't3.2xlarge', volumeGib: 100 });
    expect(t.available).toBe(false);
    if (!t.available) expect(t.reason).toMatch(/no price for instance type t3.2xlarge in us-west-1/);
    expect(formatEstimate(t)).toMatch(/^cost estimate unavailable/);
  });

  test('formatEstimate prints each part, the total and the date', () => {
    const text = formatEstimate(estimateMonthlyCost({ region: 'us-west-1', instanceType: 't3a.nano', volumeGib: 100, expectedTransferGb: 20 }));
    expect(text).toMatch(/Estimated monthly cost in us-west-1 \(prices as of \d{4}-\d{2}\)/);
    expect(text).toMatch(/public IPv4 address\s+\$\s+3\.65/);
    expect(text).toMatch(/total\s+\$\s+18\.11\s+per month/);
  });
});
