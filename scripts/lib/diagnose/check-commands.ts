// The lines the checks send through the SSH gate (written from its command table), and how to read the gate's
// refusals in their answers.
import { GATE_COMMANDS, gateLine } from '../remote/gate-commands.js';
import type { ExecResult } from '../remote/ssh.js';

/**
 * The lines these checks send through the gate, written from its command table, and `id`, which the gate must
 * refuse. The diagnostics take no arguments from the client.
 */
export const CHECK_COMMANDS = Object.freeze({
  version: gateLine(GATE_COMMANDS.diagnostic('version')),
  usage: gateLine(GATE_COMMANDS.diagnostic('usage')),
  deviceStats: gateLine(GATE_COMMANDS.diagnostic('device-stats')),
  mount: gateLine(GATE_COMMANDS.diagnostic('mount')),
  bootLog: gateLine(GATE_COMMANDS.diagnostic('boot-log')),
  cloudInitLog: gateLine(GATE_COMMANDS.diagnostic('cloud-init-log')),
  retention: gateLine(GATE_COMMANDS.diagnostic('retention')),
  scrub: gateLine(GATE_COMMANDS.diagnostic('scrub')),
  forbidden: 'id',
  backupRoot: (root: string) => gateLine(GATE_COMMANDS.readlink(root)),
  subvolumeList: (root: string) => gateLine(GATE_COMMANDS.subvolumeList(root)),
  subvolumeShow: (path: string) => gateLine(GATE_COMMANDS.subvolumeShow(path)),
});

export const REJECTED = /rejected:/;

export function gateRefusalHint(r: ExecResult) {
  return REJECTED.test(r.stderr)
    ? `the gate refused it (${r.stderr.trim().split('\n')[0]})`
    : r.stderr.trim().split('\n').slice(-2).join(' ') || `exit ${r.code}`;
}
