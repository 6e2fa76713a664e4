export interface RegionPrices { instancePerHour: Readonly<Record<string, number>>; gp3PerGibMonth: number; gp3PerIopsMonth: number; gp3PerMBpsMonth: number }
export interface PriceTable {
  asOf: string;
  source: string;
  hoursPerMonth: number;
  publicIpv4PerHour: number;
  gp3BaselineIops: number;
  gp3BaselineThroughputMBps: number;
  transferFreeGb: number;
  transferTiers: ReadonlyArray<{ uptoGb: number; perGb: number }>;
  regions: Readonly<Record<string, RegionPrices>>;
}
export interface CostConfig { region: string; instanceType: string; volumeGib: number; rootVolumeGib?: number; iops?: number; throughputMBps?: number; expectedTransferGb?: number }
export type CostEstimate =
  | { available: true; region: string; lines: { item: string; detail: string; monthly: number }[]; total: number; asOf: string; source: string; notes: string[] }
  | { available: false; reason: string; asOf: string; source: string };
export declare const PRICES: PriceTable;
export declare function transferCost(gb: number, prices?: PriceTable): number;
export declare function estimateMonthlyCost(cfg: CostConfig, prices?: PriceTable): CostEstimate;
export declare function formatEstimate(est: CostEstimate): string;
