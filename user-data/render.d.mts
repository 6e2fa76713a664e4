export declare const USER_DATA_DIR: string;
export declare const BOOT_SCRIPT: string;
export type SettingKey = 'volumeId' | 'backupSshPublicKey' | 'adminSshPublicKey' | 'appendOnly' | 'retention' | 'retentionMin';
export declare const SETTINGS: Readonly<Record<SettingKey, string>>;
export declare const SETTING_DEFAULTS: Readonly<Record<'adminSshPublicKey' | 'appendOnly' | 'retention' | 'retentionMin', string>>;
export interface BootScriptSettings {
  /** EBS volume id of the data volume (vol-...), or a cdktf token that resolves to it. */
  volumeId: string;
  /** The backup key (ssh-ed25519), installed for the btrbk user behind the gate. */
  backupSshPublicKey: string;
  /** Optional key for the image's default (admin) user; empty: the default user keeps no key. */
  adminSshPublicKey?: string;
  /** 'true' (default): the backup key cannot delete on the host and the host prunes by its own clock. */
  appendOnly?: string;
  /** The host's retention policy in btrbk's syntax (default '48h 14d 8w 12m'). */
  retention?: string;
  /** Every backup younger than this is kept (btrbk's preserve_min syntax, default '1d'). */
  retentionMin?: string;
}
export declare function escapeTerraformTemplate(text: string): string;
export declare function renderBootScript(
  settings: BootScriptSettings,
  options?: { forTerraform?: boolean; payload?: 'inline' | 'tags' | 'file'; payloadFile?: string },
): string;
export declare const PAYLOAD_TAG_PREFIX: string;
export declare const PAYLOAD_TAG_VALUE_MAX: number;
export declare const PAYLOAD_TAGS_MAX: number;
export interface HostPayload {
  /** The `# @payload` functions as one shell text (what the boot script sources). */
  text: string;
  sha256: string;
  /** base64 of its gzip */
  base64: string;
  /** The instance tags that carry it: btrbk-payload-00, -01, ... */
  tags: Record<string, string>;
}
export declare function renderHostPayload(): HostPayload;
export declare function installedText(file: string): string;
