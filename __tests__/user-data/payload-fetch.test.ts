// The boot script's fetch of the host payload (bootstrap.sh fetch_payload), against a local stand-in for the
// instance metadata service (IMDSv2: token, role, temporary credentials) and for S3 that checks the request the way
// S3 does: an AWS Signature Version 4 over the method, path, the signed headers (the session token and the payload
// hash among them) and the date, recomputed here from the secret key. No AWS: the stand-in is the only peer (the
// real S3 endpoint was not reachable from this machine; see README). The real curl runs, with --aws-sigv4.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { renderBootScript } from '../../user-data/render.js';
import { authorizationParts, expectedSignature } from '../support/sigv4.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8m0Xh7y2mVJ3p0c8t8tq7s2l4z3T0j3a1cQ9bV0hX4 laptop';
const CREDS = {
  AccessKeyId: 'ASIATESTACCESSKEY000',
  SecretAccessKey: 'test/secret+key/0123456789abcdefghijklmnopq',
  Token: 'IQoJb3JpZ2luX2VjEPT//////////test-session-token==',
};
const REGION = 'us-west-1';
const OBJECT = Buffer.from('the payload bytes\n');
const EMPTY_SHA256 = crypto.createHash('sha256').update('').digest('hex');

/** The fetch_payload function of the rendered boot script, runnable alone (die and log print, die exits). */
function fetchFunction(): string {
  const script = renderBootScript({ volumeId: 'vol-0123456789abcdef0', backupSshPublicKey: KEY });
  const start = script.indexOf('\nfetch_payload() {\n');
  const end = script.indexOf('\n}\n', start);
  expect(start).toBeGreaterThan(0);
  return script.slice(start, end + 3);
}

interface Seen {
  token?: string;
  authorization?: string;
  checks: string[];
}

async function withStandIn(
  opts: { roleAfter?: number; denyFirst?: number },
  run: (base: string, seen: Seen) => Promise<void>,
) {
  const seen: Seen = { checks: [] };
  let roleAsks = 0;
  let objectAsks = 0;
  const server = http.createServer((req, res) => {
    const send = (code: number, body: string | Buffer) => {
      res.writeHead(code);
      res.end(body);
    };
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      if (req.headers['x-aws-ec2-metadata-token-ttl-seconds'] !== '300') return send(400, 'no ttl');
      seen.token = 'imds-token-1';
      return send(200, seen.token);
    }
    if (req.url!.startsWith('/latest/meta-data/')) {
      if (req.headers['x-aws-ec2-metadata-token'] !== seen.token) return send(401, 'IMDSv2 token missing');
      if (req.url === '/latest/meta-data/iam/security-credentials/') {
        roleAsks += 1;
        return roleAsks > (opts.roleAfter ?? 0) ? send(200, 'btrbk-host-role\n') : send(404, 'not yet');
      }
      if (req.url === '/latest/meta-data/iam/security-credentials/btrbk-host-role') {
        return send(
          200,
          JSON.stringify({ Code: 'Success', Type: 'AWS-HMAC', ...CREDS, Expiration: '2026-12-05T20:00:00Z' }, null, 2),
        );
      }
      return send(404, 'no such metadata');
    }
    if (req.url === '/host-payload/abc.sh.gz') {
      objectAsks += 1;
      seen.authorization = String(req.headers.authorization ?? '');
      const parts = authorizationParts(req);
      if (!parts) return send(403, `bad Authorization: ${seen.authorization}`);
      const problems = [
        parts.keyId !== CREDS.AccessKeyId && 'key id',
        !parts.scope.includes(`/${REGION}/s3/`) && 'region or service',
        req.headers['x-amz-security-token'] !== CREDS.Token && 'session token',
        !parts.signedHeaders.includes('x-amz-security-token') && 'token not signed',
        !parts.signedHeaders.includes('host') && 'host not signed',
        req.headers['x-amz-content-sha256'] !== EMPTY_SHA256 && 'payload hash',
        parts.signature !== expectedSignature(req, Buffer.alloc(0), parts, CREDS.SecretAccessKey) && 'signature',
      ].filter(Boolean);
      seen.checks = problems as string[];
      if (problems.length) return send(403, `SignatureDoesNotMatch: ${problems.join(', ')}`);
      if (objectAsks <= (opts.denyFirst ?? 0)) return send(403, 'AccessDenied (the role policy is not there yet)');
      return send(200, OBJECT);
    }
    return send(404, 'no such key');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    await run(`http://127.0.0.1:${port}`, seen);
  } finally {
    server.close();
  }
}

function runFetch(base: string, out: string): Promise<{ status: number | null; output: string }> {
  const program = `die() { printf 'DIE: %s | %s | %s\\n' "$@"; exit 1; }\nlog() { printf 'LOG: %s\\n' "$*"; }\nsleep() { :; }\n${fetchFunction()}\nfetch_payload "$1"`;
  const env = {
    PATH: process.env.PATH,
    BTRBK_IMDS_URL: `${base}/latest`,
    BTRBK_PAYLOAD_URL: `${base}/host-payload/abc.sh.gz`,
    BTRBK_PAYLOAD_REGION: REGION,
  };
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', program, 'fetch', out], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (status) => resolve({ status, output }));
  });
}

describe("the boot script's payload fetch (IMDSv2 role credentials, a SigV4-signed S3 GET), against a local stand-in", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'payload-fetch-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("signs the GET with the role's temporary credentials, as S3 checks it, and writes the object", async () => {
    await withStandIn({}, async (base, seen) => {
      const r = await runFetch(base, path.join(dir, 'p.gz'));
      expect({ status: r.status, output: r.output, problems: seen.checks }).toEqual({
        status: 0,
        output: `LOG: reading ${base}/host-payload/abc.sh.gz as role btrbk-host-role\n`,
        problems: [],
      });
      expect(fs.readFileSync(path.join(dir, 'p.gz'))).toEqual(OBJECT);
      expect(seen.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=ASIATESTACCESSKEY000\/\d{8}\/us-west-1\/s3\/aws4_request/,
      );
    });
  });

  test("waits for the instance profile's credentials and for the role's policy to reach S3 (a few 404s and 403s)", async () => {
    await withStandIn({ roleAfter: 3, denyFirst: 2 }, async (base) => {
      const r = await runFetch(base, path.join(dir, 'p.gz'));
      expect(r.status).toBe(0);
      expect(fs.readFileSync(path.join(dir, 'p.gz'))).toEqual(OBJECT);
    });
  });

  test('no role on the instance: says what is missing and what to do', async () => {
    await withStandIn({ roleAfter: 1000 }, async (base) => {
      const r = await runFetch(base, path.join(dir, 'p.gz'));
      expect(r.status).toBe(1);
      expect(r.output).toMatch(
        /DIE: the instance has no role credentials in its metadata \(role 'none' after 30 tries\) \| the instance profile is missing or was removed \| re-deploy the stack/,
      );
    });
  });

  test('S3 keeps refusing: says so, with the likely causes, after 8 tries', async () => {
    await withStandIn({ denyFirst: 1000 }, async (base) => {
      const r = await runFetch(base, path.join(dir, 'p.gz'));
      expect(r.status).toBe(1);
      expect(r.output).toMatch(/DIE: cannot read the host payload from .*\(8 tries\) \| S3 refused the request/);
    });
  });
});
