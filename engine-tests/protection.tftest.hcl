# What AWS keeps when the host cannot: the Data Lifecycle Manager policy and its role, the Recycle Bin rule, the
# missed-backup alarm and its mail, disaster recovery from a snapshot, and the image following the instance
# type's architecture. Mock provider, no credentials.

mock_provider "aws" {
  # the real data source reads the partition from the credentials' endpoint; the mock's random string is no ARN partition
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
  mock_data "aws_availability_zones" {
    defaults = {
      names = ["us-west-1c", "us-west-1a"]
    }
  }
  # EC2's offerings of the instance type by zone (the same for every type unless a run overrides them)
  mock_data "aws_ec2_instance_type_offerings" {
    defaults = {
      locations = ["us-west-1c", "us-west-1a"]
    }
  }
  mock_resource "aws_ebs_volume" {
    defaults = {
      id = "vol-0123456789abcdef0"
    }
  }
  # ARNs the provider validates where they are used (the mock's random strings are no ARNs)
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/btrbk-dlm-mock"
    }
  }
  mock_resource "aws_sns_topic" {
    defaults = {
      arn = "arn:aws:sns:us-west-1:123456789012:btrbk-backup-alerts-mock"
    }
  }
}

variables {
  ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO backup@laptop"
}

# Runs before any apply in this file, so the state is empty: a fresh deployment.
run "restore_snapshot_builds_the_volume_from_it" {
  command = plan
  variables {
    restore_snapshot_id = "snap-0fedcba9876543210"
    ebs_volume_size     = 200
  }
  assert {
    condition     = aws_ebs_volume.backup_data.snapshot_id == "snap-0fedcba9876543210" && aws_ebs_volume.backup_data.size == 200 && aws_ebs_volume.backup_data.encrypted
    error_message = "a fresh deployment with restore_snapshot_id creates the encrypted data volume from that snapshot"
  }
  assert {
    condition     = contains(keys(aws_ebs_volume.backup_data.tags), "btrbk-data-volume")
    error_message = "the restored volume carries the tag the snapshot policy selects, so it is snapshotted in turn"
  }
}

run "t4g_plans_with_an_arm64_image" {
  command = plan
  variables {
    instance_type = "t4g.nano"
  }
  assert {
    condition     = aws_instance.backup_host.instance_type == "t4g.nano" && local.ami_architecture == "arm64"
    error_message = "t4g is planned, with the arm64 architecture"
  }
  assert {
    condition = (contains([for f in data.aws_ami.ubuntu.filter : f.values if f.name == "architecture"], toset(["arm64"]))
      && contains([for f in data.aws_ami.ubuntu.filter : f.values if f.name == "name"], toset(["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"])))
    error_message = "the image lookup asks for Ubuntu's arm64 image"
  }
}

run "t3_plans_with_an_x86_64_image" {
  command = plan
  variables {
    instance_type = "t3.micro"
  }
  assert {
    condition = (local.ami_architecture == "x86_64"
      && contains([for f in data.aws_ami.ubuntu.filter : f.values if f.name == "architecture"], toset(["x86_64"]))
      && contains([for f in data.aws_ami.ubuntu.filter : f.values if f.name == "name"], toset(["ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"])))
    error_message = "an x86_64 type gets Ubuntu's amd64 image"
  }
}

