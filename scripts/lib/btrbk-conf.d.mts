export interface Retention { snapshotPreserveMin: string; snapshotPreserve: string; targetPreserveMin: string; targetPreserve: string }
export declare const DEFAULT_RETENTION: Readonly<Retention>;
export declare function btrbkTargetUrl(conn: Record<string, string>): string;
export declare function sshConfigBlock(conn: Record<string, string>): string;
export declare function renderBtrbkConf(
  conn: Record<string, string>,
  opts?: { volume?: string; subvolume?: string; snapshotDir?: string; retention?: Partial<Retention>; streamBuffer?: string; generatedAt?: string; appendOnly?: boolean },
): string;
