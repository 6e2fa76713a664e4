import { Construct } from 'constructs';
import { TerraformIterator, Token } from 'cdktf';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic/index.js';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription/index.js';
import { ALARM_PERIOD_SECONDS } from './variables.js';
import { COMPLETED_BACKUPS_METRIC, METRIC_NAMESPACE } from '../user-data/host-layout.js';

/** An alarm when no backup completes, and where it mails. */
export interface BackupAlarmProps {
  /** The data volume's id: the VolumeId dimension the host reports its completed backups under. */
  readonly volumeId: string;
  /**
   * Hours without a completed backup before the alarm fires (1..168); 0: no alarm. Usually a token of
   * `backup_alarm_hours`.
   */
  readonly hours: number;
  /** Address that gets the alarm's mails; "": no SNS topic, no subscription. Usually a token of `alert_email`. */
  readonly email: string;
  /**
   * A Terraform expression (without `\${ }`) of the devices map (name => key): one more alarm per device, on the
   * reports with its Device dimension. @default none: the volume-wide alarm only
   */
  readonly devices?: string;
  /** Tags for the alarm and the topic. @default {} */
  readonly tags?: Record<string, string>;
}

/**
 * A CloudWatch alarm on completed backups: the host reports each complete receive (btrbk-heartbeat, after
 * btrbk-receive has moved a complete, read-only backup into place) as CompletedBackups = 1 in the project's own
 * namespace with this deployment's VolumeId; the alarm fires when the hourly Sum stays below 1 for `hours`
 * consecutive hours, missing data counted as breaching (no report is no backup). A send that fails (a cut, a full
 * volume) reports nothing, even though it wrote to the volume: the old alarm on the volume's VolumeWriteOps stayed
 * quiet for it. Every report also comes with a Device dimension (the device's name; through the legacy key, the
 * first directory under backups/): with `devices`, one more alarm per device watches its own reports, named
 * btrbk-no-completed-backup-VOLUME-DEVICE, so the mail names the machine that went quiet; the volume-wide alarm
 * stays (it covers the legacy key, and a host where nothing at all completes).
 *
 * With an address: an SNS topic, an email subscription (pending until the person clicks AWS's confirmation
 * link), and the alarm's alarm and OK actions pointing at the topic.
 */
export class BackupAlarm extends Construct {
  /** The volume-wide alarm: no completed backup of any device (nor through the legacy key). */
  readonly alarm: CloudwatchMetricAlarm;
  /** One alarm per device (for_each over the devices): no completed backup of that device. */
  readonly deviceAlarms?: CloudwatchMetricAlarm;
  readonly topic: SnsTopic;
  readonly subscription: SnsTopicSubscription;

  constructor(scope: Construct, id: string, props: BackupAlarmProps) {
    super(scope, id);
    const tags = { ...props.tags };
    const email = Token.asString(props.email);
    const hours = Token.asString(props.hours);
    const mail = `${email} != ""`;

    this.topic = new SnsTopic(this, 'topic', {
      count: Token.asNumber(`\${${mail} ? 1 : 0}`),
      namePrefix: 'btrbk-backup-alerts-',
      tags: { ...tags, Name: 'btrbk-backup-alerts' },
    });
    this.topic.overrideLogicalId('alerts');
    const topics = `${this.topic.terraformResourceType}.${this.topic.friendlyUniqueId}`;

    this.subscription = new SnsTopicSubscription(this, 'subscription', {
      count: Token.asNumber(`\${${mail} ? 1 : 0}`),
      topicArn: `\${${topics}[0].arn}`,
      protocol: 'email',
      endpoint: props.email,
    });
    this.subscription.overrideLogicalId('alert_email');

    const actions = Token.asList(`\${${topics}[*].arn}`);
    const common = {
      namespace: METRIC_NAMESPACE,
      metricName: COMPLETED_BACKUPS_METRIC,
      statistic: 'Sum',
      period: ALARM_PERIOD_SECONDS,
      evaluationPeriods: props.hours,
      datapointsToAlarm: props.hours,
      comparisonOperator: 'LessThanThreshold',
      threshold: 1,
      treatMissingData: 'breaching',
      alarmActions: actions,
      okActions: actions,
    };
    this.alarm = new CloudwatchMetricAlarm(this, 'alarm', {
      ...common,
      count: Token.asNumber(`\${${hours} > 0 ? 1 : 0}`),
      alarmName: `btrbk-no-completed-backup-${props.volumeId}`,
      alarmDescription: `No backup has completed on the btrbk backup host for ${hours} hours. Check with: npx zx scripts/troubleshoot.mjs check-all (and backup.mjs status on each machine)`,
      dimensions: { VolumeId: props.volumeId },
      tags: { ...tags, Name: 'btrbk-no-completed-backup' },
    });
    this.alarm.overrideLogicalId('no_backup_writes');

    if (props.devices !== undefined) {
      const device = TerraformIterator.fromMap(Token.asAnyMap(`\${${hours} > 0 ? ${props.devices} : {}}`));
      const name = Token.asString(device.key);
      this.deviceAlarms = new CloudwatchMetricAlarm(this, 'device_alarm', {
        ...common,
        forEach: device,
        alarmName: `btrbk-no-completed-backup-${props.volumeId}-${name}`,
        alarmDescription: `No backup of device ${name} has completed on the btrbk backup host for ${hours} hours. Check on ${name} with: npx zx scripts/backup.mjs status`,
        dimensions: { VolumeId: props.volumeId, Device: name },
        tags: { ...tags, Name: 'btrbk-no-completed-backup' },
      });
      this.deviceAlarms.overrideLogicalId('no_device_backup');
    }
  }
}