run "defaults_snapshot_recycle_alarm" {
  command = apply

  assert {
    condition     = length(aws_dlm_lifecycle_policy.data_volume) == 1 && aws_dlm_lifecycle_policy.data_volume[0].state == "ENABLED"
    error_message = "one enabled DLM policy by default"
  }
  assert {
    condition = (can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", terraform_data.deployment.id))
      && aws_dlm_lifecycle_policy.data_volume[0].policy_details[0].target_tags == tomap({ "btrbk-data-volume" = terraform_data.deployment.id })
      && aws_ebs_volume.backup_data.tags["btrbk-data-volume"] == terraform_data.deployment.id
      && !contains(keys(aws_instance.backup_host.tags), "btrbk-data-volume")
      && !contains(keys(aws_instance.backup_host.root_block_device[0].tags), "btrbk-data-volume"))
    error_message = "the policy targets the tag only the data volume carries, with this deployment's own id (no other deployment's volume)"
  }
  assert {
    condition = (aws_dlm_lifecycle_policy.data_volume[0].policy_details[0].resource_types == tolist(["VOLUME"])
      && aws_dlm_lifecycle_policy.data_volume[0].policy_details[0].schedule[0].create_rule[0].interval == 24
      && aws_dlm_lifecycle_policy.data_volume[0].policy_details[0].schedule[0].create_rule[0].interval_unit == "HOURS"
      && aws_dlm_lifecycle_policy.data_volume[0].policy_details[0].schedule[0].retain_rule[0].count == 7
      && aws_dlm_lifecycle_policy.data_volume[0].policy_details[0].schedule[0].tags_to_add["btrbk-snapshot"] == terraform_data.deployment.id)
    error_message = "daily snapshots, 7 kept, each tagged btrbk-snapshot = the deployment's id"
  }
  assert {
    condition = (aws_dlm_lifecycle_policy.data_volume[0].execution_role_arn == aws_iam_role.dlm[0].arn
      && jsondecode(aws_iam_role.dlm[0].assume_role_policy).Statement[0].Principal.Service == "dlm.amazonaws.com"
      && aws_iam_role_policy_attachment.dlm[0].role == aws_iam_role.dlm[0].name
      && endswith(aws_iam_role_policy_attachment.dlm[0].policy_arn, ":iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole"))
    error_message = "DLM acts as its own role: trusted by dlm.amazonaws.com, with AWS's managed DLM policy"
  }
  assert {
    condition = (length(aws_rbin_rule.dlm_snapshots) == 1 && length(aws_rbin_rule.region_locked) == 0
      && aws_rbin_rule.dlm_snapshots[0].resource_type == "EBS_SNAPSHOT"
      && aws_rbin_rule.dlm_snapshots[0].retention_period[0].retention_period_value == 7
      && aws_rbin_rule.dlm_snapshots[0].retention_period[0].retention_period_unit == "DAYS"
      && toset([for t in aws_rbin_rule.dlm_snapshots[0].resource_tags : "${t.resource_tag_key}=${t.resource_tag_value}"]) == toset(["btrbk-snapshot=${terraform_data.deployment.id}", "btrbk-snapshot=dlm"])
      && length(aws_rbin_rule.dlm_snapshots[0].lock_configuration) == 0)
    error_message = "a tag-level, unlocked Recycle Bin rule keeps this deployment's deleted DLM snapshots (and the ones from before the per-deployment tag) for 7 days"
  }
  assert {
    condition = (length(aws_cloudwatch_metric_alarm.no_backup_writes) == 1
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].namespace == "BtrbkBackupHost"
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].metric_name == "CompletedBackups"
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].dimensions == tomap({ VolumeId = "vol-0123456789abcdef0" })
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].statistic == "Sum"
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].comparison_operator == "LessThanThreshold"
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].threshold == 1
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].treat_missing_data == "breaching")
    error_message = "the alarm watches the completed backups the host reports for this data volume (Sum), missing data breaching"
  }
  assert {
    condition = (aws_cloudwatch_metric_alarm.no_backup_writes[0].period == 3600
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].evaluation_periods == 26
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].datapoints_to_alarm == 26
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].period * aws_cloudwatch_metric_alarm.no_backup_writes[0].evaluation_periods <= 604800)
    error_message = "26 hourly periods, all breaching, within CloudWatch's 7-day evaluation range"
  }
  assert {
    condition     = length(aws_sns_topic.alerts) == 0 && length(aws_sns_topic_subscription.alert_email) == 0 && length(aws_cloudwatch_metric_alarm.no_backup_writes[0].alarm_actions) == 0
    error_message = "no address: no topic, no subscription, no alarm actions"
  }
  assert {
    condition = (output.backup_alarm_name == "btrbk-no-completed-backup-vol-0123456789abcdef0" && output.alert_topic_arn == "" && output.alert_email == ""
      && output.snapshot_policy_id == aws_dlm_lifecycle_policy.data_volume[0].id && output.recycle_bin_rule_id == aws_rbin_rule.dlm_snapshots[0].id
      && output.recycle_bin_rule_scope == "dlm-snapshots")
    error_message = "the outputs setup's summary reads"
  }
}

