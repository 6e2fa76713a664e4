export declare class OperatorError extends Error {
  constructor(what: string, info?: { cause?: string; next?: string; exitCode?: number; details?: string });
  what: string;
  likelyCause: string;
  next: string;
  details: string;
  exitCode: number;
  format(): string;
}
export declare function runMain(main: () => unknown | Promise<unknown>): Promise<void>;
