# Each bad variable value is refused at plan time by its validation block (or, for the one check across two
# variables, by the instance's precondition).

mock_provider "aws" {
  # the real data source reads the partition from the credentials' endpoint; the mock's random string is no ARN partition
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
  # the provider validates the DLM role's ARN where the policy uses it (the mock's random string is no ARN)
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/btrbk-dlm-mock"
    }
  }
  mock_data "aws_availability_zones" {
    defaults = {
      names = ["us-west-1a", "us-west-1c"]
    }
  }
  # EC2's offerings of the instance type by zone (the same for every type unless a run overrides them)
  mock_data "aws_ec2_instance_type_offerings" {
    defaults = {
      locations = ["us-west-1a", "us-west-1c"]
    }
  }
}

variables {
  ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO backup@laptop"
}

run "good_values_plan" {
  command = plan
  variables {
    ssh_public_key    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO"
    aws_region        = "eu-central-1"
    ebs_volume_size   = 16384
    allowed_ssh_cidrs = ["192.0.2.0/24", "::/0"]
    instance_type     = "t3.small"
    key_pair_name     = "a.b_c-1"
    append_only       = false
    retention         = "7d 4w"
    retention_min     = "no"
  }
}

# The limits of the snapshot, recycle-bin and alarm variables: the edges are accepted, one past them refused.
run "protection_limits_plan" {
  command = plan
  variables {
    snapshot_interval_hours = 1
    snapshot_retain_count   = 1000
    recycle_bin_days        = 365
    recycle_bin_lock_days   = 30
    restore_snapshot_id     = "snap-0123456789abcdef0"
    backup_alarm_hours      = 168
    alert_email             = "first.last+backup@mail.example.org"
  }
}

run "protection_lower_limits_plan" {
  command = plan
  variables {
    snapshot_interval_hours = 24
    snapshot_retain_count   = 0
    recycle_bin_days        = 1
    recycle_bin_lock_days   = 7
    restore_snapshot_id     = "snap-01234567"
    backup_alarm_hours      = 1
  }
}

run "snapshot_interval_5_refused" {
  command = plan
  variables {
    snapshot_interval_hours = 5
  }
  expect_failures = [var.snapshot_interval_hours]
}

run "snapshot_interval_48_refused" {
  command = plan
  variables {
    snapshot_interval_hours = 48
  }
  expect_failures = [var.snapshot_interval_hours]
}

run "snapshot_retain_count_above_dlm_limit_refused" {
  command = plan
  variables {
    snapshot_retain_count = 1001
  }
  expect_failures = [var.snapshot_retain_count]
}

run "snapshot_retain_count_negative_refused" {
  command = plan
  variables {
    snapshot_retain_count = -1
  }
  expect_failures = [var.snapshot_retain_count]
}

run "snapshot_retain_count_fractional_refused" {
  command = plan
  variables {
    snapshot_retain_count = 2.5
  }
  expect_failures = [var.snapshot_retain_count]
}

run "recycle_bin_days_above_limit_refused" {
  command = plan
  variables {
    recycle_bin_days = 366
  }
  expect_failures = [var.recycle_bin_days]
}

run "recycle_bin_lock_days_below_7_refused" {
  command = plan
  variables {
    recycle_bin_lock_days = 6
  }
  expect_failures = [var.recycle_bin_lock_days]
}

run "recycle_bin_lock_days_above_30_refused" {
  command = plan
  variables {
    recycle_bin_lock_days = 31
  }
  expect_failures = [var.recycle_bin_lock_days]
}

run "restore_snapshot_id_volume_id_refused" {
  command = plan
  variables {
    restore_snapshot_id = "vol-0123456789abcdef0"
  }
  expect_failures = [var.restore_snapshot_id]
}

run "restore_snapshot_id_uppercase_refused" {
  command = plan
  variables {
    restore_snapshot_id = "snap-0123456789ABCDEF0"
  }
  expect_failures = [var.restore_snapshot_id]
}

# CloudWatch: period x evaluation periods <= 604800 s for periods of an hour or more; the period is 3600 s.
run "backup_alarm_hours_above_cloudwatch_limit_refused" {
  command = plan
  variables {
    backup_alarm_hours = 169
  }
  expect_failures = [var.backup_alarm_hours]
}

run "backup_alarm_hours_negative_refused" {
  command = plan
  variables {
    backup_alarm_hours = -1
  }
  expect_failures = [var.backup_alarm_hours]
}

