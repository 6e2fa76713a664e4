// btrbk-heartbeat (user-data/btrbk-heartbeat.sh, as the host installs it), against a local stand-in for the instance
// metadata service and for CloudWatch's query API that checks what the host sends the way CloudWatch does: a
// SigV4-signed POST (service monitoring, the role's temporary credentials, the session token signed), the action,
// the namespace, the metric and its dimensions. No AWS here: the stand-in is the only peer.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { COMPLETED_BACKUPS_METRIC, METRIC_NAMESPACE } from '../../user-data/host-layout.js';
import { installedText } from '../../user-data/render.js';
import { authorizationParts, expectedSignature, imdsAnswer } from '../support/sigv4.js';

const CREDS = {
  AccessKeyId: 'ASIAHEARTBEAT0000000',
  SecretAccessKey: 'heartbeat/secret+key/0123456789abcdefghijk',
  Token: 'IQoJheartbeat-session-token//==',
};
const REGION = 'eu-central-1';
const VOLUME = 'vol-0123456789abcdef0';

interface Report {
  params: URLSearchParams;
  problems: string[];
}

async function withStandIn(status: number, run: (base: string, reports: Report[]) => Promise<void>) {
  const reports: Report[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const send = (code: number, text: string) => {
        res.writeHead(code);
        res.end(text);
      };
      const imds = imdsAnswer(req, CREDS);
      if (imds) return send(...imds);
      if (req.method === 'POST' && req.url === '/') {
        const parts = authorizationParts(req);
        const problems = parts
          ? [
              parts.keyId !== CREDS.AccessKeyId && 'key id',
              !parts.scope.endsWith(`/${REGION}/monitoring/aws4_request`) && 'region or service',
              req.headers['x-amz-security-token'] !== CREDS.Token && 'session token',
              !parts.signedHeaders.includes('x-amz-security-token') && 'token not signed',
              !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded') && 'content type',
              parts.signature !== expectedSignature(req, body, parts, CREDS.SecretAccessKey) && 'signature',
            ].filter((p): p is string => Boolean(p))
          : ['no SigV4 Authorization'];
        reports.push({ params: new URLSearchParams(body.toString('utf8')), problems });
        return problems.length
          ? send(403, `<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>`)
          : send(status, '<PutMetricDataResponse/>');
      }
      return send(404, 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    await run(`http://127.0.0.1:${port}`, reports);
  } finally {
    server.close();
  }
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heartbeat-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function heartbeat(conf: string, device: string): Promise<{ status: number | null; output: string }> {
  const script = path.join(dir, 'btrbk-heartbeat');
  fs.writeFileSync(script, installedText('btrbk-heartbeat.sh'), { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'heartbeat.conf'), conf);
  return new Promise((resolve) => {
    const child = spawn('/bin/bash', [script, '--config', path.join(dir, 'heartbeat.conf'), device], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (status) => resolve({ status, output }));
  });
}

const conf = (base: string) =>
  `REGION=${REGION}\nNAMESPACE=${METRIC_NAMESPACE}\nVOLUME_ID=${VOLUME}\nENDPOINT=${base}/\nIMDS=${base}/latest\n`;

test('a completed backup: one signed PutMetricData, CompletedBackups = 1 for the volume, and for the volume and the device', async () => {
  await withStandIn(200, async (base, reports) => {
    const r = await heartbeat(conf(base), 'alice+laptop@home');
    expect(r).toEqual({
      status: 0,
      output: `btrbk-heartbeat: reported a completed backup of alice+laptop@home (${METRIC_NAMESPACE} CompletedBackups, VolumeId ${VOLUME})\n`,
    });
    expect(reports).toHaveLength(1);
    expect(reports[0].problems).toEqual([]);
    const p = Object.fromEntries(reports[0].params);
    expect(p).toEqual({
      Action: 'PutMetricData',
      Version: '2010-08-01',
      Namespace: METRIC_NAMESPACE,
      'MetricData.member.1.MetricName': COMPLETED_BACKUPS_METRIC,
      'MetricData.member.1.Value': '1',
      'MetricData.member.1.Unit': 'Count',
      'MetricData.member.1.Dimensions.member.1.Name': 'VolumeId',
      'MetricData.member.1.Dimensions.member.1.Value': VOLUME,
      'MetricData.member.2.MetricName': COMPLETED_BACKUPS_METRIC,
      'MetricData.member.2.Value': '1',
      'MetricData.member.2.Unit': 'Count',
      'MetricData.member.2.Dimensions.member.1.Name': 'VolumeId',
      'MetricData.member.2.Dimensions.member.1.Value': VOLUME,
      'MetricData.member.2.Dimensions.member.2.Name': 'Device',
      'MetricData.member.2.Dimensions.member.2.Value': 'alice+laptop@home',
    });
  });
});

test('CloudWatch refusing the report is said, and the heartbeat still exits 0 (it never fails a backup)', async () => {
  await withStandIn(400, async (base, reports) => {
    const r = await heartbeat(conf(base), 'laptop');
    expect(r.status).toBe(0);
    expect(r.output).toMatch(/CloudWatch did not take the report of laptop's backup: .*400$/m);
    expect(reports).toHaveLength(1);
  });
});

test('no REGION (the local target): nothing is sent; a bad device name is refused before anything', async () => {
  await withStandIn(200, async (base, reports) => {
    expect(
      await heartbeat(
        `NAMESPACE=${METRIC_NAMESPACE}\nVOLUME_ID=${VOLUME}\nENDPOINT=${base}/\nIMDS=${base}/latest\n`,
        'laptop',
      ),
    ).toEqual({ status: 0, output: '' });
    expect((await heartbeat(conf(base), '../etc')).output).toMatch(/not a device name: '\.\.\/etc'/);
    expect((await heartbeat(conf(base), '..')).output).toMatch(/not a device name/);
    expect(reports).toHaveLength(0);
  });
});
