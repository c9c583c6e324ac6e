# The cluster, its launch template and the hooks that render what ecsspot's own `apply` would:
# same names, same template data, so a cluster can move between the module and `ecsspot apply`.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  cluster_tags = { "ecsspot:cluster" = var.cluster }
  tags         = merge(var.tags, local.cluster_tags)

  # Names of module-only resources (Lambda, IAM, SQS, EventBridge) have 64-80 character limits;
  # a long cluster name is shortened with a hash so two long names still differ.
  short_name = length(var.cluster) <= 40 ? var.cluster : "${substr(var.cluster, 0, 31)}-${substr(sha1(var.cluster), 0, 8)}"
  prefix     = "ecsspot-${local.short_name}"

  instance_profile_is_arn = var.instance_profile == null ? false : startswith(var.instance_profile, "arn:")
  # The last path element of an instance profile ARN is its name.
  instance_profile_name = var.instance_profile == null ? null : element(split("/", var.instance_profile), length(split("/", var.instance_profile)) - 1)

  ami_parameter = var.refresh_ami_parameter != null ? var.refresh_ami_parameter : (startswith(var.ami, "ssm:") ? trimprefix(var.ami, "ssm:") : null)
  # AWS's public parameters (/aws/service/...) have no account in their ARN.
  ami_parameter_arn = local.ami_parameter == null ? null : format(
    "arn:%s:ssm:%s:%s:parameter%s",
    local.partition,
    local.region,
    startswith(local.ami_parameter, "/aws/service/") ? "" : local.account_id,
    local.ami_parameter,
  )
}

# `ecsspot tf ami`: an ami-... id as is, or the image id held by an SSM parameter (plain id or
# the JSON .../recommended document), resolved at plan time like `ecsspot plan` does.
data "external" "ami" {
  program = [var.ecsspot_command, "tf", "ami"]
  query = {
    ami = var.ami
  }
}

# `ecsspot tf user-data` in its inline form (no spec file): the same bytes `ecsspot apply` renders,
# with ECS_CLUSTER and ECS_ENABLE_SPOT_INSTANCE_DRAINING=true always set. Empty strings mean
# "none" for the optional keys.
data "external" "user_data" {
  program = [var.ecsspot_command, "tf", "user-data"]
  query = {
    cluster         = var.cluster
    ecs_config_json = jsonencode(var.ecs_config)
    extra_user_data = var.extra_user_data == null ? "" : var.extra_user_data
  }
}

resource "aws_ecs_cluster" "this" {
  name = var.cluster
  tags = local.tags
}

resource "aws_launch_template" "this" {
  name     = "${var.cluster}-ecsspot"
  image_id = data.external.ami.result.image_id
  # Already base64, as the launch template wants it.
  user_data = data.external.user_data.result.user_data_base64
  key_name  = var.key_name

  # Security groups go on the network interface when it is declared for a public IP.
  vpc_security_group_ids = var.assign_public_ip || length(var.security_groups) == 0 ? null : var.security_groups
  update_default_version = true

  metadata_options {
    http_endpoint = "enabled"
    # IMDSv2 only; hop limit 1 keeps the instance role from bridge-mode containers (as `ecsspot apply`).
    http_tokens                 = "required"
    http_put_response_hop_limit = var.metadata_hop_limit
  }

  dynamic "iam_instance_profile" {
    for_each = var.instance_profile == null ? [] : [var.instance_profile]
    content {
      arn  = local.instance_profile_is_arn ? iam_instance_profile.value : null
      name = local.instance_profile_is_arn ? null : iam_instance_profile.value
    }
  }

  dynamic "network_interfaces" {
    for_each = var.assign_public_ip ? [1] : []
    content {
      device_index                = 0
      associate_public_ip_address = true
      security_groups             = var.security_groups
      delete_on_termination       = true
    }
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.root_volume_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = local.tags
  }

  tags = local.cluster_tags
}
