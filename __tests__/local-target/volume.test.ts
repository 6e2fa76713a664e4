// Unit tests of the stand-in EBS volume (scripts/lib/local-target/volume.ts): its id, by-id name and size.
import fs from 'node:fs';
import { ebsByIdPath, newVolumeId, parseVolumeSize } from '../../scripts/lib/local-target/volume.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';

describe('local target: names and formats', () => {
  test('the volume id has the EBS format, and its by-id name is the one a Nitro instance shows', () => {
    const id = newVolumeId(Buffer.from('0123456789abcdef', 'hex'));
    expect(id).toBe('vol-00123456789abcdef');
    expect(newVolumeId()).toMatch(/^vol-0[0-9a-f]{16}$/);
    expect(newVolumeId()).not.toBe(newVolumeId());
    expect(ebsByIdPath(id)).toBe('/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol00123456789abcdef');
  });

  test('the boot script accepts the synthetic id (its own pattern, vol- and 8 to 17 hex digits)', () => {
    const source = fs.readFileSync('user-data/bootstrap.sh', 'utf8');
    const re = /\$\{BTRBK_VOLUME_ID:-\}\s*=~\s*(\S+)\s*\]\]/.exec(source)![1];
    expect(new RegExp(re).test(newVolumeId())).toBe(true);
  });

  test('volume sizes', () => {
    expect(parseVolumeSize('2G')).toBe(2 * 2 ** 30);
    expect(parseVolumeSize('512M')).toBe(512 * 2 ** 20);
    expect(parseVolumeSize('1GiB')).toBe(2 ** 30);
    expect(parseVolumeSize(String(2 ** 30))).toBe(2 ** 30);
    expect(() => parseVolumeSize('lots')).toThrow(OperatorError);
    expect(() => parseVolumeSize('100M')).toThrow(/too small/);
  });
});
