type Conn = Record<string, string>;
type RemoteRun = (conn: Conn, command: string) => Promise<{ code: number; stdout: string; stderr: string }>;
export interface BackupEntry { path: string; receivedUuid: string; complete: boolean }
export declare const VOLUME_MOUNT: string;
export declare function parseSubvolumeListR(text: string, mount?: string): BackupEntry[];
export declare function listBackups(conn: Conn, dir: string, opts?: { run?: RemoteRun }): Promise<BackupEntry[]>;
export declare function findIncompleteBackups(conn: Conn, dir: string, opts?: { run?: RemoteRun }): Promise<BackupEntry[]>;
export declare function deleteIncompleteBackups(conn: Conn, dir: string, opts?: { run?: RemoteRun }): Promise<string[]>;
export declare function restoreBackup(
  conn: Conn,
  backupPath: string,
  localDir: string,
  opts?: { parent?: string | null; onProgress?: (p: { bytes: number; rate: number; eta: number | null; total: number | null; done: boolean }) => void; total?: number | null },
): Promise<{ path: string; bytes: number; durationMs: number; receivedUuid: string }>;
export declare function makeLive(restoredSnapshot: string, livePath: string): Promise<{ uuid: string | null; parentUuid: string | null; receivedUuid: string | null; readonly: boolean }>;
