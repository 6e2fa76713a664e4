export declare const CONTAINER_NAME: string;
export declare const DEFAULT_PORT: number;
export declare const DEFAULT_VOLUME_SIZE: string;
export declare const SUITE: string;
export declare const MIRROR: string;
export declare const ROOTFS_PACKAGES: readonly string[];
export declare const BACKUP_PATH: string;
export declare const BOOT_LOG_IN_CONTAINER: string;
export declare const BOOT_SCRIPT_IN_CONTAINER: string;
export declare const PAYLOAD_IN_CONTAINER: string;
export declare const CLOUD_INIT_OUTPUT_LOG: string;
export declare const READY_MARKER: string;
export declare const FAILED_MARKER: string;

export interface LocalTargetPaths {
  name: string;
  port?: number;
  cacheDir: string;
  rootfs: string;
  aptArchives: string;
  stateDir: string;
  stateFile: string;
  lockFile: string;
  volumeImage: string;
  sshKey: string;
  knownHosts: string;
  consoleLog: string;
  bootLog: string;
  pidFile: string;
  upper: string;
  work: string;
  root: string;
  envFile: string;
}

export interface LocalTargetStatus {
  running: boolean;
  healthy: boolean;
  nspawnPid: number | null;
  leaderPid: number | null;
  port: number | null;
  sshBanner: string | null;
  volumeId: string | null;
  volumeImage: string | null;
  volumeBytes: number | null;
  loopDevices: string[];
  instanceMounted: boolean;
  mounted: boolean;
  mount: { fstype: string; source: string } | null;
  boot: { ready: Record<string, string> | null; failed: Record<string, string> | null };
  envFile: string | null;
  stateDir: string;
  consoleLog: string;
  bootLog: string;
}

export interface UpResult extends LocalTargetStatus {
  alreadyUp: boolean;
  timings: { rootfsSeconds?: number; bootSeconds?: number; bootScriptSeconds?: number; totalSeconds?: number };
}

export interface DownResult {
  wasRunning: boolean;
  purged: boolean;
  volumeImage: string;
  volumeKept: boolean;
  seconds: number;
}

type Env = Record<string, string | undefined>;
interface Common {
  paths?: LocalTargetPaths;
  env?: Env;
  onProgress?: (line: string) => void;
}

export declare function localTargetPaths(env?: Env): LocalTargetPaths;
export declare function ebsByIdPath(volumeId: string): string;
export declare function newVolumeId(bytes?: Uint8Array): string;
export declare function rootfsStamp(): { suite: string; mirror: string; variant: string; packages: string[]; layout: number; hash: string };
export declare function parseSize(text: string): number;
export declare function localSshdDropin(port: number): string;
export declare function localConnection(info: { port: number; sshKey: string; knownHosts: string; volumeId: string }): Record<string, string>;
export declare function parseMarker(text: string): Record<string, string>;
export declare function missingPrerequisites(opts?: { isRoot?: boolean; filesystems?: string }): { what: string; fix: string }[];
export declare function sshBanner(port: number, opts?: { timeoutMs?: number }): Promise<string | null>;
export declare function containerExec(leader: number, argv: string[], opts?: { input?: string; allowFail?: boolean; timeout?: number }): { status: number | null; stdout: string; stderr: string };
export declare function ensureRootfs(opts?: { paths?: LocalTargetPaths; onProgress?: (line: string) => void }): Promise<{ built: boolean; seconds: number }>;
export declare function up(opts?: Common & { port?: number; volumeSize?: string }): Promise<UpResult>;
export declare function down(opts?: Common & { purge?: boolean }): Promise<DownResult>;
export declare function status(opts?: { paths?: LocalTargetPaths; env?: Env }): Promise<LocalTargetStatus>;
export declare function rerunBootScript(opts?: { paths?: LocalTargetPaths; env?: Env }): Promise<{ status: number | null; output: string }>;
export declare function execInTarget(argv: string[], opts?: { paths?: LocalTargetPaths; env?: Env; input?: string; timeout?: number }): { status: number | null; stdout: string; stderr: string };
