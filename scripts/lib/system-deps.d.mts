import type { SpawnSyncReturns } from 'node:child_process';
type Run = (cmd: string, args: string[], opts?: object) => Pick<SpawnSyncReturns<string>, 'status' | 'stdout' | 'error'>;
export declare const PACKAGES: Readonly<Record<'demo' | 'test', Record<string, string>>>;
export declare function packagesFor(purpose: 'demo' | 'test'): Record<string, string>;
export declare function missingPackages(names: string[], run?: Run): string[];
export declare function installCommand(missing: string[]): string;
export declare function ensurePackages(
  purpose: 'demo' | 'test',
  opts?: { log?: (s: string) => void; run?: Run; isRoot?: boolean },
): { missing: string[]; installed: string[] };
