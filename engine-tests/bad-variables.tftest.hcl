# Each bad variable value is refused at plan time by its validation block, and the checks across variables by the
# instance's precondition; the good values, the edges among them, plan.
#
# Every run block costs the engine a validate and a plan, so one run holds one bad value of EACH variable
# (refused_1 to refused_9): expect_failures names every variable whose value is bad, and the run fails unless each
# one of them reports its error ("Missing expected failure" names the variable that let its value through). A
# value's variable is on its line; the runs differ only in which bad value each variable gets. A bad variable stops
# the plan before the instance's preconditions are evaluated, so those refusals (a check across variables, or the
# user data's size) each have a run of their own with otherwise good values.

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

# The good values plan, the upper edges among them (of the snapshot, recycle-bin and alarm variables; one past
# each edge is refused above) and device names at the edges of the rule.
run "good_values_and_upper_limits_plan" {
  command = plan
  variables {
    ssh_public_key          = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO"
    aws_region              = "eu-central-1"
    ebs_volume_size         = 16384
    allowed_ssh_cidrs       = ["192.0.2.0/24", "::/0"]
    instance_type           = "t3.small"
    key_pair_name           = "a.b_c-1"
    append_only             = false
    retention               = "7d 4w"
    retention_min           = "no"
    snapshot_interval_hours = 1
    snapshot_retain_count   = 1000
    recycle_bin_days        = 365
    recycle_bin_lock_days   = 30
    restore_snapshot_id     = "snap-0123456789abcdef0"
    backup_alarm_hours      = 168
    alert_email             = "first.last+backup@mail.example.org"
    devices = {
      "a.b_c-1"                                                         = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop"
      "0bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAWHVd5gxknjqy08MpCjVa7JpmXcAjmtEgrHVwqT9UUg"
    }
  }
}

# The lower edges, more retention values, and a key comment long enough to be noticed that still fits EC2's 16 KB.
run "lower_limits_and_long_key_comment_plan" {
  command = plan
  variables {
    snapshot_interval_hours = 24
    snapshot_retain_count   = 0
    recycle_bin_days        = 1
    recycle_bin_lock_days   = 7
    restore_snapshot_id     = "snap-01234567"
    backup_alarm_hours      = 1
    retention               = "9999h *d 1w 2m 3y"
    retention_min           = "12m"
    ssh_public_key          = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO ${join("", [for i in range(30) : sha256(tostring(i))])}"
  }
}

