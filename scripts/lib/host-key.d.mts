export interface ConsoleHostKeys {
  fingerprints: { type: string; bits: number; fingerprint: string }[];
  keys: { type: string; keyType: string; blob: string; fingerprint: string }[];
}
export interface ScannedKey { host: string; keyType: string; blob: string; fingerprint: string }
export declare function fingerprintOfBlob(base64Blob: string): string;
export declare function blobKeyType(base64Blob: string): string | null;
export declare function parseConsoleHostKeys(consoleText: string): ConsoleHostKeys;
export declare function consoleEd25519Fingerprint(parsed: ConsoleHostKeys): string | null;
export declare function parseKeyscan(text: string): ScannedKey[];
export declare function knownHostsHost(host: string, port?: number | string): string;
export declare function knownHostsLine(host: string, port: number | string, keyType: string, blob: string): string;
export declare function verifyScannedKey(
  scanned: ScannedKey[],
  consoleText: string,
  opts?: { host?: string; instanceId?: string },
): { ok: true; fingerprint: string; key: ScannedKey } | { ok: false; pending: true; scanned: ScannedKey };
export declare function writeKnownHosts(file: string, lines: string[]): string;
export declare function readKnownHosts(file: string): { hosts: string[]; keyType: string; blob: string; fingerprint: string }[];
export declare function tcpProbe(host: string, port: number | string, timeoutMs?: number): Promise<boolean>;
export declare function sshKeyscan(host: string, port?: number | string, opts?: { bin?: string; timeoutSec?: number }): Promise<string>;
