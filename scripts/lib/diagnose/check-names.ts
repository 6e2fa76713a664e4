// The troubleshooting checks' names and what each looks at: a module of its own so that a command's --help can
// list them without loading the checks (SSH, the AWS SDK).

/** Check name -> what it looks at. */
export const CHECKS = Object.freeze({
  'check-ssh': 'reach the host, the pinned host key, the backup key, the SSH gate',
  'check-volume': 'the backup volume, through the gate’s read-only diagnostics',
  'check-aws': 'the EC2 instance and its data volume (AWS API)',
  'check-logs': 'the boot script’s log and cloud-init’s output (EC2 console output when SSH is down)',
});

export type CheckName = keyof typeof CHECKS;
