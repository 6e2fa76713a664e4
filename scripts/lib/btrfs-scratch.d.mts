export interface RunResult { code: number; signal: string | null; stdout: string; stderr: string }
export declare function run(cmd: string, args: string[], opts?: { input?: string | Buffer; check?: boolean; what?: string }): Promise<RunResult>;
export declare function toMiB(size: number | string): number;
export interface ScratchBtrfs {
  dir: string;
  image: string;
  device: string | null;
  mountpoint: string;
  sizeMiB: number;
  mounted: boolean;
  path(...parts: string[]): string;
  destroy(): Promise<void>;
}
export declare function createScratchBtrfs(opts?: { sizeMiB?: number | string; label?: string; mountOptions?: string[]; parentDir?: string }): Promise<ScratchBtrfs>;
export declare function destroyScratchBtrfs(handle: ScratchBtrfs): Promise<void>;
export declare function withScratchBtrfs<T>(opts: Parameters<typeof createScratchBtrfs>[0], fn: (h: ScratchBtrfs) => Promise<T>): Promise<T>;
export declare function listSubvolumes(mountpoint: string): Promise<string[]>;
export declare function createSubvolume(p: string): Promise<RunResult>;
export declare function snapshotReadOnly(source: string, dest: string): Promise<RunResult>;
export declare function snapshotWritable(source: string, dest: string): Promise<RunResult>;
export declare function deleteSubvolumes(paths: string[]): Promise<RunResult>;
export declare function subvolumeInfo(p: string): Promise<{ uuid: string | null; parentUuid: string | null; receivedUuid: string | null; readonly: boolean }>;
export declare function syncFs(p: string): Promise<RunResult>;