run "backup_alarm_hours_fractional_refused" {
  command = plan
  variables {
    backup_alarm_hours = 25.5
  }
  expect_failures = [var.backup_alarm_hours]
}

run "alert_email_without_domain_refused" {
  command = plan
  variables {
    alert_email = "me@localhost"
  }
  expect_failures = [var.alert_email]
}

run "alert_email_two_addresses_refused" {
  command = plan
  variables {
    alert_email = "a@example.org,b@example.org"
  }
  expect_failures = [var.alert_email]
}

run "good_retention_values_plan" {
  command = plan
  variables {
    retention     = "9999h *d 1w 2m 3y"
    retention_min = "12m"
  }
}

run "ssh_key_rsa_refused" {
  command = plan
  variables {
    ssh_public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 someone@host"
  }
  expect_failures = [var.ssh_public_key]
}

run "ssh_key_truncated_refused" {
  command = plan
  variables {
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSp"
  }
  expect_failures = [var.ssh_public_key]
}

run "ssh_key_trailing_newline_refused" {
  command = plan
  variables {
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO backup@laptop\n"
  }
  expect_failures = [var.ssh_public_key]
}

run "ssh_key_quote_in_comment_refused" {
  command = plan
  variables {
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO x'$(reboot)'"
  }
  expect_failures = [var.ssh_public_key]
}

run "ssh_key_private_key_refused" {
  command = plan
  variables {
    ssh_public_key = "-----BEGIN OPENSSH PRIVATE KEY-----"
  }
  expect_failures = [var.ssh_public_key]
}

run "admin_key_malformed_refused" {
  command = plan
  variables {
    admin_ssh_public_key = "ssh-ed25519 not-a-key"
  }
  expect_failures = [var.admin_ssh_public_key]
}

run "admin_key_same_as_backup_key_refused" {
  command = plan
  variables {
    admin_ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO backup@laptop"
  }
  expect_failures = [aws_instance.backup_host]
}

# A key comment long enough to push the user data over EC2's 16 KB (gzipped) is refused at plan time, not at launch
# (hex does not compress below half its length: 400 sha256 digests are 25.6 KB of comment).
run "user_data_over_16kb_refused" {
  command = plan
  variables {
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO ${join("", [for i in range(400) : sha256(tostring(i))])}"
  }
  expect_failures = [aws_instance.backup_host]
}

run "long_but_fitting_key_comment_plans" {
  command = plan
  variables {
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO ${join("", [for i in range(30) : sha256(tostring(i))])}"
  }
}

run "region_malformed_refused" {
  command = plan
  variables {
    aws_region = "US West"
  }
  expect_failures = [var.aws_region]
}

run "availability_zone_malformed_refused" {
  command = plan
  variables {
    availability_zone = "us-west-1"
  }
  expect_failures = [var.availability_zone]
}

run "key_pair_name_empty_refused" {
  command = plan
  variables {
    key_pair_name = ""
  }
  expect_failures = [var.key_pair_name]
}

run "volume_size_zero_refused" {
  command = plan
  variables {
    ebs_volume_size = 0
  }
  expect_failures = [var.ebs_volume_size]
}

run "volume_size_above_gp3_limit_refused" {
  command = plan
  variables {
    ebs_volume_size = 16385
  }
  expect_failures = [var.ebs_volume_size]
}

run "volume_size_fractional_refused" {
  command = plan
  variables {
    ebs_volume_size = 10.5
  }
  expect_failures = [var.ebs_volume_size]
}

run "cidr_prefix_too_long_refused" {
  command = plan
  variables {
    allowed_ssh_cidrs = ["10.0.0.0/33"]
  }
  expect_failures = [var.allowed_ssh_cidrs]
}

run "cidr_bare_address_refused" {
  command = plan
  variables {
    allowed_ssh_cidrs = ["203.0.113.7"]
  }
  expect_failures = [var.allowed_ssh_cidrs]
}

run "cidr_list_empty_refused" {
  command = plan
  variables {
    allowed_ssh_cidrs = []
  }
  expect_failures = [var.allowed_ssh_cidrs]
}

run "instance_type_t2_refused" {
  command = plan
  variables {
    instance_type = "t2.micro"
  }
  expect_failures = [var.instance_type]
}

run "instance_type_other_arm_family_refused" {
  command = plan
  variables {
    instance_type = "m6g.medium"
  }
  expect_failures = [var.instance_type]
}

