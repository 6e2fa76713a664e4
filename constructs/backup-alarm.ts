import { Construct } from 'constructs';
import { Token } from 'cdktf';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic/index.js';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription/index.js';
import { ALARM_PERIOD_SECONDS } from '../scripts/lib/deploy/tfvars.js';

/** An alarm when the data volume sees no writes, and where it mails. */
export interface BackupAlarmProps {
  /** The data volume's id (the alarm's VolumeId dimension). */
  readonly volumeId: string;
  /**
   * Hours without a single write before the alarm fires (1..168); 0: no alarm. Usually a token of
   * `backup_alarm_hours`.
   */
  readonly hours: number;
  /** Address that gets the alarm's mails; "": no SNS topic, no subscription. Usually a token of `alert_email`. */
  readonly email: string;
  /** Tags for the alarm and the topic. @default {} */
  readonly tags?: Record<string, string>;
}

/**
 * A CloudWatch alarm on the data volume's own EBS metric, AWS/EBS VolumeWriteOps for its VolumeId: the hourly
 * Sum below 1 for `hours` consecutive hours (every one of the evaluation periods), missing data counted as
 * breaching (a volume AWS reports nothing for is a volume nobody writes to). No agent on the host: every backup
 * writes to the volume, an idle volume is not written, and the host's own pruning runs only right after a new
 * backup, so nothing on the host fakes the signal.
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
      alarmName: `btrbk-no-backup-writes-${props.volumeId}`,
      alarmDescription: `No write to the btrbk backup data volume for ${hours} hours: no backup has arrived. Check with: npx zx scripts/troubleshoot.mjs check-all`,
      namespace: 'AWS/EBS',
      metricName: 'VolumeWriteOps',
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
      tags: { ...tags, Name: 'btrbk-no-backup-writes' },
    });
    this.alarm.overrideLogicalId('no_backup_writes');
  }
}
