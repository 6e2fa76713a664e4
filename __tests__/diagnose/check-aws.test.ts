// check-aws against recorded-shape EC2 responses (aws-sdk-client-mock): the AWS API cannot exist here, so it is
// mocked at the SDK boundary, with responses shaped like the real DescribeInstances/DescribeInstanceStatus/
// DescribeVolumes/DescribeRegions answers.
import {
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  DescribeRegionsCommand,
  DescribeVolumesCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { checkAws } from '../../scripts/lib/diagnose/check-aws.js';
import { runChecks } from '../../scripts/lib/diagnose/checks.js';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';

const ID = 'i-0a1b2c3d4e5f67890';
const VOL = 'vol-0fedcba9876543210';
const conn = {
  host: '203.0.113.7',
  user: 'btrbk',
  keyFile: '/keys/id_ed25519',
  targetUrl: `ssh://203.0.113.7${BACKUP_ROOT}/`,
  backupRoot: BACKUP_ROOT,
  instanceId: ID,
  volumeId: VOL,
  region: 'eu-central-1',
  port: 22,
  knownHostsFile: '/pins/known_hosts',
};

const instance = (state: string, extra: object = {}) => ({
  $metadata: {
    httpStatusCode: 200,
    requestId: 'f3b2c1d0-0000-4000-8000-000000000001',
    attempts: 1,
    totalRetryDelay: 0,
  },
  Reservations: [
    {
      ReservationId: 'r-0123456789abcdef0',
      OwnerId: '123456789012',
      Groups: [],
      Instances: [
        {
          InstanceId: ID,
          ImageId: 'ami-0abcdef1234567890',
          InstanceType: 't4g.small',
          Placement: { AvailabilityZone: 'eu-central-1a', Tenancy: 'default' },
          State: {
            Code: { running: 16, stopped: 80, pending: 0, stopping: 64, terminated: 48 }[state] ?? 16,
            Name: state,
          },
          PublicIpAddress: state === 'running' ? '203.0.113.7' : undefined,
          BlockDeviceMappings: [
            {
              DeviceName: '/dev/sda1',
              Ebs: { VolumeId: 'vol-0root000000000000', Status: 'attached', DeleteOnTermination: true },
            },
            { DeviceName: '/dev/sdf', Ebs: { VolumeId: VOL, Status: 'attached', DeleteOnTermination: false } },
          ],
          Tags: [{ Key: 'Name', Value: 'btrbk-backup-host' }],
          ...extra,
        },
      ],
    },
  ],
});

const statusOk = (sys = 'ok', inst = 'ok') => ({
  $metadata: { httpStatusCode: 200 },
  InstanceStatuses: [
    {
      InstanceId: ID,
      AvailabilityZone: 'eu-central-1a',
      InstanceState: { Code: 16, Name: 'running' },
      SystemStatus: {
        Status: sys,
        Details: [
          { Name: 'reachability', Status: sys === 'ok' ? 'passed' : sys === 'impaired' ? 'failed' : 'initializing' },
        ],
      },
      InstanceStatus: {
        Status: inst,
        Details: [
          { Name: 'reachability', Status: inst === 'ok' ? 'passed' : inst === 'impaired' ? 'failed' : 'initializing' },
        ],
      },
    },
  ],
});

const volume = (state: string, attachments: object[]) => ({
  $metadata: { httpStatusCode: 200 },
  Volumes: [
    {
      VolumeId: VOL,
      Size: 100,
      VolumeType: 'gp3',
      Iops: 3000,
      Throughput: 125,
      Encrypted: true,
      KmsKeyId: 'arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-4000-8000-000000000000',
      AvailabilityZone: 'eu-central-1a',
      State: state,
      CreateTime: new Date('2026-11-01T10:00:00Z'),
      Attachments: attachments,
    },
  ],
});
const attached = (instanceId = ID, state = 'attached') => [
  {
    VolumeId: VOL,
    InstanceId: instanceId,
    Device: '/dev/sdf',
    State: state,
    AttachTime: new Date('2026-11-01T10:01:00Z'),
    DeleteOnTermination: false,
  },
];

const notFound = (what: string, code: string) =>
  Object.assign(new Error(what), { name: code, $fault: 'client', $metadata: { httpStatusCode: 400 } });

describe('check-aws (mocked AWS SDK)', () => {
  const ec2Mock = mockClient(EC2Client);
  const client = () =>
    new EC2Client({ region: 'eu-central-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } });
  beforeEach(() => ec2Mock.reset());

  it('a healthy instance and volume pass (mocked AWS SDK)', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves(instance('running') as any);
    ec2Mock.on(DescribeInstanceStatusCommand).resolves(statusOk() as any);
    ec2Mock.on(DescribeVolumesCommand).resolves(volume('in-use', attached()) as any);
    const r = await checkAws(conn, { ec2: client() });
    expect(r.map((x: any) => [x.name, x.ok])).toEqual([
      [`instance ${ID} found in eu-central-1`, true],
      ['instance running', true],
      ['status checks ok (system, instance)', true],
      [`data volume ${VOL} attached to ${ID}`, true],
    ]);
    expect(r[3].detail).toMatch(/100 GiB gp3, \/dev\/sdf, encrypted/);
    expect(ec2Mock.commandCalls(DescribeInstanceStatusCommand)[0].args[0].input).toEqual({
      InstanceIds: [ID],
      IncludeAllInstances: true,
    });
  });

  it('stopped instance: says so and gives the start command (mocked AWS SDK)', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves(
      instance('stopped', {
        StateReason: {
          Code: 'Client.UserInitiatedShutdown',
          Message: 'Client.UserInitiatedShutdown: User initiated shutdown',
        },
      }) as any,
    );
    ec2Mock.on(DescribeVolumesCommand).resolves(volume('in-use', attached()) as any);
    const r = await checkAws(conn, { ec2: client() });
    const t = r.find((x: any) => x.name === 'instance running');
    expect(t).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/the instance is stopped \(Client.UserInitiatedShutdown/),
      next: expect.stringContaining(`aws ec2 start-instances --instance-ids ${ID} --region eu-central-1`),
    });
    expect(ec2Mock.commandCalls(DescribeInstanceStatusCommand)).toHaveLength(0);
  });

  it('detached volume: says it is detached and how to re-attach (mocked AWS SDK)', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves(instance('running') as any);
    ec2Mock.on(DescribeInstanceStatusCommand).resolves(statusOk() as any);
    ec2Mock.on(DescribeVolumesCommand).resolves(volume('available', []) as any);
    const t = (await checkAws(conn, { ec2: client() })).at(-1);
    expect(t).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/detached \(state "available"\)/),
      next: expect.stringContaining(`aws ec2 attach-volume --volume-id ${VOL} --instance-id ${ID}`),
    });
  });

  it('volume attached to another instance (mocked AWS SDK)', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves(instance('running') as any);
    ec2Mock.on(DescribeInstanceStatusCommand).resolves(statusOk() as any);
    ec2Mock.on(DescribeVolumesCommand).resolves(volume('in-use', attached('i-0ffffffffffffffff')) as any);
    expect((await checkAws(conn, { ec2: client() })).at(-1)).toMatchObject({
      ok: false,
      cause: 'the volume is attached to another instance, i-0ffffffffffffffff',
    });
  });

  it('wrong region: finds the instance in another region and names it (mocked AWS SDK)', async () => {
    ec2Mock.on(DescribeRegionsCommand).resolves({
      Regions: [{ RegionName: 'eu-central-1' }, { RegionName: 'eu-west-1' }, { RegionName: 'us-east-1' }],
    } as any);
    ec2Mock.on(DescribeInstancesCommand).callsFake(async (_input: any, getClient: any) => {
      const region = await getClient().config.region();
      if (region === 'eu-west-1') return instance('running');
      throw notFound(`The instance ID '${ID}' does not exist`, 'InvalidInstanceID.NotFound');
    });
    const r = await checkAws(conn, {
      ec2: client(),
      ec2ForRegion: (region: string) =>
        new EC2Client({ region, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } }),
    });
    expect(r).toEqual([
      expect.objectContaining({
        name: `instance ${ID} found in eu-central-1`,
        ok: false,
        cause:
          'region mismatch: the instance is in eu-west-1, but the connection file says BTRBK_AWS_REGION=eu-central-1',
        next: expect.stringContaining("BTRBK_AWS_REGION='eu-west-1'"),
      }),
    ]);
  });

  it('instance gone everywhere: terminated or another account (mocked AWS SDK)', async () => {
    ec2Mock
      .on(DescribeRegionsCommand)
      .resolves({ Regions: [{ RegionName: 'eu-central-1' }, { RegionName: 'eu-west-1' }] } as any);
    ec2Mock
      .on(DescribeInstancesCommand)
      .rejects(notFound(`The instance ID '${ID}' does not exist`, 'InvalidInstanceID.NotFound'));
    const r = await checkAws(conn, { ec2: client(), ec2ForRegion: () => client() });
    expect(r[0]).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/no instance .* in eu-central-1 or any other enabled region: it was terminated/),
    });
  });

  it('status checks impaired vs initializing (mocked AWS SDK)', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves(instance('running') as any);
    ec2Mock.on(DescribeVolumesCommand).resolves(volume('in-use', attached()) as any);
    ec2Mock.on(DescribeInstanceStatusCommand).resolves(statusOk('ok', 'impaired') as any);
    let t = (await checkAws(conn, { ec2: client() })).find((x: any) => /status checks/.test(x.name));
    expect(t).toMatchObject({ ok: false, cause: expect.stringMatching(/operating system does not respond/) });
    ec2Mock.on(DescribeInstanceStatusCommand).resolves(statusOk('initializing', 'initializing') as any);
    t = (await checkAws(conn, { ec2: client() })).find((x: any) => /status checks/.test(x.name));
    expect(t).toMatchObject({ ok: true, warn: true });
  });

  it('deleted volume (mocked AWS SDK)', async () => {
    ec2Mock.on(DescribeInstancesCommand).resolves(instance('running') as any);
    ec2Mock.on(DescribeInstanceStatusCommand).resolves(statusOk() as any);
    ec2Mock
      .on(DescribeVolumesCommand)
      .rejects(notFound(`The volume '${VOL}' does not exist.`, 'InvalidVolume.NotFound'));
    expect((await checkAws(conn, { ec2: client() })).at(-1)).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/no volume .* it was deleted/),
    });
  });

  it('access denied names the permission (mocked AWS SDK)', async () => {
    ec2Mock.on(DescribeInstancesCommand).rejects(
      Object.assign(new Error('You are not authorized to perform this operation.'), {
        name: 'UnauthorizedOperation',
      }),
    );
    expect((await checkAws(conn, { ec2: client() }))[0]).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/AWS denied/),
    });
  });

  it('the local target: not applicable, and no AWS call at all (mocked AWS SDK)', async () => {
    const out = await runChecks({ ...conn, instanceId: 'local-target' }, ['check-aws'], { ec2: client() });
    expect(out[0].results).toEqual([
      expect.objectContaining({ ok: true, skipped: true, detail: expect.stringMatching(/not applicable/) }),
    ]);
    expect(ec2Mock.calls()).toHaveLength(0);
  });
});
