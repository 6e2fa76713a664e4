import { Construct } from 'constructs';
import { Token } from 'cdktf';
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
  /** Tags for the alarm and the topic. @default {} */
  readonly tags?: Record<string, string>;
}

/**
 * A CloudWatch alarm on completed backups: the host reports each complete receive (btrbk-heartbeat, after
 * btrbk-receive has moved a complete, read-only backup into place) as CompletedBackups = 1 in the project's own
 * namespace with this deployment's VolumeId; the alarm fires when the hourly Sum stays below 1 for `hours`
 * consecutive hours, missing data counted as breaching (no report is no backup). A send that fails (a cut, a full
 * volume) reports nothing, even though it wrote to the volume: the old alarm on the volume's VolumeWriteOps stayed
 * quiet for it. Per-device reports carry a Device dimension too (an alarm per device comes with the devices).
 *
 * With an address: an SNS topic, an email subscription (pending until the person clicks AWS's confirmation
 * link), and the alarm's alarm and OK actions pointing at the topic.
 */
export class BackupAlarm extends Construct {
  readonly alarm: CloudwatchMetricAlarm;
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
    this.alarm = new CloudwatchMetricAlarm(this, 'alarm', {
      count: Token.asNumber(`\${${hours} > 0 ? 1 : 0}`),
      alarmName: `btrbk-no-completed-backup-${props.volumeId}`,
      alarmDescription: `No backup has completed on the btrbk backup host for ${hours} hours. Check with: npx zx scripts/troubleshoot.mjs check-all (and backup.mjs status on each machine)`,
      namespace: METRIC_NAMESPACE,
      metricName: COMPLETED_BACKUPS_METRIC,
      dimensions: { VolumeId: props.volumeId },
      statistic: 'Sum',
      period: ALARM_PERIOD_SECONDS,
      evaluationPeriods: props.hours,
      datapointsToAlarm: props.hours,
      comparisonOperator: 'LessThanThreshold',
      threshold: 1,
      treatMissingData: 'breaching',
      alarmActions: actions,
      okActions: actions,
      tags: { ...tags, Name: 'btrbk-no-completed-backup' },
    });
    this.alarm.overrideLogicalId('no_backup_writes');
  }
}
