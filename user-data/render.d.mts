export declare const USER_DATA_DIR: string;
export declare const BOOT_SCRIPT: string;
export declare const SETTINGS: Readonly<Record<'volumeId' | 'backupSshPublicKey' | 'adminSshPublicKey', string>>;
export interface BootScriptSettings {
  /** EBS volume id of the data volume (vol-...), or a cdktf token that resolves to it. */
  volumeId: string;
  /** The backup key (ssh-ed25519), installed for the btrbk user behind the gate. */
  backupSshPublicKey: string;
  /** Optional key for the image's default (admin) user; empty: the default user keeps no key. */
  adminSshPublicKey?: string;
}
export declare function escapeTerraformTemplate(text: string): string;
export declare function renderBootScript(settings: BootScriptSettings, options?: { forTerraform?: boolean }): string;
