# One Auto Scaling group + terminate lifecycle hook + capacity provider per pool, and the
# cluster's default strategy over them.

locals {
  pools = { for p in var.pools : p.name => p }

  asg_names = { for name, p in local.pools : name => p.asg_name != null ? p.asg_name : "${var.cluster}-${name}" }

  capacity_provider_names = { for name, p in local.pools : name => "${var.cluster}-${name}" }

  # The spec's default: rebalance whenever a pool may run spot instances.
  capacity_rebalance = {
    for name, p in local.pools : name => p.capacity_rebalance != null ? p.capacity_rebalance : p.on_demand_percentage_above_base < 100
  }

  # AWS's default: prioritized (the list's order), lowest-price with instance requirements.
  on_demand_allocation_strategy = {
    for name, p in local.pools : name => p.on_demand_allocation_strategy != null ? p.on_demand_allocation_strategy : (p.instance_requirements != null ? "lowest-price" : "prioritized")
  }

  # Weights are only sent when one differs from 1, as `ecsspot apply` does.
  weighted = { for name, p in local.pools : name => anytrue([for t in p.instance_types : t.weight != 1]) }

  # No strategy: every pool with weight 1, as `ecsspot apply` does.
  strategy = length(var.strategy) > 0 ? var.strategy : [for p in var.pools : { pool = p.name, base = 0, weight = 1 }]
}

resource "aws_autoscaling_group" "pool" {
  for_each = local.pools

  name                = local.asg_names[each.key]
  min_size            = each.value.min_size
  max_size            = each.value.max_size
  vpc_zone_identifier = var.subnets
  capacity_rebalance  = local.capacity_rebalance[each.key]
  # ECS managed termination protection needs new instances protected from scale in.
  protect_from_scale_in = each.value.managed_termination_protection
  # Otherwise AWS refuses to delete a group whose instances are protected from scale in; the
  # capacity provider (and any service using it) is gone before the group is.
  force_delete = true

  mixed_instances_policy {
    instances_distribution {
      on_demand_base_capacity                  = each.value.on_demand_base_capacity
      on_demand_percentage_above_base_capacity = each.value.on_demand_percentage_above_base
      spot_allocation_strategy                 = each.value.spot_allocation_strategy
      on_demand_allocation_strategy            = local.on_demand_allocation_strategy[each.key]
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.this.id
        # An explicit version number: $Latest/$Default would roll any template edit out unplanned.
        version = aws_launch_template.this.latest_version
      }

      dynamic "override" {
        for_each = each.value.instance_types
        content {
          instance_type     = override.value.type
          weighted_capacity = local.weighted[each.key] ? tostring(override.value.weight) : null
        }
      }

      # Attribute-based selection: one override holding the requirements, as `ecsspot apply` sends.
      dynamic "override" {
        for_each = each.value.instance_requirements == null ? [] : [each.value.instance_requirements]
        content {
          instance_requirements {
            vcpu_count {
              min = override.value.vcpu.min
              max = override.value.vcpu.max
            }
            memory_mib {
              min = override.value.memory_mib.min
              max = override.value.memory_mib.max
            }
            cpu_manufacturers       = override.value.cpu_manufacturers
            instance_generations    = override.value.instance_generations
            burstable_performance   = override.value.burstable_performance
            bare_metal              = override.value.bare_metal
            local_storage           = override.value.local_storage
            local_storage_types     = override.value.local_storage_types
            allowed_instance_types  = override.value.allowed_instance_types
            excluded_instance_types = override.value.excluded_instance_types

            spot_max_price_percentage_over_lowest_price             = override.value.spot_max_price_percentage_over_lowest_price
            max_spot_price_as_percentage_of_optimal_on_demand_price = override.value.max_spot_price_as_percentage_of_optimal_on_demand_price
            on_demand_max_price_percentage_over_lowest_price        = override.value.on_demand_max_price_percentage_over_lowest_price
          }
        }
      }
    }
  }

  tag {
    key                 = "ecsspot:cluster"
    value               = var.cluster
    propagate_at_launch = true
  }

  tag {
    key                 = "ecsspot:pool"
    value               = each.key
    propagate_at_launch = true
  }

  tag {
    key                 = "AmazonECSManaged"
    value               = ""
    propagate_at_launch = true
  }

  lifecycle {
    # ECS managed scaling owns the desired capacity.
    ignore_changes = [desired_capacity]
  }
}

# The hook that holds a terminating instance until ecsspot has drained it (tasks moved, ALB
# targets deregistered); the interruption Lambda completes it.
resource "aws_autoscaling_lifecycle_hook" "drain" {
  for_each = local.pools

  name                   = "ecsspot-drain"
  autoscaling_group_name = aws_autoscaling_group.pool[each.key].name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = var.lifecycle_timeout_seconds
  default_result         = "CONTINUE"
}

resource "aws_ecs_capacity_provider" "pool" {
  for_each = local.pools

  name = local.capacity_provider_names[each.key]

  auto_scaling_group_provider {
    auto_scaling_group_arn         = aws_autoscaling_group.pool[each.key].arn
    managed_termination_protection = each.value.managed_termination_protection ? "ENABLED" : "DISABLED"
    managed_draining               = each.value.managed_draining ? "ENABLED" : "DISABLED"

    managed_scaling {
      status                    = each.value.managed_scaling.enabled ? "ENABLED" : "DISABLED"
      target_capacity           = each.value.managed_scaling.enabled ? each.value.managed_scaling.target_capacity : null
      minimum_scaling_step_size = each.value.managed_scaling.enabled ? each.value.managed_scaling.minimum_scaling_step_size : null
      maximum_scaling_step_size = each.value.managed_scaling.enabled ? each.value.managed_scaling.maximum_scaling_step_size : null
      instance_warmup_period    = each.value.managed_scaling.enabled ? each.value.managed_scaling.instance_warmup_period : null
    }
  }

  tags = merge(local.cluster_tags, { "ecsspot:pool" = each.key })
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = [for name in keys(local.pools) : aws_ecs_capacity_provider.pool[name].name]

  dynamic "default_capacity_provider_strategy" {
    for_each = local.strategy
    content {
      # Built from the name (not an index into the providers) so a strategy naming no pool
      # reaches the precondition below instead of an index error.
      capacity_provider = "${var.cluster}-${default_capacity_provider_strategy.value.pool}"
      base              = default_capacity_provider_strategy.value.base
      weight            = default_capacity_provider_strategy.value.weight
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for s in local.strategy : contains(keys(local.pools), s.pool)])
      error_message = "Every strategy item must name a pool (pools: ${join(", ", keys(local.pools))})."
    }
  }
}
