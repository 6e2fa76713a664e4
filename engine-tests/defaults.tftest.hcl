# The synthesized stack with its defaults plans and applies against the real hashicorp/aws schema (mocked, no
# credentials), and the instance gets exactly the boot script the renderer produces for the same settings.
# Runs from the synthesized stack directory; the jest test puts tests/fixtures/boot-script.expected there
# (renderBootScript() with the literal values below).

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
      names = ["us-west-1c", "us-west-1a", "us-west-1b"]
    }
  }
  # EC2 offers the instance type in two of the three zones (not in us-west-1a, the first alphabetically)
  mock_data "aws_ec2_instance_type_offerings" {
    defaults = {
      locations = ["us-west-1c", "us-west-1b"]
    }
  }
  mock_data "aws_ami" {
    defaults = {
      id = "ami-0aaaaaaaaaaaaaaa1"
    }
  }
  mock_resource "aws_ebs_volume" {
    defaults = {
      id = "vol-0123456789abcdef0"
    }
  }
  mock_resource "aws_eip" {
    defaults = {
      public_ip     = "198.51.100.7"
      allocation_id = "eipalloc-0123456789abcdef0"
    }
  }
  mock_resource "aws_s3_bucket" {
    defaults = {
      id                          = "btrbk-host-payload-mock"
      arn                         = "arn:aws:s3:::btrbk-host-payload-mock"
      bucket_regional_domain_name = "btrbk-host-payload-mock.s3.us-west-1.amazonaws.com"
    }
  }
}

variables {
  ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAkRTto4HMWhFxl000XCbGGvjrIaEG8X91n5ZDSpgAhO backup@laptop"
}

run "plan_with_defaults" {
  command = plan

  assert {
    condition     = aws_instance.backup_host.instance_type == "t3a.nano"
    error_message = "default instance type is t3a.nano"
  }
  assert {
    condition     = aws_ebs_volume.backup_data.size == 100 && aws_ebs_volume.backup_data.type == "gp3" && aws_ebs_volume.backup_data.encrypted
    error_message = "the data volume is 100 GiB of encrypted gp3 by default"
  }
  assert {
    condition     = local.availability_zone == "us-west-1b" && aws_instance.backup_host.availability_zone == local.availability_zone && aws_ebs_volume.backup_data.availability_zone == local.availability_zone
    error_message = "instance and volume share the first available zone, alphabetically, that offers the instance type (us-west-1b: us-west-1a does not offer it)"
  }
  assert {
    condition     = aws_instance.backup_host.metadata_options[0].http_tokens == "required"
    error_message = "IMDSv2 is required"
  }
  assert {
    condition     = aws_instance.backup_host.credit_specification[0].cpu_credits == "standard"
    error_message = "CPU credits are standard"
  }
  assert {
    condition     = aws_instance.backup_host.root_block_device[0].encrypted
    error_message = "the root volume is encrypted"
  }
  assert {
    condition     = aws_instance.backup_host.user_data_replace_on_change
    error_message = "a changed boot script replaces the instance"
  }
  assert {
    condition     = length(aws_key_pair.admin) == 0
    error_message = "without an admin key no key pair is registered"
  }
  assert {
    condition = (length(aws_security_group.backup_host.ingress) == 1
      && one(aws_security_group.backup_host.ingress).from_port == 22 && one(aws_security_group.backup_host.ingress).to_port == 22
      && one(aws_security_group.backup_host.ingress).protocol == "tcp"
      && one(aws_security_group.backup_host.ingress).cidr_blocks == tolist(["0.0.0.0/0"])
      && length(one(aws_security_group.backup_host.ingress).ipv6_cidr_blocks) == 0
      && length(one(aws_security_group.backup_host.ingress).security_groups) == 0
      && length(one(aws_security_group.backup_host.ingress).prefix_list_ids) == 0
      && !one(aws_security_group.backup_host.ingress).self)
    error_message = "the only ingress rule is SSH from allowed_ssh_cidrs"
  }
  assert {
    condition     = sort([for r in aws_security_group.backup_host.egress : tostring(r.from_port)]) == tolist(["443", "80"]) && alltrue([for r in aws_security_group.backup_host.egress : r.from_port == r.to_port && r.protocol == "tcp"])
    error_message = "egress is HTTP and HTTPS only"
  }
  assert {
    condition     = output.region == "us-west-1" && output.ssh_user == "btrbk" && output.backup_path == "/backup_volume/backups"
    error_message = "the fixed outputs"
  }
  assert {
    condition     = var.append_only == true && var.retention == "48h 14d 8w 12m" && var.retention_min == "1d"
    error_message = "append-only by default, retention 48h 14d 8w 12m, everything younger than 1d kept"
  }
  assert {
    condition = (aws_instance.backup_host.metadata_options[0].instance_metadata_tags == "disabled"
      && keys(aws_instance.backup_host.tags) == tolist(["ManagedBy", "Name", "Project"]))
    error_message = "the instance's tags are the person's (only the stack's own three), and stay out of the metadata"
  }
  assert {
    condition = (startswith(aws_s3_object.host_payload.key, "host-payload/") && endswith(aws_s3_object.host_payload.key, ".sh.gz")
      && aws_s3_bucket_public_access_block.host_payload.block_public_acls && aws_s3_bucket_public_access_block.host_payload.restrict_public_buckets
      && one(aws_s3_bucket_server_side_encryption_configuration.host_payload.rule).apply_server_side_encryption_by_default[0].sse_algorithm == "AES256")
    error_message = "the host payload is one private, encrypted S3 object"
  }
}

