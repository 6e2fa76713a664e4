// AWS Signature Version 4 as AWS checks a header-signed request: the signature the request should carry, recomputed
// from the secret key. For the tests' stand-ins of S3 and CloudWatch (no AWS here).
import crypto from 'node:crypto';
import type http from 'node:http';

const hmac = (key: Buffer | string, data: string) => crypto.createHmac('sha256', key).update(data).digest();
export const sha256Hex = (data: string | Buffer) => crypto.createHash('sha256').update(data).digest('hex');

export interface SignedParts {
  keyId: string;
  scope: string;
  signedHeaders: string[];
  signature: string;
}

/** The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`, or null. */
export function authorizationParts(req: http.IncomingMessage): SignedParts | null {
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8}\/[^/]+\/[^/]+\/aws4_request), ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      String(req.headers.authorization ?? ''),
    );
  return m ? { keyId: m[1], scope: m[2], signedHeaders: m[3].split(';'), signature: m[4] } : null;
}

/** The signature of `req` with `body` for `secret` (the payload hash is the body's, as the service computes it). */
export function expectedSignature(req: http.IncomingMessage, body: Buffer, parts: SignedParts, secret: string): string {
  const canonicalHeaders = parts.signedHeaders
    .map((h) => `${h}:${String(req.headers[h]).trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const url = new URL(req.url!, 'http://x');
  const canonical = [
    req.method,
    url.pathname,
    url.searchParams.toString(),
    canonicalHeaders,
    parts.signedHeaders.join(';'),
    sha256Hex(body),
  ].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', String(req.headers['x-amz-date']), parts.scope, sha256Hex(canonical)].join('\n');
  const [day, region, service] = parts.scope.split('/');
  const kSigning = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
  return crypto.createHmac('sha256', kSigning).update(toSign).digest('hex');
}

/** A stand-in of the instance metadata service (IMDSv2) with one role: its answer to `req`, or null for another path. */
export function imdsAnswer(
  req: http.IncomingMessage,
  creds: Record<string, string>,
  role = 'btrbk-host-role',
  token = 'imds-token',
): [number, string] | null {
  if (req.method === 'PUT' && req.url === '/latest/api/token') return [200, token];
  if (!req.url?.startsWith('/latest/meta-data/')) return null;
  if (req.headers['x-aws-ec2-metadata-token'] !== token) return [401, ''];
  if (req.url === '/latest/meta-data/iam/security-credentials/') return [200, role];
  if (req.url === `/latest/meta-data/iam/security-credentials/${role}`)
    return [200, JSON.stringify({ Code: 'Success', Type: 'AWS-HMAC', ...creds }, null, 2)];
  return [404, ''];
}
