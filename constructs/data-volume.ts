import { Construct } from 'constructs';
import { DATA_VOLUME_DEVICE_NAME } from '../scripts/lib/core/host-layout.js';
import { EbsVolume } from '@cdktf/provider-aws/lib/ebs-volume/index.js';
import { VolumeAttachment } from '@cdktf/provider-aws/lib/volume-attachment/index.js';

/** The volume that holds the backups. */
export interface DataVolumeProps {
  /** Availability zone; must be the instance's. */
  readonly availabilityZone: string;
  /** Size in GiB (gp3: 1..16384). Usually a token of the `ebs_volume_size` variable. */
  readonly sizeGib: number;
  /** Tags for the volume. @default {} */
  readonly tags?: Record<string, string>;
}

/**
 * The encrypted gp3 data volume. It is its own resource with `prevent_destroy`, so replacing or terminating the
 * instance never touches it: the attachment stops the instance (clean unmount) before detaching.
 */
export class DataVolume extends Construct {
  readonly volume: EbsVolume;
  private attachment?: VolumeAttachment;

  constructor(scope: Construct, id: string, props: DataVolumeProps) {
    super(scope, id);
    this.volume = new EbsVolume(this, 'volume', {
      availabilityZone: props.availabilityZone,
      size: props.sizeGib,
      type: 'gp3',
      encrypted: true,
      tags: { ...props.tags, Name: 'btrbk-backup-data' },
      lifecycle: { preventDestroy: true },
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