# Still no apply in this file: a fresh deployment, where availability_zone chooses the zone of the new volume.
run "pinned_availability_zone_on_a_fresh_deployment" {
  command = plan

  variables {
    availability_zone = "us-west-1c"
  }

  assert {
    condition     = aws_instance.backup_host.availability_zone == "us-west-1c" && aws_ebs_volume.backup_data.availability_zone == "us-west-1c" && output.availability_zone == "us-west-1c"
    error_message = "a pinned availability_zone is used for both the volume and the instance"
  }
}

run "pinned_availability_zone_without_the_type_refused" {
  command = plan

  variables {
    availability_zone = "us-west-1a"
  }

  # the instance's precondition: instance_type is not offered in the volume's zone
  expect_failures = [aws_instance.backup_host]
}

run "apply_with_defaults" {
  command = apply

  assert {
    condition     = local.boot_script == file("tests/fixtures/boot-script.expected")
    error_message = "the boot script in the stack differs from renderBootScript() with the same literal values"
  }
  assert {
    condition     = aws_instance.backup_host.user_data_base64 == base64gzip(file("tests/fixtures/boot-script.expected"))
    error_message = "the instance's user data is not gzip+base64 of the rendered boot script"
  }
  assert {
    condition     = strcontains(local.boot_script, "BTRBK_PAYLOAD_SHA256='") && !strcontains(local.boot_script, "BTRBK_PAYLOAD_SHA256=''")
    error_message = "the boot script pins the payload's sha256"
  }
  assert {
    condition = strcontains(local.boot_script, "\nBTRBK_PAYLOAD_URL='https://btrbk-host-payload-mock.s3.us-west-1.amazonaws.com/${aws_s3_object.host_payload.key}'\nBTRBK_PAYLOAD_REGION='us-west-1'\n")
    error_message = "the boot script reads the payload object of this deployment, in its region"
  }
  assert {
    condition = (aws_instance.backup_host.iam_instance_profile == aws_iam_instance_profile.backup_host.name
      && aws_iam_instance_profile.backup_host.role == aws_iam_role.backup_host.name
      && jsondecode(aws_iam_role_policy.read_host_payload.policy).Statement[0].Action == ["s3:GetObject"]
      && jsondecode(aws_iam_role_policy.read_host_payload.policy).Statement[0].Resource == "arn:aws:s3:::btrbk-host-payload-mock/${aws_s3_object.host_payload.key}"
      && jsondecode(aws_iam_role_policy.read_host_payload.policy).Statement[1].Action == ["cloudwatch:PutMetricData"]
      && jsondecode(aws_iam_role_policy.read_host_payload.policy).Statement[1].Condition.StringEquals["cloudwatch:namespace"] == "BtrbkBackupHost"
      && length(jsondecode(aws_iam_role_policy.read_host_payload.policy).Statement) == 2)
    error_message = "the instance's role may read its own payload object and report completed backups in its own namespace, and do nothing else"
  }
  assert {
    condition     = strcontains(local.boot_script, "BTRBK_VOLUME_ID='vol-0123456789abcdef0'")
    error_message = "the boot script carries the data volume's id"
  }
  assert {
    condition     = strcontains(local.boot_script, "\nBTRBK_APPEND_ONLY='true'\nBTRBK_RETENTION='48h 14d 8w 12m'\nBTRBK_RETENTION_MIN='1d'\n")
    error_message = "the boot script carries the default append-only switch and retention"
  }
  assert {
    condition     = aws_volume_attachment.backup_data.volume_id == aws_ebs_volume.backup_data.id && aws_volume_attachment.backup_data.instance_id == aws_instance.backup_host.id && aws_volume_attachment.backup_data.stop_instance_before_detaching
    error_message = "the data volume is attached to the instance, and the instance stops before a detach"
  }
  assert {
    condition     = aws_eip_association.backup_host.instance_id == aws_instance.backup_host.id && aws_eip_association.backup_host.allocation_id == aws_eip.backup_host.allocation_id
    error_message = "the Elastic IP is associated with the instance"
  }
  assert {
    condition     = output.public_ip == "198.51.100.7" && output.btrbk_target == "ssh://198.51.100.7/backup_volume/backups/"
    error_message = "public_ip is the Elastic IP and btrbk_target is built from it"
  }
  assert {
    condition     = output.volume_id == "vol-0123456789abcdef0" && output.instance_id == aws_instance.backup_host.id && output.availability_zone == "us-west-1b"
    error_message = "the outputs name the volume, the instance and the zone"
  }
}