run "instance_type_not_burstable_refused" {
  command = plan
  variables {
    instance_type = "m5.large"
  }
  expect_failures = [var.instance_type]
}

run "retention_unknown_unit_refused" {
  command = plan
  variables {
    retention = "14x"
  }
  expect_failures = [var.retention]
}

run "retention_out_of_order_refused" {
  command = plan
  variables {
    retention = "14d 48h"
  }
  expect_failures = [var.retention]
}

run "retention_empty_refused" {
  command = plan
  variables {
    retention = ""
  }
  expect_failures = [var.retention]
}

run "retention_without_count_refused" {
  command = plan
  variables {
    retention = "d"
  }
  expect_failures = [var.retention]
}

run "retention_count_too_long_refused" {
  command = plan
  variables {
    retention = "12345d"
  }
  expect_failures = [var.retention]
}

run "retention_unit_twice_refused" {
  command = plan
  variables {
    retention = "14d 14d"
  }
  expect_failures = [var.retention]
}

run "retention_star_without_unit_refused" {
  command = plan
  variables {
    retention = "* 30d"
  }
  expect_failures = [var.retention]
}

run "retention_min_without_unit_refused" {
  command = plan
  variables {
    retention_min = "5"
  }
  expect_failures = [var.retention_min]
}

run "retention_min_all_refused" {
  command = plan
  variables {
    retention_min = "all"
  }
  expect_failures = [var.retention_min]
}

run "retention_min_negative_refused" {
  command = plan
  variables {
    retention_min = "-1d"
  }
  expect_failures = [var.retention_min]
}

# Devices (issue 20): names the host would refuse, keys that are not one ed25519 key, a key shared by two devices,
# a device key that is the legacy or the admin key, no key at all, and more devices than EC2's 16 KB hold.
run "device_names_good_plan" {
  command = plan
  variables {
    devices = {
      "a.b_c-1"                                                         = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop"
      "0bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAWHVd5gxknjqy08MpCjVa7JpmXcAjmtEgrHVwqT9UUg"
    }
  }
}

run "device_name_upper_case_refused" {
  command = plan
  variables {
    devices = { Alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [var.devices]
}

run "device_name_with_slash_refused" {
  command = plan
  variables {
    devices = { "a/b" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [var.devices]
}

run "device_name_with_dot_dot_refused" {
  command = plan
  variables {
    devices = { "a..b" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [var.devices]
}

run "device_name_leading_dot_refused" {
  command = plan
  variables {
    devices = { ".a" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [var.devices]
}

run "device_name_selftest_refused" {
  command = plan
  variables {
    devices = { selftest = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [var.devices]
}

run "device_name_64_characters_refused" {
  command = plan
  variables {
    devices = { "abbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [var.devices]
}

run "device_key_rsa_refused" {
  command = plan
  variables {
    devices = { alice = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 someone@host" }
  }
  expect_failures = [var.devices]
}

run "device_key_quote_in_comment_refused" {
  command = plan
  variables {
    devices = { alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS x'$(reboot)'" }
  }
  expect_failures = [var.devices]
}

run "device_keys_shared_refused" {
  command = plan
  variables {
    devices = {
      alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop"
      bob   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS another-comment"
    }
  }
  expect_failures = [var.devices]
}

run "device_key_is_the_legacy_key_refused" {
  command = plan
  variables {
    devices = { alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO alice" }
  }
  expect_failures = [aws_instance.backup_host]
}

run "device_key_is_the_admin_key_refused" {
  command = plan
  variables {
    admin_ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+3CgY3qly809CKZdAsN6fsXe9rnJvqePf+s9vJW5Et admin@laptop"
    devices              = { alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+3CgY3qly809CKZdAsN6fsXe9rnJvqePf+s9vJW5Et admin@laptop" }
  }
  expect_failures = [aws_instance.backup_host]
}

run "no_backup_key_and_no_devices_refused" {
  command = plan
  variables {
    ssh_public_key = ""
  }
  expect_failures = [aws_instance.backup_host]
}

# 200 devices with distinct (well-formed, not decodable) keys: past EC2's 16 KB, refused at plan by the size check.
run "too_many_devices_refused" {
  command = plan
  variables {
    devices = { for i in range(200) : "device-${i}" => "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${substr(base64sha256(tostring(i)), 0, 43)} owner-${i}@example" }
  }
  expect_failures = [aws_instance.backup_host]
}
