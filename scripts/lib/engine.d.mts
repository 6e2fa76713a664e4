export interface Engine {
  name: 'tofu' | 'terraform';
  path: string;
  version: string;
}
export interface EngineResult {
  status: number | null;
  stdout: string;
  stderr: string;
  command: string;
}
export interface PreparedStack {
  engine: Engine;
  mirror: string | null;
  env: NodeJS.ProcessEnv;
  run(args: string[], opts?: { timeoutMs?: number }): EngineResult;
  init(): EngineResult;
  validate(): EngineResult;
  test(args?: string[]): EngineResult;
}
type SpawnLike = (cmd: string, args: string[], opts: object) => { stdout?: string; stderr?: string; error?: Error; status?: number | null };
export declare const ENGINES: readonly ['tofu', 'terraform'];
export declare const AWS_PROVIDER_ADDRESSES: readonly string[];
export declare function which(name: string, env?: NodeJS.ProcessEnv): string | null;
export declare function parseEngineVersion(text: string | undefined): string | null;
export declare function findEngine(opts?: { env?: NodeJS.ProcessEnv; run?: SpawnLike }): Engine;
export declare function mirrorCandidates(env?: NodeJS.ProcessEnv): string[];
export declare function findProviderMirror(opts?: { env?: NodeJS.ProcessEnv }): string | null;
export declare function writeCliConfig(dir: string, opts?: { mirror?: string | null }): string;
export declare function engineEnv(cliConfigFile: string | null, env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
export declare function runEngine(engine: Engine, args: string[], opts?: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): EngineResult;
export declare function prepareStackDir(
  stackDir: string,
  opts?: { env?: NodeJS.ProcessEnv; requireMirror?: boolean; workDir?: string },
): PreparedStack;
export declare function parseTestOutput(text: string | undefined): { files: Record<string, string>; runs: Record<string, string> };