run "admin_key_registers_a_key_pair" {
  command = apply

  variables {
    admin_ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG+3CgY3qly809CKZdAsN6fsXe9rnJvqePf+s9vJW5Et admin@laptop"
    key_pair_name        = "my-admin-key"
    allowed_ssh_cidrs    = ["203.0.113.7/32", "2001:db8::/48"]
  }

  assert {
    condition     = length(aws_key_pair.admin) == 1 && aws_key_pair.admin[0].public_key == var.admin_ssh_public_key && aws_instance.backup_host.key_name == "my-admin-key"
    error_message = "an admin key becomes the instance's EC2 key pair"
  }
  assert {
    condition     = one(aws_security_group.backup_host.ingress).cidr_blocks == tolist(["203.0.113.7/32"]) && one(aws_security_group.backup_host.ingress).ipv6_cidr_blocks == tolist(["2001:db8::/48"])
    error_message = "allowed_ssh_cidrs are split into IPv4 and IPv6 blocks"
  }
  assert {
    condition     = strcontains(local.boot_script, "BTRBK_ADMIN_SSH_PUBLIC_KEY='${var.admin_ssh_public_key}'")
    error_message = "the boot script carries the admin key"
  }
}

run "retention_settings_reach_the_boot_script" {
  command = apply

  variables {
    append_only   = false
    retention     = "*d"
    retention_min = "latest"
  }

  assert {
    condition     = strcontains(local.boot_script, "\nBTRBK_APPEND_ONLY='false'\nBTRBK_RETENTION='*d'\nBTRBK_RETENTION_MIN='latest'\n")
    error_message = "the boot script carries append_only = false as 'false', and the retention settings as given"
  }
  assert {
    condition     = aws_instance.backup_host.user_data_base64 == base64gzip(local.boot_script)
    error_message = "the instance's user data is gzip+base64 of the boot script with these settings"
  }
}
