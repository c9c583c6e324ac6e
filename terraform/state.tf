# The state table (leases, refresh progress, event idempotency keys) and the cluster settings
# record the Lambdas and the CLI read, so they work from the cluster name alone.

resource "aws_dynamodb_table" "state" {
  name         = "ecsspot-${var.cluster}"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  # Leases and idempotency keys expire on their own.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  tags = local.tags
}

locals {
  # Each pool's instance_requirements as ecsspot.spec.dump_spec writes them, built as JSON text
  # (their keys depend on which values are set).
  requirements_settings = {
    for p in var.pools : p.name => jsondecode("{${join(",", [
      for k, v in {
        vcpu                                                    = p.instance_requirements.vcpu.max == null ? jsonencode({ min = p.instance_requirements.vcpu.min }) : jsonencode({ min = p.instance_requirements.vcpu.min, max = p.instance_requirements.vcpu.max })
        memory_mib                                              = p.instance_requirements.memory_mib.max == null ? jsonencode({ min = p.instance_requirements.memory_mib.min }) : jsonencode({ min = p.instance_requirements.memory_mib.min, max = p.instance_requirements.memory_mib.max })
        cpu_manufacturers                                       = length(p.instance_requirements.cpu_manufacturers) > 0 ? jsonencode(p.instance_requirements.cpu_manufacturers) : null
        instance_generations                                    = length(p.instance_requirements.instance_generations) > 0 ? jsonencode(p.instance_requirements.instance_generations) : null
        burstable_performance                                   = jsonencode(p.instance_requirements.burstable_performance)
        bare_metal                                              = jsonencode(p.instance_requirements.bare_metal)
        local_storage                                           = jsonencode(p.instance_requirements.local_storage)
        local_storage_types                                     = length(p.instance_requirements.local_storage_types) > 0 ? jsonencode(p.instance_requirements.local_storage_types) : null
        allowed_instance_types                                  = length(p.instance_requirements.allowed_instance_types) > 0 ? jsonencode(p.instance_requirements.allowed_instance_types) : null
        excluded_instance_types                                 = length(p.instance_requirements.excluded_instance_types) > 0 ? jsonencode(p.instance_requirements.excluded_instance_types) : null
        spot_max_price_percentage_over_lowest_price             = p.instance_requirements.spot_max_price_percentage_over_lowest_price == null ? null : jsonencode(p.instance_requirements.spot_max_price_percentage_over_lowest_price)
        max_spot_price_as_percentage_of_optimal_on_demand_price = p.instance_requirements.max_spot_price_as_percentage_of_optimal_on_demand_price == null ? null : jsonencode(p.instance_requirements.max_spot_price_as_percentage_of_optimal_on_demand_price)
        on_demand_max_price_percentage_over_lowest_price        = p.instance_requirements.on_demand_max_price_percentage_over_lowest_price == null ? null : jsonencode(p.instance_requirements.on_demand_max_price_percentage_over_lowest_price)
      } : "${jsonencode(k)}:${v}" if v != null
    ])}}") if p.instance_requirements != null
  }
}

locals {
  # The spec document `ecsspot apply` records (ecsspot.spec.dump_spec): same keys, same shapes.
  # jsondecode(...) builds the spec's mixed shapes (an instance type is a string or an object;
  # managed_scaling is an object or false) that Terraform's type system has no literal for.
  settings = {
    cluster = var.cluster
    region  = local.region
    network = {
      subnets          = var.subnets
      security_groups  = var.security_groups
      assign_public_ip = var.assign_public_ip
    }
    instances = {
      for k, v in {
        ami                = var.ami
        instance_profile   = var.instance_profile
        root_volume_gib    = var.root_volume_gib
        metadata_hop_limit = var.metadata_hop_limit
        ecs_config         = var.ecs_config
        tags               = var.tags
        key_name           = var.key_name
        user_data          = var.extra_user_data
      } : k => v if v != null
    }
    pools = [
      for p in var.pools : merge(
        {
          name                            = p.name
          max_size                        = p.max_size
          min_size                        = p.min_size
          instance_types                  = jsondecode("[${join(",", [for t in p.instance_types : t.weight == 1 ? jsonencode(t.type) : jsonencode({ type = t.type, weight = t.weight })])}]")
          on_demand_base_capacity         = p.on_demand_base_capacity
          on_demand_percentage_above_base = p.on_demand_percentage_above_base
          spot_allocation_strategy        = p.spot_allocation_strategy
          on_demand_allocation_strategy   = local.on_demand_allocation_strategy[p.name]
          capacity_rebalance              = local.capacity_rebalance[p.name]
          managed_scaling = jsondecode(p.managed_scaling.enabled ? jsonencode({
            target_capacity           = p.managed_scaling.target_capacity
            minimum_scaling_step_size = p.managed_scaling.minimum_scaling_step_size
            maximum_scaling_step_size = p.managed_scaling.maximum_scaling_step_size
            instance_warmup_period    = p.managed_scaling.instance_warmup_period
          }) : "false")
          managed_termination_protection = p.managed_termination_protection
          managed_draining               = p.managed_draining
        },
        { for k, v in { asg_name = p.asg_name } : k => v if v != null },
        # Only when given, with dump_spec's keys: lists when not empty, numbers when set.
        jsondecode(p.instance_requirements == null ? "{}" : jsonencode({ instance_requirements = local.requirements_settings[p.name] })),
      )
    ]
    strategy      = [for s in var.strategy : { pool = s.pool, base = s.base, weight = s.weight }]
    target_groups = var.target_groups
    drain = {
      deadline_seconds          = var.drain_deadline_seconds
      lifecycle_timeout_seconds = var.lifecycle_timeout_seconds
    }
    refresh = {
      for k, v in {
        ami_parameter       = local.ami_parameter
        batch_size          = jsondecode(can(regex("^[0-9]+$", var.refresh_batch_size)) ? var.refresh_batch_size : jsonencode(var.refresh_batch_size))
        min_healthy_percent = var.refresh_min_healthy_percent
        timeout_seconds     = var.refresh_timeout_seconds
      } : k => v if v != null
    }
  }
}

# Same key and attribute as `ecsspot apply` writes (ecsspot.plan.SETTINGS_KEY).
resource "aws_dynamodb_table_item" "settings" {
  table_name = aws_dynamodb_table.state.name
  hash_key   = aws_dynamodb_table.state.hash_key
  range_key  = aws_dynamodb_table.state.range_key

  item = jsonencode({
    pk   = { S = "cluster" }
    sk   = { S = "settings" }
    spec = { S = jsonencode(local.settings) }
  })
}