run "refused_1" {
  command = plan
  variables {
    # an RSA key
    ssh_public_key = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 someone@host"
    # malformed
    admin_ssh_public_key = "ssh-ed25519 not-a-key"
    # malformed
    aws_region = "US West"
    # a region, not a zone
    availability_zone = "us-west-1"
    # empty
    key_pair_name = ""
    # zero
    ebs_volume_size = 0
    # prefix too long
    allowed_ssh_cidrs = ["10.0.0.0/33"]
    # t2
    instance_type = "t2.micro"
    # an unknown unit
    retention = "14x"
    # no unit
    retention_min = "5"
    # not a DLM interval
    snapshot_interval_hours = 5
    # above DLM's limit
    snapshot_retain_count = 1001
    # above the limit
    recycle_bin_days = 366
    # below 7
    recycle_bin_lock_days = 6
    # a volume id
    restore_snapshot_id = "vol-0123456789abcdef0"
    # above CloudWatch's limit
    backup_alarm_hours = 169
    # no domain
    alert_email = "me@localhost"
    # a name in upper case
    devices = { Alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [
    var.ssh_public_key,
    var.admin_ssh_public_key,
    var.aws_region,
    var.availability_zone,
    var.key_pair_name,
    var.ebs_volume_size,
    var.allowed_ssh_cidrs,
    var.instance_type,
    var.retention,
    var.retention_min,
    var.snapshot_interval_hours,
    var.snapshot_retain_count,
    var.recycle_bin_days,
    var.recycle_bin_lock_days,
    var.restore_snapshot_id,
    var.backup_alarm_hours,
    var.alert_email,
    var.devices,
  ]
}

run "refused_2" {
  command = plan
  variables {
    # truncated
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSp"
    # above gp3's limit
    ebs_volume_size = 16385
    # a bare address
    allowed_ssh_cidrs = ["203.0.113.7"]
    # another ARM family
    instance_type = "m6g.medium"
    # out of order
    retention = "14d 48h"
    # not a btrbk value
    retention_min = "all"
    # above a day
    snapshot_interval_hours = 48
    # negative
    snapshot_retain_count = -1
    # above 30
    recycle_bin_lock_days = 31
    # upper case
    restore_snapshot_id = "snap-0123456789ABCDEF0"
    # negative
    backup_alarm_hours = -1
    # two addresses
    alert_email = "a@example.org,b@example.org"
    # a name with a slash
    devices = { "a/b" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [
    var.ssh_public_key,
    var.ebs_volume_size,
    var.allowed_ssh_cidrs,
    var.instance_type,
    var.retention,
    var.retention_min,
    var.snapshot_interval_hours,
    var.snapshot_retain_count,
    var.recycle_bin_lock_days,
    var.restore_snapshot_id,
    var.backup_alarm_hours,
    var.alert_email,
    var.devices,
  ]
}

run "refused_3" {
  command = plan
  variables {
    # a trailing newline
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO backup@laptop\n"
    # fractional
    ebs_volume_size = 10.5
    # an empty list
    allowed_ssh_cidrs = []
    # not burstable
    instance_type = "m5.large"
    # empty
    retention = ""
    # negative
    retention_min = "-1d"
    # fractional
    snapshot_retain_count = 2.5
    # fractional
    backup_alarm_hours = 25.5
    # a name with ..
    devices = { "a..b" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [
    var.ssh_public_key,
    var.ebs_volume_size,
    var.allowed_ssh_cidrs,
    var.instance_type,
    var.retention,
    var.retention_min,
    var.snapshot_retain_count,
    var.backup_alarm_hours,
    var.devices,
  ]
}

run "refused_4" {
  command = plan
  variables {
    # a quote in the comment
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO x'$(reboot)'"
    # no count
    retention = "d"
    # a name with a leading dot
    devices = { ".a" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [
    var.ssh_public_key,
    var.retention,
    var.devices,
  ]
}

run "refused_5" {
  command = plan
  variables {
    # a private key
    ssh_public_key = "-----BEGIN OPENSSH PRIVATE KEY-----"
    # a count too long
    retention = "12345d"
    # the name selftest
    devices = { selftest = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [
    var.ssh_public_key,
    var.retention,
    var.devices,
  ]
}

run "refused_6" {
  command = plan
  variables {
    # a unit twice
    retention = "14d 14d"
    # a name of 64 characters
    devices = { "abbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop" }
  }
  expect_failures = [
    var.retention,
    var.devices,
  ]
}

run "refused_7" {
  command = plan
  variables {
    # a star without a unit
    retention = "* 30d"
    # an RSA key
    devices = { alice = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 someone@host" }
  }
  expect_failures = [
    var.retention,
    var.devices,
  ]
}

run "refused_8" {
  command = plan
  variables {
    # a quote in a key's comment
    devices = { alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS x'$(reboot)'" }
  }
  expect_failures = [
    var.devices,
  ]
}

run "refused_9" {
  command = plan
  variables {
    # one key for two devices
    devices = { alice = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS alice@laptop", bob = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFc9QTuRtiArkAxRKV2oMsJjoQGxXbjoKABVerRevUNS another-comment" }
  }
  expect_failures = [
    var.devices,
  ]
}

# The instance's preconditions: checks across variables (a key used twice, no key at all) and the user data's size.
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
