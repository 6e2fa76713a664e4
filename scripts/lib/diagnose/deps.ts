// What the checks take from the outside (SSH, AWS, the file system), each defaulting to the real thing, so every
// diagnosis is unit-tested with fakes.
import type fs from 'node:fs';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { Connection } from '../core/connection.js';
import type { ReadTextFile, SshConnection, TcpProbeResult } from '../remote/ssh.js';
import type { Session } from './session.js';

/** Everything the checks take from the outside; each defaults to the real thing (tests pass fakes). */
export interface CheckDeps {
  /** EC2 client for the connection's region (default: one for the connection's region and `profile`). */
  ec2?: EC2Client;
  /** EC2 client for another region, to look for an instance that is not where the connection file says. */
  ec2ForRegion?: (region: string) => EC2Client;
  /** AWS profile for the default clients and the error advice. */
  profile?: string;
  /** Log lines check-logs shows (default 40). */
  lines?: number;
  connect?: (conn: Connection) => Promise<SshConnection>;
  probe?: (host: string, port: number, opts?: { timeoutMs?: number }) => Promise<TcpProbeResult>;
  /** fs.statSync of the private key file. */
  stat?: (file: string) => Pick<fs.Stats, 'isFile' | 'mode' | 'uid'>;
  /** This process's effective uid (default process.geteuid()). */
  uid?: number;
  /** Reads the pinned host keys file. */
  readFile?: ReadTextFile;
  readLocalBootLog?: () => Promise<string | null>;
  getConsoleOutput?: (ec2: EC2Client, instanceId: string, opts?: { profile?: string }) => Promise<string>;
  /** A session to use (runChecks then leaves it open). */
  session?: Session;
  /** Per gate command (default 30 s). */
  execTimeoutMs?: number;
  /** For the TCP probe (default 5 s). */
  tcpTimeoutMs?: number;
}
