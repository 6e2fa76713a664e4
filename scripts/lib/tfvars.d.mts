export type TfvarValue = string | number | boolean | Array<string | number | boolean>;
export interface TfvarsIssue { key: string; message: string }
export interface TfvarsValues {
  ssh_public_key: string;
  admin_ssh_public_key: string;
  aws_region: string;
  availability_zone: string;
  key_pair_name: string;
  ebs_volume_size: number;
  allowed_ssh_cidrs: string[];
  instance_type: string;
  append_only: boolean;
  retention: string;
  retention_min: string;
}
export interface TfvarsResult { ok: boolean; values: Partial<TfvarsValues>; errors: TfvarsIssue[]; warnings: TfvarsIssue[]; unknown: string[] }
export declare const ED25519_KEY_SOURCE: string;
export declare const REGION_SOURCE: string;
export declare const AVAILABILITY_ZONE_SOURCE: string;
export declare const KEY_PAIR_NAME_SOURCE: string;
export declare const INSTANCE_TYPE_SOURCE: string;
export declare const RETENTION_UNITS: string;
export declare const RETENTION_SOURCE: string;
export declare const RETENTION_MIN_SOURCE: string;
export declare const GP3_MIN_GIB: number;
export declare const GP3_MAX_GIB: number;
export declare const ED25519_KEY_RE: RegExp;
export declare const REGION_RE: RegExp;
export declare const AVAILABILITY_ZONE_RE: RegExp;
export declare const KEY_PAIR_NAME_RE: RegExp;
export declare const INSTANCE_TYPE_RE: RegExp;
export declare const RETENTION_RE: RegExp;
export declare const RETENTION_MIN_RE: RegExp;
export declare const VARIABLES: Readonly<Record<keyof TfvarsValues, { type: 'string' | 'number' | 'boolean' | 'list'; default: unknown }>>;
export declare const KEYGEN_COMMAND: string;
export declare const DEFAULT_TFVARS: string;
export declare function parseTfvars(text: string, source?: string): Record<string, TfvarValue>;
export declare function parseTfvarsJson(text: string, source?: string): Record<string, unknown>;
export declare function loadTfvars(file?: string, dir?: string): { file: string; vars: Record<string, unknown> };
export declare function isCidr(cidr: unknown): boolean;
export declare function isEd25519KeyLine(line: unknown): boolean;
export declare function validateTfvars(vars: Record<string, unknown>): TfvarsResult;
export declare function assertTfvarsValid(result: TfvarsResult, file?: string): TfvarsValues;
export declare function keyBlob(line: string | undefined): string;
export declare function findPrivateKeyFor(publicKey: string, opts?: { explicit?: string; sshDir?: string }): { file: string; matched: boolean };
