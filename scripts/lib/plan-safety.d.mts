export interface PlannedChange { address: string; type: string; actions: string[]; description: string; reason?: string }
export interface PlanAnalysis {
  formatVersion: string;
  changes: PlannedChange[];
  hasChanges: boolean;
  outputChanged: boolean;
  counts: { create: number; update: number; replace: number; delete: number; forget: number };
  dataVolume: PlannedChange[];
  dataVolumeAtRisk: PlannedChange[];
  warnings: string[];
}
export declare const ALLOW_FLAG: '--allow-data-volume-replacement';
export declare const DATA_VOLUME_TYPE: 'aws_ebs_volume';
export declare const DISRUPTIVE_TYPES: Readonly<Record<string, string>>;
export declare function describeActions(actions: string[]): string;
export declare function deletes(actions: string[]): boolean;
export declare function analysePlan(plan: unknown): PlanAnalysis;
export declare function assertPlanSafe(plan: unknown, opts?: { allowDataVolumeReplacement?: boolean }): PlanAnalysis;
