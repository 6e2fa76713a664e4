import { Construct } from 'constructs';
import { Token } from 'cdktf';
import { DATA_VOLUME_DEVICE_NAME } from '../scripts/lib/core/host-layout.js';
import { EbsVolume } from '@cdktf/provider-aws/lib/ebs-volume/index.js';
import { VolumeAttachment } from '@cdktf/provider-aws/lib/volume-attachment/index.js';
import { DATA_VOLUME_TAG_KEY } from './volume-protection.js';

/** The volume that holds the backups. */
export interface DataVolumeProps {
  /** Availability zone; must be the instance's. */
  readonly availabilityZone: string;
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
 */
export class DataVolume extends Construct {
  readonly volume: EbsVolume;
  private attachment?: VolumeAttachment;

  constructor(scope: Construct, id: string, props: DataVolumeProps) {
    super(scope, id);
    const snapshot = Token.asString(props.restoreSnapshotId ?? '');
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
        ignoreChanges: ['snapshot_id'],
        postcondition: [
          {
            condition: `\${${snapshot} == "" || self.snapshot_id == ${snapshot}}`,
            errorMessage:
              'restore_snapshot_id is set, but the data volume already exists and was not made from that snapshot. The stack never replaces the volume that holds the backups. To restore from a snapshot, deploy a fresh stack with it (docs/RESTORE.md); to keep this deployment, set restore_snapshot_id back to "" (or to the snapshot the volume was made from).',
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
