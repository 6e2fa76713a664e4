// AWS SDK v3 clients for the operator scripts: credentials from the default Node chain (environment, shared
// config/credentials files with AWS_PROFILE or --profile, SSO, process, web identity, container/instance
// roles), region from --region, else the tfvars, else the profile. Errors become OperatorErrors.
import { EC2Client, GetConsoleOutputCommand } from '@aws-sdk/client-ec2';
import { PricingClient } from '@aws-sdk/client-pricing';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { OperatorError } from '../core/errors.js';

/** STS answers in every region; this one is used when nothing else names a region. */
export const FALLBACK_REGION = 'us-east-1';

export interface AwsClientOptions {
  /** A named profile of the shared config files; else AWS_PROFILE, else the default chain. */
  profile?: string;
  region?: string;
}

/** What the SDK clients are built with (a subset of the clients' own configuration). */
export interface AwsClientConfig {
  region: string;
  credentials: ReturnType<typeof fromNodeProviderChain>;
  maxAttempts: number;
}

/** The identity behind the credentials. The fields are optional because the SDK's response types say so. */
export interface CallerIdentity {
  account?: string;
  arn?: string;
  userId?: string;
}

/** Client configuration honouring an explicit profile (else AWS_PROFILE, else default) and region. */
export function clientConfig({ profile, region }: AwsClientOptions = {}): AwsClientConfig {
  return {
    region: region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || FALLBACK_REGION,
    credentials: fromNodeProviderChain(profile ? { profile } : {}),
    maxAttempts: 3,
  };
}

export const makeStsClient = (opts: AwsClientOptions = {}): STSClient => new STSClient(clientConfig(opts));
export const makeEc2Client = (opts: AwsClientOptions = {}): EC2Client => new EC2Client(clientConfig(opts));
/** The Price List API's endpoint region (it also answers in ap-south-1 and eu-central-1), whatever region it prices. */
export const PRICING_API_REGION = 'us-east-1';
export const makePricingClient = (opts: AwsClientOptions = {}): PricingClient =>
  new PricingClient(clientConfig({ ...opts, region: PRICING_API_REGION }));

const profileHint = (profile: string | undefined): string =>
  profile ? ` (profile ${profile})` : process.env.AWS_PROFILE ? ` (AWS_PROFILE=${process.env.AWS_PROFILE})` : '';

/** Turns an SDK or credential-chain error into an OperatorError that says what to do. */
export function awsError(err: unknown, action: string, { profile }: { profile?: string } = {}): OperatorError {
  const e = (err ?? {}) as { name?: unknown; Code?: unknown; message?: unknown; code?: unknown };
  const name = String(e.name ?? e.Code ?? 'Error');
  const msg = e.message != null ? String(e.message) : String(err);
  const p = profileHint(profile);
  if (
    name === 'CredentialsProviderError' ||
    (/Could not load credentials|credential/i.test(msg) && !/token/i.test(name))
  ) {
    return new OperatorError(`no AWS credentials found${p}`, {
      cause: msg,
      next: 'run `aws configure` (or `aws sso login --profile NAME`), or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; pass --profile NAME to pick a profile',
    });
  }
  if (/ExpiredToken|TokenRefreshRequired|SSOTokenProviderFailure|expired/i.test(`${name} ${msg}`)) {
    return new OperatorError(`the AWS session has expired${p}`, {
      cause: msg,
      next: 'log in again: aws sso login (or refresh your temporary credentials), then re-run',
    });
  }
  if (/InvalidClientTokenId|SignatureDoesNotMatch|UnrecognizedClient|AuthFailure/.test(name)) {
    return new OperatorError(`AWS refused the credentials${p}`, {
      cause: `${name}: ${msg}`,
      next: 'check the access key id and secret (aws configure list), or pick another --profile',
    });
  }
  if (/AccessDenied|UnauthorizedOperation/.test(name)) {
    return new OperatorError(`AWS denied ${action}${p}`, {
      cause: `${name}: ${msg}`,
      next: `grant the identity permission for ${action} (see docs/SETUP.md "Permissions")`,
    });
  }
  if (
    /ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|NetworkingError|TimeoutError/.test(`${name} ${msg} ${e.code ?? ''}`)
  ) {
    return new OperatorError(`cannot reach AWS for ${action}`, {
      cause: msg,
      next: 'check the network connection and any proxy, then re-run',
    });
  }
  return new OperatorError(`${action} failed${p}`, {
    cause: `${name}: ${msg}`,
    next: 're-run with BTRBK_AWS_DEBUG=1 for details',
  });
}

/** STS GetCallerIdentity. */
export async function getCallerIdentity(
  sts: STSClient,
  { profile }: { profile?: string } = {},
): Promise<CallerIdentity> {
  try {
    const r = await sts.send(new GetCallerIdentityCommand({}));
    return { account: r.Account, arn: r.Arn, userId: r.UserId };
  } catch (err) {
    throw awsError(err, 'sts:GetCallerIdentity', { profile });
  }
}

/**
 * EC2 GetConsoleOutput, decoded: the newest output (Latest, Nitro instances) with a fallback to the buffered
 * output where Latest is not supported. Resolves '' while the instance has not produced any yet.
 */
export async function getConsoleOutput(
  ec2: EC2Client,
  instanceId: string,
  { profile }: { profile?: string } = {},
): Promise<string> {
  const fetch = async (latest: boolean): Promise<string> => {
    const r = await ec2.send(
      new GetConsoleOutputCommand({ InstanceId: instanceId, ...(latest ? { Latest: true } : {}) }),
    );
    return r.Output ? Buffer.from(r.Output, 'base64').toString('utf8') : '';
  };
  try {
    return await fetch(true);
  } catch (err) {
    if (/UnsupportedOperation|InvalidParameter/.test(String((err as { name?: unknown } | null)?.name ?? ''))) {
      try {
        return await fetch(false);
      } catch (err2) {
        throw awsError(err2, 'ec2:GetConsoleOutput', { profile });
      }
    }
    throw awsError(err, 'ec2:GetConsoleOutput', { profile });
  }
}
