import { Construct } from 'constructs';
import { Token } from 'cdktf';
import { DATA_VOLUME_DEVICE_NAME } from '../user-data/host-layout.js';
import { EbsVolume } from '@cdktf/provider-aws/lib/ebs-volume/index.js';
import { VolumeAttachment } from '@cdktf/provider-aws/lib/volume-attachment/index.js';
import { DATA_VOLUME_TAG_KEY } from './volume-protection.js';

/** The volume that holds the backups. */
export interface DataVolumeProps {
  /**
   * Availability zone of a NEW volume. An existing volume keeps its zone whatever this becomes later
   * (`availability_zone` is in ignore_changes): place the instance in `volume.availabilityZone`, not here.
   */
  readonly availabilityZone: string;
  /**
   * The zone the person asked for, or "" (none). Usually a token of `availability_zone`. When set and the existing
   * volume is in another zone, a postcondition refuses the plan with a message (the volume cannot move).
   * @default "" (no zone asked for)
   */
  readonly requestedAvailabilityZone?: string;
  /** Size in GiB (gp3: 1..16384). Usually a token of the `ebs_volume_size` variable. */
  readonly sizeGib: number;
  /**
   * A snapshot id to create the volume from (disaster recovery), or "" for an empty volume. Usually a token of
   * `restore_snapshot_id`. Read only when the volume is created: see the class comment. @default "" (empty volume)
   */
  readonly restoreSnapshotId?: string;
  /** This deployment's id: the value of DATA_VOLUME_TAG_KEY, which DLM selects the volume by. */
  readonly deploymentId: string;
  /** Tags for the volume (it also gets DATA_VOLUME_TAG_KEY). @default {} */
  readonly tags?: Record<string, string>;
}

/**
 * The encrypted gp3 data volume. It is its own resource with `prevent_destroy`, so replacing or terminating the
 * instance never touches it: the attachment stops the instance (clean unmount) before detaching.
 *
 * `restoreSnapshotId` builds a NEW volume from a snapshot. On a deployment whose volume exists, a changed
 * snapshot id would mean replacing the volume that holds the backups: the stack neither does that nor ignores
 * the request silently. snapshot_id is in ignore_changes (no replacement is planned), and a postcondition
 * refuses the plan with a message when the existing volume was not made from the given snapshot (docs/RESTORE.md
 * says how to restore into a fresh deployment instead).
 *
 * The zone is chosen once, when the volume is created: a changed zone would force a new volume, which
 * prevent_destroy turns into a plan that fails on every apply. availability_zone is in ignore_changes, so
 * `volume.availabilityZone` is the zone in the state (the planned value keeps the prior one) and the instance
 * placed there follows the volume; a requested zone other than the volume's stops the plan with a message.
 */
export class DataVolume extends Construct {
  readonly volume: EbsVolume;
  private attachment?: VolumeAttachment;

  constructor(scope: Construct, id: string, props: DataVolumeProps) {
    super(scope, id);
    const snapshot = Token.asString(props.restoreSnapshotId ?? '');
    const requestedZone = Token.asString(props.requestedAvailabilityZone ?? '');
    this.volume = new EbsVolume(this, 'volume', {
      availabilityZone: props.availabilityZone,
      size: props.sizeGib,
      type: 'gp3',
      encrypted: true,
      // (a raw expression: cdktf's Op.eq(x, '') renders `undefined`)
      snapshotId: `\${${snapshot} == "" ? null : ${snapshot}}`,
      tags: { ...props.tags, Name: 'btrbk-backup-data', [DATA_VOLUME_TAG_KEY]: props.deploymentId },
      lifecycle: {
        preventDestroy: true,
        ignoreChanges: ['snapshot_id', 'availability_zone'],
        postcondition: [
          {
            condition: `\${${snapshot} == "" || self.snapshot_id == ${snapshot}}`,
            errorMessage:
              'restore_snapshot_id is set, but the data volume already exists and was not made from that snapshot. The stack never replaces the volume that holds the backups. To restore from a snapshot, deploy a fresh stack with it (docs/RESTORE.md); to keep this deployment, set restore_snapshot_id back to "" (or to the snapshot the volume was made from).',
          },
          {
            condition: `\${${requestedZone} == "" || self.availability_zone == ${requestedZone}}`,
            errorMessage: `availability_zone is \${${requestedZone}}, but the data volume already exists in \${self.availability_zone}, and a volume cannot move to another zone (the stack never replaces the volume that holds the backups). Set availability_zone to "\${self.availability_zone}" or to "" (both keep the volume where it is); to move to another zone, deploy a fresh stack from a snapshot of the volume (docs/RESTORE.md).`,
          },
        ],
      },
    });
    this.volume.overrideLogicalId('backup_data');
  }

  /** Attaches the volume to the instance (one attachment; calling twice is a programming error). */
  attachTo(instanceId: string): VolumeAttachment {
    if (this.attachment) throw new Error('DataVolume is already attached');
    this.attachment = new VolumeAttachment(this, 'attachment', {
      // the name the attachment asks for; on Nitro instances the boot script finds the NVMe device by volume id
      deviceName: DATA_VOLUME_DEVICE_NAME,
      volumeId: this.volume.id,
      instanceId,
      stopInstanceBeforeDetaching: true,
    });
    this.attachment.overrideLogicalId('backup_data');
    return this.attachment;
  }
}
