import { Construct } from 'constructs';
import { TerraformLocal, Token } from 'cdktf';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group/index.js';

/** Who may reach the backup host, and where the host may reach. */
export interface NetworkAccessProps {
  /**
   * CIDR blocks (IPv4 or IPv6) allowed to reach SSH (port 22). Usually a token of the `allowed_ssh_cidrs`
   * variable; IPv4 and IPv6 entries are split into the matching rule fields.
   */
  readonly allowedSshCidrs: string[];
  /** Tags for the security group. @default {} */
  readonly tags?: Record<string, string>;
}

/** Ports the host may open outward: HTTP and HTTPS for package installs; nothing else. */
export const EGRESS_PORTS = Object.freeze([80, 443]);
/** The one inbound port: SSH, which the gate guards. */
export const SSH_PORT = 22;

/**
 * The security group of the backup host, in the region's default VPC: SSH in from the allowed CIDRs only;
 * HTTP/HTTPS out only (package installs). DNS and time sync go to the VPC's link-local services, which security groups do not filter.
 */
export class NetworkAccess extends Construct {
  readonly securityGroup: SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkAccessProps) {
    super(scope, id);
    const cidrs = Token.asString(props.allowedSshCidrs);
    const ipv4 = new TerraformLocal(this, 'ssh_ipv4_cidrs', `\${[for c in ${cidrs} : c if !strcontains(c, ":")]}`);
    ipv4.overrideLogicalId('ssh_ipv4_cidrs');
    const ipv6 = new TerraformLocal(this, 'ssh_ipv6_cidrs', `\${[for c in ${cidrs} : c if strcontains(c, ":")]}`);
    ipv6.overrideLogicalId('ssh_ipv6_cidrs');

    const rule = (description: string, port: number, v4: string[], v6: string[]) => ({
      description,
      protocol: 'tcp',
      fromPort: port,
      toPort: port,
      cidrBlocks: v4,
      ipv6CidrBlocks: v6,
      prefixListIds: [],
      securityGroups: [],
      selfAttribute: false,
    });

    this.securityGroup = new SecurityGroup(this, 'security_group', {
      namePrefix: 'btrbk-backup-ssh-',
      description: 'btrbk backup host: SSH in from allowed CIDRs; HTTP/HTTPS out',
      ingress: [rule('SSH (forced-command gate)', SSH_PORT, ipv4.asList, ipv6.asList)],
      egress: EGRESS_PORTS.map((port) => rule(`package installs (${port})`, port, ['0.0.0.0/0'], ['::/0'])),
      tags: { ...props.tags, Name: 'btrbk-backup-ssh' },
      lifecycle: { createBeforeDestroy: true },
    });
    this.securityGroup.overrideLogicalId('backup_host');
  }
}
