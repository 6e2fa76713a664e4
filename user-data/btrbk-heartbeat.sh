#!/bin/bash
# btrbk-heartbeat [--config FILE] DEVICE: tells CloudWatch that a backup of DEVICE has completed. btrbk-receive runs it (as root,
# detached, holding no lock) after each complete receive into backups/DEVICE/... (through a device's key: DEVICE is that
# key's device name, from the host's registry; through the legacy key: the first directory); the missed-backup alarm fires when
# no such report arrives for backup_alarm_hours. So a client whose sends always fail (a cut, a full volume) is no
# longer hidden by the writes its failed sends leave on the volume.
#
# One PutMetricData call: CompletedBackups = 1 (Count) in the namespace of /etc/btrbk-backup-host/heartbeat.conf,
# once with the dimension VolumeId (this deployment's data volume: what the alarm watches) and once with VolumeId and
# Device. Signed with the instance role's temporary credentials (IMDSv2) by curl --aws-sigv4; the role may put
# metrics in this namespace and nothing else. heartbeat.conf (written by the boot script): REGION, NAMESPACE,
# VOLUME_ID, and for tests ENDPOINT and IMDS. No REGION (the local target): it does nothing. It never fails a
# backup: what goes wrong is logged (logger -t btrbk-heartbeat) and it exits 0.
set -u -o pipefail
export LC_ALL=C PATH=/usr/sbin:/usr/bin:/sbin:/bin
umask 077
CONF=/etc/btrbk-backup-host/heartbeat.conf
REGION='' NAMESPACE='' VOLUME_ID='' ENDPOINT='' IMDS=http://169.254.169.254/latest
say() { logger -t btrbk-heartbeat -- "$*" </dev/null >/dev/null 2>&1; printf 'btrbk-heartbeat: %s\n' "$*" >&2; }

if [[ ${1-} == --config ]]; then CONF=${2-} && shift 2; fi
device=${1:-}
[[ $device =~ ^[A-Za-z0-9_@+.-]{1,255}$ && $device != . && $device != .. ]] || { say "not a device name: '$device'"; exit 0; }
if [[ -r $CONF ]]; then
  while IFS='=' read -r k v; do
    case $k in REGION | NAMESPACE | VOLUME_ID | ENDPOINT | IMDS) [[ $v =~ ^[A-Za-z0-9:/._-]*$ ]] && printf -v "$k" %s "$v" ;; esac
  done <"$CONF"
fi
[[ -n $REGION ]] || exit 0
[[ $NAMESPACE && $VOLUME_ID ]] || { say "$CONF has no NAMESPACE or VOLUME_ID: nothing reported"; exit 0; }
ENDPOINT=${ENDPOINT:-https://monitoring.$REGION.amazonaws.com/}

token=$(curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$IMDS/api/token") ||
  { say "the instance metadata service does not answer: the backup of $device is not reported"; exit 0; }
role=$(curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $token" "$IMDS/meta-data/iam/security-credentials/" | head -n 1)
creds=$(curl -fsS --max-time 5 -H "X-aws-ec2-metadata-token: $token" "$IMDS/meta-data/iam/security-credentials/${role:-none}") ||
  { say "no role credentials in the instance metadata (role '${role:-none}'): the backup of $device is not reported"; exit 0; }
field() { sed -n "s/^[[:space:]]*\"$1\"[[:space:]]*:[[:space:]]*\"\\([^\"]*\\)\".*/\\1/p" <<<"$creds" | head -n 1; }

enc=${device//+/%2B} # a form value: + and @ are not plain there
enc=${enc//@/%40}
m=MetricData.member
body="Action=PutMetricData&Version=2010-08-01&Namespace=$NAMESPACE"
for i in 1 2; do
  body+="&$m.$i.MetricName=CompletedBackups&$m.$i.Value=1&$m.$i.Unit=Count"
  body+="&$m.$i.Dimensions.member.1.Name=VolumeId&$m.$i.Dimensions.member.1.Value=$VOLUME_ID"
done
body+="&$m.2.Dimensions.member.2.Name=Device&$m.2.Dimensions.member.2.Value=$enc"
if out=$(curl -sS --max-time 20 --retry 2 -w '\n%{http_code}' --aws-sigv4 "aws:amz:$REGION:monitoring" \
  --user "$(field AccessKeyId):$(field SecretAccessKey)" -H "x-amz-security-token: $(field Token)" \
  -H 'Content-Type: application/x-www-form-urlencoded; charset=utf-8' --data "$body" "$ENDPOINT" 2>&1) && [[ ${out##*$'\n'} == 200 ]]; then
  say "reported a completed backup of $device ($NAMESPACE CompletedBackups, VolumeId $VOLUME_ID)"
else
  say "CloudWatch did not take the report of $device's backup: ${out//$'\n'/ }"
fi
exit 0
