import type { STSClient } from '@aws-sdk/client-sts';
export interface PrereqCheck { id: string; name: string; ok: boolean; required: boolean; status: 'ok' | 'missing' | 'warn' | 'skipped'; version?: string; detail: string; hint?: string }
export interface PrereqReport { ok: boolean; target: string; checks: PrereqCheck[] }
export interface Mount { root: string; mountPoint: string; options: string[]; fstype: string; source: string; superOptions: string[] }
type SpawnLike = (cmd: string, args: string[], opts: object) => { stdout?: string; stderr?: string; error?: Error; status?: number | null };
export interface PrereqDeps {
  run?: SpawnLike;
  findEngine?: (opts: { run?: SpawnLike }) => { name: string; path: string; version: string };
  which?: (name: string) => string | null;
  sts?: STSClient;
  mountinfo?: () => string;
  realpath?: (p: string) => string;
}
export declare const HINTS: Readonly<Record<string, string>>;
export declare function toolVersion(cmd: string, args: string[], re: RegExp, run?: SpawnLike): string | null;
export declare function parseMountinfo(text: string): Mount[];
export declare function mountFor(p: string, mounts: Mount[]): Mount | null;
export declare function atimeMode(m: Mount): 'noatime' | 'relatime' | 'strictatime' | 'atime';
export declare function checkSources(sources: string[], deps?: { mountinfo?: () => string; realpath?: (p: string) => string }): PrereqCheck[];
export declare function runPrereqs(
  opts?: { target?: 'aws' | 'local'; profile?: string; region?: string; sources?: string[] },
  deps?: PrereqDeps,
): Promise<PrereqReport>;
export declare function formatPrereqReport(report: PrereqReport, paint?: Partial<Record<'green' | 'red' | 'yellow' | 'dim' | 'bold', (s: string) => string>>): string;
export declare function assertPrereqs(report: PrereqReport): PrereqReport;
