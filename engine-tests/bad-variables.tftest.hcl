# Each bad variable value is refused at plan time by its validation block (or, for the one check across two
# variables, by the instance's precondition).

mock_provider "aws" {
  mock_data "aws_availability_zones" {
    defaults = {
      names = ["us-west-1a", "us-west-1c"]
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

run "instance_type_arm_refused" {
  command = plan
  variables {
    instance_type = "t4g.nano"
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