run "alert_email_makes_topic_and_subscription" {
  command = apply
  variables {
    alert_email        = "backups@example.org"
    backup_alarm_hours = 50
  }
  assert {
    condition = (length(aws_sns_topic.alerts) == 1 && length(aws_sns_topic_subscription.alert_email) == 1
      && aws_sns_topic_subscription.alert_email[0].protocol == "email"
      && aws_sns_topic_subscription.alert_email[0].endpoint == "backups@example.org"
      && aws_sns_topic_subscription.alert_email[0].topic_arn == aws_sns_topic.alerts[0].arn)
    error_message = "an address makes one topic and one email subscription to it"
  }
  assert {
    condition = (aws_cloudwatch_metric_alarm.no_backup_writes[0].alarm_actions == toset([aws_sns_topic.alerts[0].arn])
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].ok_actions == toset([aws_sns_topic.alerts[0].arn])
      && aws_cloudwatch_metric_alarm.no_backup_writes[0].evaluation_periods == 50)
    error_message = "the alarm's alarm and OK actions go to the topic"
  }
  assert {
    condition     = output.alert_topic_arn == aws_sns_topic.alerts[0].arn && output.alert_email == "backups@example.org"
    error_message = "the outputs name the topic and the address"
  }
}

run "zero_turns_the_parts_off" {
  command = apply
  variables {
    snapshot_retain_count = 0
    recycle_bin_days      = 0
    backup_alarm_hours    = 0
    alert_email           = "backups@example.org"
  }
  assert {
    condition     = length(aws_dlm_lifecycle_policy.data_volume) == 0 && length(aws_iam_role.dlm) == 0 && length(aws_iam_role_policy_attachment.dlm) == 0
    error_message = "snapshot_retain_count = 0: no DLM policy, no role"
  }
  assert {
    condition     = length(aws_rbin_rule.dlm_snapshots) == 0 && length(aws_rbin_rule.region_locked) == 0 && output.recycle_bin_rule_id == "" && output.recycle_bin_rule_scope == ""
    error_message = "recycle_bin_days = 0: no Recycle Bin rule"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.no_backup_writes) == 0 && output.backup_alarm_name == "" && output.snapshot_policy_id == ""
    error_message = "backup_alarm_hours = 0: no alarm"
  }
}

run "lock_makes_a_region_level_rule" {
  command = apply
  variables {
    recycle_bin_days      = 14
    recycle_bin_lock_days = 10
  }
  assert {
    condition = (length(aws_rbin_rule.dlm_snapshots) == 0 && length(aws_rbin_rule.region_locked) == 1
      && length(aws_rbin_rule.region_locked[0].resource_tags) == 0
      && aws_rbin_rule.region_locked[0].retention_period[0].retention_period_value == 14
      && aws_rbin_rule.region_locked[0].lock_configuration[0].unlock_delay[0].unlock_delay_value == 10
      && aws_rbin_rule.region_locked[0].lock_configuration[0].unlock_delay[0].unlock_delay_unit == "DAYS"
      && output.recycle_bin_rule_scope == "region" && output.recycle_bin_rule_id == aws_rbin_rule.region_locked[0].id)
    error_message = "a lock makes the rule Region-level (AWS locks no tag-level rule), with the unlock delay in days"
  }
}

# The deployment exists now (applied above): asking for a restore must neither replace the volume that holds
# the backups nor be ignored silently: the plan stops at the volume's postcondition.
run "restore_snapshot_on_existing_deployment_refused" {
  command = plan
  variables {
    restore_snapshot_id = "snap-0fedcba9876543210"
  }
  expect_failures = [aws_ebs_volume.backup_data]
}
