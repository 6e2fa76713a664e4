// The missed-backup alarm's signal, end to end on the local target (real sshd, gate, btrbk-receive, root): a
// complete receive through the gate makes the host report CompletedBackups for its volume and the device; a failed
// receive (a cut stream) and the tools' selftest area report nothing. CloudWatch and the metadata service are a
// stand-in on this machine's loopback (the container shares its network), which checks the SigV4 signature.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import { jest } from '@jest/globals';
import { LOCAL_ENV_FILE, readConnection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, HEARTBEAT_CONF, METRIC_NAMESPACE, SELFTEST_DIR_NAME } from '../../user-data/host-layout.js';
import { execInTarget } from '../../scripts/lib/local-target/local-target.js';
import { simpleSubvolume } from '../support/send-stream.js';
import { authorizationParts, expectedSignature, imdsAnswer } from '../support/sigv4.js';
import { keySshArgs, waitUntil } from './btrbk-client-harness.js';

jest.setTimeout(5 * 60_000);
const conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);
const tag = crypto.randomBytes(4).toString('hex');
const DEVICE = `hb-${tag}`;
const SELFTEST = `${BACKUP_ROOT}/${SELFTEST_DIR_NAME}/hb-${tag}`;
const CREDS = {
  AccessKeyId: 'ASIALOCALTARGET00000',
  SecretAccessKey: 'local/target+secret/0123456789abcdefghij',
  Token: 'IQoJlocal-target-token==',
};
const reports: Array<{ params: URLSearchParams; signed: boolean }> = [];
let server: http.Server;
let saved = '';

const ssh = (command: string, input: Buffer) =>
  spawnSync('ssh', [...keySshArgs(conn), '--', command], { input, encoding: 'utf8', timeout: 120_000 });
const root = (script: string, ...args: string[]) => execInTarget(['/bin/bash', '-c', script, 'bash', ...args]);

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const send = (code: number, text: string) => {
        res.writeHead(code);
        res.end(text);
      };
      const imds = imdsAnswer(req, CREDS);
      if (imds) return send(...imds);
      const body = Buffer.concat(chunks);
      const parts = authorizationParts(req);
      const signed = Boolean(parts && parts.signature === expectedSignature(req, body, parts, CREDS.SecretAccessKey));
      reports.push({ params: new URLSearchParams(body.toString('utf8')), signed });
      return send(signed ? 200 : 403, '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  saved = root('cat "$1"', HEARTBEAT_CONF).stdout;
  expect(saved).toMatch(/^REGION=\nNAMESPACE=BtrbkBackupHost\nVOLUME_ID=vol-[0-9a-f]+\n$/); // the local target: off
  const volume = /VOLUME_ID=(\S+)/.exec(saved)![1];
  const r = root(
    'f=$1; shift; printf "%s\\n" "$@" > "$f"',
    HEARTBEAT_CONF,
    'REGION=us-west-1',
    `NAMESPACE=${METRIC_NAMESPACE}`,
    `VOLUME_ID=${volume}`,
    `ENDPOINT=http://127.0.0.1:${port}/`,
    `IMDS=http://127.0.0.1:${port}/latest`,
  );
  expect(r.status).toBe(0);
  for (const dir of [`${BACKUP_ROOT}/${DEVICE}/home`, SELFTEST])
    expect(ssh(`mkdir -p '${dir}'`, Buffer.alloc(0)).status).toBe(0);
});

afterAll(async () => {
  root('printf %s "$2" > "$1"', HEARTBEAT_CONF, saved);
  root(
    'for s in "$@"; do for v in "$s"/*; do [ -d "$v" ] && { btrfs property set -f -ts "$v" ro false; btrfs subvolume delete "$v"; }; done; done >/dev/null 2>&1; rm -rf "$1" "$2"',
    `${BACKUP_ROOT}/${DEVICE}`,
    SELFTEST,
    `${BACKUP_ROOT}/${DEVICE}/home`,
  );
  server?.close();
});

test('a complete receive through the gate is reported, signed, for the volume and the device; a cut one and selftest are not', async () => {
  const ok = ssh(
    `sudo -n btrfs receive '${BACKUP_ROOT}/${DEVICE}/home/'`,
    simpleSubvolume('home.1', { 'f.txt': 'x' }).stream,
  );
  expect({ status: ok.status, stderr: ok.stderr }).toMatchObject({ status: 0 });
  await waitUntil(() => reports.length >= 1, 30_000, 'the report of the completed backup');
  expect(reports[0].signed).toBe(true);
  expect(reports[0].params.get('Action')).toBe('PutMetricData');
  expect(reports[0].params.get('MetricData.member.2.Dimensions.member.2.Value')).toBe(DEVICE);
  expect(execInTarget(['journalctl', '-q', '-t', 'btrbk-heartbeat', '--since', '-2min', '-o', 'cat']).stdout).toMatch(
    new RegExp(`reported a completed backup of ${DEVICE}`),
  );

  const cut = simpleSubvolume('home.2', { 'f.txt': 'y'.repeat(4000) }).stream;
  expect(ssh(`sudo -n btrfs receive '${BACKUP_ROOT}/${DEVICE}/home/'`, cut.subarray(0, 200)).status).not.toBe(0);
  expect(ssh(`sudo -n btrfs receive '${SELFTEST}/'`, simpleSubvolume('probe', { 'f.txt': 'z' }).stream).status).toBe(0);
  await new Promise((r) => setTimeout(r, 3000)); // time for a report that should not come
  expect(reports).toHaveLength(1);
});
