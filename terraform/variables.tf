# Inputs mirror the ecsspot spec file (ecsspot/spec.py): same names where Terraform allows, same
# defaults, and the checks ecsspot's loader makes, so a spec and a module call describe the same
# cluster. Cross-variable rules (a strategy naming a pool) are preconditions in the resources.

variable "cluster" {
  description = "ECS cluster name. Pools become <cluster>-<pool> (Auto Scaling group and capacity provider); the launch template is <cluster>-ecsspot and the state table ecsspot-<cluster>."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,255}$", var.cluster))
    error_message = "The cluster must be 1-255 letters, digits, hyphens or underscores."
  }
  validation {
    # Capacity providers are named <cluster>-<pool>, and AWS reserves these prefixes for them.
    condition     = !can(regex("^(?i)(aws|ecs|fargate)", var.cluster))
    error_message = "The cluster name may not start with aws, ecs or fargate: capacity provider names (<cluster>-<pool>) may not."
  }
}

variable "subnets" {
  description = "Subnet ids the Auto Scaling groups launch into (spec network.subnets)."
  type        = list(string)

  validation {
    condition     = length(var.subnets) > 0
    error_message = "subnets needs at least one subnet."
  }
  validation {
    condition     = alltrue([for s in var.subnets : can(regex("^subnet-[0-9a-zA-Z]+$", s))])
    error_message = "Every subnet must be a subnet id (subnet-...)."
  }
  validation {
    condition     = length(distinct(var.subnets)) == length(var.subnets)
    error_message = "A subnet is listed twice."
  }
}

variable "security_groups" {
  description = "Security group ids of the instances (spec network.security_groups)."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for g in var.security_groups : can(regex("^sg-[0-9a-zA-Z]+$", g))])
    error_message = "Every security group must be a security group id (sg-...)."
  }
}

variable "assign_public_ip" {
  description = "Give instances a public IP address (spec network.assign_public_ip)."
  type        = bool
  default     = false
  nullable    = false
}

variable "ami" {
  description = "AMI id (ami-...) or SSM parameter (ssm:/path), resolved by `ecsspot tf ami` at plan time (spec instances.ami)."
  type        = string
  default     = "ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
  nullable    = false

  validation {
    condition     = startswith(var.ami, "ssm:/") || can(regex("^ami-[0-9a-zA-Z]+$", var.ami))
    error_message = "ami must be an AMI id (ami-...) or an SSM parameter (ssm:/aws/service/ecs/...)."
  }
}

variable "instance_profile" {
  description = "IAM instance profile of the instances, by name or ARN (spec instances.instance_profile). The ECS agent needs one to join the cluster."
  type        = string
  default     = null
}

variable "instance_role_arn" {
  description = "ARN of the role inside instance_profile, which the refresh Lambda may pass to EC2 (iam:PassRole). Default: the role named like the profile, in this account (the AWS console's and ECS docs' convention); set it when yours differs."
  type        = string
  default     = null

  validation {
    condition     = var.instance_role_arn == null ? true : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.instance_role_arn))
    error_message = "instance_role_arn must be an IAM role ARN."
  }
}

variable "root_volume_gib" {
  description = "Size of the gp3 root volume (/dev/xvda) in GiB (spec instances.root_volume_gib)."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = floor(var.root_volume_gib) == var.root_volume_gib && var.root_volume_gib >= 1 && var.root_volume_gib <= 16384
    error_message = "root_volume_gib must be a whole number 1..16384."
  }
}

variable "metadata_hop_limit" {
  description = "IMDS PUT response hop limit (spec instances.metadata_hop_limit). 1 keeps the instance role's credentials from containers in bridge mode; 2 gives them access."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = floor(var.metadata_hop_limit) == var.metadata_hop_limit && var.metadata_hop_limit >= 1 && var.metadata_hop_limit <= 64
    error_message = "metadata_hop_limit must be a whole number 1..64."
  }
}

variable "ecs_config" {
  description = "Extra /etc/ecs/ecs.config lines (spec instances.ecs_config). ECS_CLUSTER and ECS_ENABLE_SPOT_INSTANCE_DRAINING=true are always set by ecsspot."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k in keys(var.ecs_config) : can(regex("^[A-Z][A-Z0-9_]*$", k))])
    error_message = "ecs.config keys are upper case letters, digits and underscores."
  }
  validation {
    condition     = !contains(keys(var.ecs_config), "ECS_CLUSTER")
    error_message = "ECS_CLUSTER is set by ecsspot from `cluster`; remove it."
  }
  validation {
    condition     = lower(trimspace(lookup(var.ecs_config, "ECS_ENABLE_SPOT_INSTANCE_DRAINING", "true"))) == "true"
    error_message = "ecsspot always enables spot instance draining; remove ECS_ENABLE_SPOT_INSTANCE_DRAINING."
  }
  validation {
    # Anyone who can describe the launch template (or reach IMDS) reads user data in plain text.
    condition     = !anytrue([for k in keys(var.ecs_config) : can(regex("AUTH_DATA|AUTH_TYPE|PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY", k))])
    error_message = "Credentials must not go in user data: keep registry credentials in Secrets Manager and use the container definition's repositoryCredentials."
  }
  validation {
    condition     = alltrue([for v in values(var.ecs_config) : !can(regex("\n", v))])
    error_message = "ecs.config values must be a single line."
  }
}

variable "extra_user_data" {
  description = "A cloud-init part of your own (script or #cloud-config), run after ecsspot's (spec instances.user_data)."
  type        = string
  default     = null
}

variable "key_name" {
  description = "EC2 key pair name for the instances (spec instances.key_name)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for the instances and for the module's resources (spec instances.tags); ecsspot:cluster is added."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = !anytrue([for k in keys(var.tags) : startswith(lower(k), "aws:") || startswith(k, "ecsspot:")])
    error_message = "The aws: prefix is reserved by AWS and the ecsspot: prefix by ecsspot."
  }
}

variable "pools" {
  description = "Capacity pools, one Auto Scaling group + capacity provider each (spec pools; same keys and defaults). managed_scaling = { enabled = false } stands for the spec's `managed_scaling: false`."
  type = list(object({
    name     = string
    max_size = number
    min_size = optional(number, 0)
    # The spec's `m5.large` is { type = "m5.large" } here; weights as in the spec.
    instance_types = optional(list(object({
      type   = string
      weight = optional(number, 1)
    })), [])
    # Instead of instance_types: attribute-based instance type selection (the spec's
    # instance_requirements, same keys and AWS's defaults).
    instance_requirements = optional(object({
      vcpu                                                    = object({ min = number, max = optional(number) })
      memory_mib                                              = object({ min = number, max = optional(number) })
      cpu_manufacturers                                       = optional(list(string), [])
      instance_generations                                    = optional(list(string), [])
      burstable_performance                                   = optional(string, "excluded")
      bare_metal                                              = optional(string, "excluded")
      local_storage                                           = optional(string, "included")
      local_storage_types                                     = optional(list(string), [])
      allowed_instance_types                                  = optional(list(string), [])
      excluded_instance_types                                 = optional(list(string), [])
      spot_max_price_percentage_over_lowest_price             = optional(number)
      max_spot_price_as_percentage_of_optimal_on_demand_price = optional(number)
      on_demand_max_price_percentage_over_lowest_price        = optional(number)
    }))
    on_demand_base_capacity         = optional(number, 0)
    on_demand_percentage_above_base = optional(number, 100)
    spot_allocation_strategy        = optional(string, "price-capacity-optimized")
    # null: prioritized, or lowest-price with instance_requirements (AWS's defaults).
    on_demand_allocation_strategy = optional(string)
    # null: on whenever the pool may run spot instances (on_demand_percentage_above_base < 100).
    capacity_rebalance = optional(bool)
    managed_scaling = optional(object({
      enabled                   = optional(bool, true)
      target_capacity           = optional(number, 100)
      minimum_scaling_step_size = optional(number, 1)
      maximum_scaling_step_size = optional(number, 10000)
      instance_warmup_period    = optional(number, 300)
    }), {})
    managed_termination_protection = optional(bool, true)
    managed_draining               = optional(bool, true)
    # Default <cluster>-<pool>. Changing it replaces the capacity provider.
    asg_name = optional(string)
  }))

  validation {
    condition     = length(var.pools) > 0
    error_message = "pools needs at least one pool."
  }
  validation {
    condition     = alltrue([for p in var.pools : can(regex("^[A-Za-z0-9_-]{1,255}$", p.name))])
    error_message = "Pool names must be letters, digits, hyphens or underscores."
  }
  validation {
    condition     = length(distinct([for p in var.pools : p.name])) == length(var.pools)
    error_message = "Two pools have the same name."
  }
  validation {
    condition = alltrue([
      for p in var.pools : floor(p.min_size) == p.min_size && floor(p.max_size) == p.max_size && p.min_size >= 0 && p.max_size >= 0 && p.min_size <= p.max_size
    ])
    error_message = "Every pool needs whole numbers 0 <= min_size <= max_size."
  }
  validation {
    condition     = alltrue([for p in var.pools : length(p.instance_types) > 0 || p.instance_requirements != null])
    error_message = "Every pool needs at least one instance type (or instance_requirements)."
  }
  validation {
    condition     = alltrue([for p in var.pools : length(p.instance_types) == 0 || p.instance_requirements == null])
    error_message = "A pool gives instance_types or instance_requirements, not both (AWS takes a list of types or the requirements instead)."
  }
  validation {
    condition = alltrue([
      for p in var.pools : p.instance_requirements == null ? true : (
        length(p.instance_requirements.allowed_instance_types) == 0 || length(p.instance_requirements.excluded_instance_types) == 0
      )
    ])
    error_message = "instance_requirements: excluded_instance_types cannot be given with allowed_instance_types (AWS takes one or the other)."
  }
  validation {
    condition = alltrue([
      for p in var.pools : p.instance_requirements == null ? true : (
        p.spot_allocation_strategy != "capacity-optimized-prioritized" && p.on_demand_allocation_strategy != "prioritized"
      )
    ])
    error_message = "With instance_requirements AWS refuses the prioritized strategies (spot capacity-optimized-prioritized, on-demand prioritized): they need a list of types in priority order."
  }
  validation {
    condition = alltrue([
      for p in var.pools : p.instance_requirements == null ? true : (
        p.instance_requirements.spot_max_price_percentage_over_lowest_price == null || p.instance_requirements.max_spot_price_as_percentage_of_optimal_on_demand_price == null
      )
    ])
    error_message = "instance_requirements: give spot_max_price_percentage_over_lowest_price or max_spot_price_as_percentage_of_optimal_on_demand_price, not both."
  }
  validation {
    condition     = alltrue(flatten([for p in var.pools : [for t in p.instance_types : can(regex("^[a-z0-9][a-z0-9-]*\\.[a-z0-9]+$", t.type))]]))
    error_message = "Instance types look like m5.large."
  }
  validation {
    condition     = alltrue([for p in var.pools : length(distinct([for t in p.instance_types : t.type])) == length(p.instance_types)])
    error_message = "An instance type is listed twice in a pool."
  }
  validation {
    condition     = alltrue(flatten([for p in var.pools : [for t in p.instance_types : floor(t.weight) == t.weight && t.weight >= 1 && t.weight <= 999]]))
    error_message = "Instance type weights must be whole numbers 1..999."
  }
  validation {
    condition     = alltrue([for p in var.pools : floor(p.on_demand_base_capacity) == p.on_demand_base_capacity && p.on_demand_base_capacity >= 0])
    error_message = "on_demand_base_capacity must be a whole number >= 0."
  }
  validation {
    condition     = alltrue([for p in var.pools : floor(p.on_demand_percentage_above_base) == p.on_demand_percentage_above_base && p.on_demand_percentage_above_base >= 0 && p.on_demand_percentage_above_base <= 100])
    error_message = "on_demand_percentage_above_base must be 0..100."
  }
  validation {
    condition     = alltrue([for p in var.pools : contains(["price-capacity-optimized", "capacity-optimized", "capacity-optimized-prioritized", "lowest-price"], p.spot_allocation_strategy)])
    error_message = "spot_allocation_strategy must be one of price-capacity-optimized, capacity-optimized, capacity-optimized-prioritized, lowest-price."
  }
  validation {
    condition     = alltrue([for p in var.pools : p.on_demand_allocation_strategy == null ? true : contains(["prioritized", "lowest-price"], p.on_demand_allocation_strategy)])
    error_message = "on_demand_allocation_strategy must be one of prioritized, lowest-price."
  }
  validation {
    condition = alltrue([
      for p in var.pools : (
        p.managed_scaling.target_capacity >= 1 && p.managed_scaling.target_capacity <= 100 &&
        p.managed_scaling.minimum_scaling_step_size >= 1 && p.managed_scaling.maximum_scaling_step_size <= 10000 &&
        p.managed_scaling.minimum_scaling_step_size <= p.managed_scaling.maximum_scaling_step_size &&
        p.managed_scaling.instance_warmup_period >= 0 && p.managed_scaling.instance_warmup_period <= 10000
      )
    ])
    error_message = "managed_scaling: target_capacity 1..100, 1 <= minimum_scaling_step_size <= maximum_scaling_step_size <= 10000, instance_warmup_period 0..10000."
  }
  validation {
    condition     = alltrue([for p in var.pools : p.managed_scaling.enabled || !p.managed_termination_protection])
    error_message = "managed_termination_protection requires managed_scaling (AWS rejects it otherwise)."
  }
  validation {
    condition     = alltrue([for p in var.pools : p.asg_name == null ? true : can(regex("^[\\w.:/ -]{1,255}$", p.asg_name))])
    error_message = "asg_name is not a valid Auto Scaling group name."
  }
}

variable "strategy" {
  description = "The cluster's default capacity provider strategy (spec strategy). Empty: every pool with weight 1, as `ecsspot apply` does."
  type = list(object({
    pool   = string
    base   = optional(number, 0)
    weight = optional(number, 1)
  }))
  default  = []
  nullable = false

  validation {
    condition     = length([for s in var.strategy : s if s.base > 0]) <= 1
    error_message = "Only one strategy item may have a base above 0."
  }
  validation {
    condition     = alltrue([for s in var.strategy : s.base >= 0 && s.base <= 100000 && s.weight >= 0 && s.weight <= 1000])
    error_message = "Strategy base must be 0..100000 and weight 0..1000."
  }
  validation {
    condition     = length(var.strategy) == 0 || anytrue([for s in var.strategy : s.weight > 0])
    error_message = "At least one strategy item needs a weight above 0."
  }
  validation {
    condition     = length(distinct([for s in var.strategy : s.pool])) == length(var.strategy)
    error_message = "A pool appears twice in the strategy."
  }
}

variable "target_groups" {
  description = "Target group ARNs to keep clean on drain besides the ones found through the cluster's services (spec target_groups)."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for t in var.target_groups : can(regex("^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/[\\w-]+/[0-9a-f]+$", t))])
    error_message = "Every target group must be a target group ARN."
  }
}

variable "drain_deadline_seconds" {
  description = "How long a drain may take (spec drain.deadline_seconds). Spot warning to reclaim is 120 s; keep a margin."
  type        = number
  default     = 110
  nullable    = false

  validation {
    condition     = var.drain_deadline_seconds >= 10 && var.drain_deadline_seconds <= 172800
    error_message = "drain_deadline_seconds must be 10..172800."
  }
}

variable "lifecycle_timeout_seconds" {
  description = "Heartbeat timeout of the ecsspot-drain terminate lifecycle hook (spec drain.lifecycle_timeout_seconds)."
  type        = number
  default     = 600
  nullable    = false

  validation {
    condition     = var.lifecycle_timeout_seconds >= 30 && var.lifecycle_timeout_seconds <= 7200
    error_message = "lifecycle_timeout_seconds must be 30..7200 (the heartbeat timeout AWS allows)."
  }
}

variable "refresh_ami_parameter" {
  description = "SSM parameter whose changes trigger a rolling AMI refresh (spec refresh.ami_parameter). Default: the parameter in `ami` when it is ssm:/...; none for a fixed ami-... id."
  type        = string
  default     = null

  validation {
    condition     = var.refresh_ami_parameter == null ? true : startswith(var.refresh_ami_parameter, "/")
    error_message = "refresh_ami_parameter must be an SSM parameter name starting with /."
  }
}

variable "refresh_batch_size" {
  description = "Instances replaced per refresh batch: a count (\"1\") or a percentage of the pool (\"25%\") (spec refresh.batch_size)."
  type        = string
  default     = "1"
  nullable    = false

  validation {
    condition     = can(regex("^[1-9][0-9]*$", var.refresh_batch_size)) || can(regex("^([1-9][0-9]?|100)%$", var.refresh_batch_size))
    error_message = "refresh_batch_size must be a count >= 1 or a percentage \"1%\"..\"100%\"."
  }
}

variable "refresh_min_healthy_percent" {
  description = "Share of a pool that must stay in service during a refresh (spec refresh.min_healthy_percent)."
  type        = number
  default     = 90
  nullable    = false

  validation {
    condition     = var.refresh_min_healthy_percent >= 0 && var.refresh_min_healthy_percent <= 100
    error_message = "refresh_min_healthy_percent must be 0..100."
  }
}

variable "refresh_timeout_seconds" {
  description = "How long new instances may take to become ACTIVE container instances before a refresh rolls back (spec refresh.timeout_seconds)."
  type        = number
  default     = 600
  nullable    = false

  validation {
    condition     = var.refresh_timeout_seconds >= 60 && var.refresh_timeout_seconds <= 7200
    error_message = "refresh_timeout_seconds must be 60..7200."
  }
}

variable "refresh_schedule" {
  description = "EventBridge schedule of refresh ticks: a refresh in progress continues on each tick."
  type        = string
  default     = "rate(5 minutes)"
  nullable    = false

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.refresh_schedule))
    error_message = "refresh_schedule must be an EventBridge schedule expression, rate(...) or cron(...)."
  }
}

variable "lambda_package" {
  description = "Path of the Lambda deployment zip (ecsspot and its dependencies at the zip root): pip install . -t build/ && (cd build && zip -qr ../ecsspot-lambda.zip .)."
  type        = string

  validation {
    condition     = endswith(var.lambda_package, ".zip")
    error_message = "lambda_package must be the path of a .zip file."
  }
}

variable "lambda_runtime" {
  description = "Lambda runtime of both handlers."
  type        = string
  default     = "python3.11"
  nullable    = false

  validation {
    condition     = can(regex("^python3\\.[0-9]+$", var.lambda_runtime))
    error_message = "lambda_runtime must be a Python runtime (python3.11, python3.12, ...)."
  }
}

variable "lambda_memory_size" {
  description = "Memory (MB) of both Lambda functions."
  type        = number
  default     = 256
  nullable    = false

  validation {
    condition     = var.lambda_memory_size >= 128 && var.lambda_memory_size <= 10240
    error_message = "lambda_memory_size must be 128..10240."
  }
}

variable "lambda_environment" {
  description = "Extra environment variables for both Lambda functions (ECSSPOT_CLUSTER and ECSSPOT_TABLE are set by the module)."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = !contains(keys(var.lambda_environment), "ECSSPOT_CLUSTER") && !contains(keys(var.lambda_environment), "ECSSPOT_TABLE")
    error_message = "ECSSPOT_CLUSTER and ECSSPOT_TABLE are set by the module."
  }
}

variable "interruption_reserved_concurrency" {
  description = "Reserved concurrency of the interruption Lambda; null leaves it unreserved (shares the account pool)."
  type        = number
  default     = null

  validation {
    condition     = var.interruption_reserved_concurrency == null ? true : var.interruption_reserved_concurrency >= 1
    error_message = "interruption_reserved_concurrency must be null or at least 1."
  }
}

variable "interruption_batch_size" {
  description = "SQS messages per interruption Lambda invocation (the events of one reclaim wave drain together)."
  type        = number
  default     = 10
  nullable    = false

  validation {
    condition     = var.interruption_batch_size >= 1 && var.interruption_batch_size <= 10
    error_message = "interruption_batch_size must be 1..10 (larger batches need a batching window, which would delay drains)."
  }
}

variable "max_receive_count" {
  description = "Deliveries of an event to the interruption Lambda before it moves to the dead-letter queue."
  type        = number
  default     = 5
  nullable    = false

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be 1..1000."
  }
}

variable "log_retention_days" {
  description = "Retention of the Lambda log groups."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "ecsspot_command" {
  description = "The ecsspot executable the external data sources run as [ecsspot_command, \"tf\", HOOK] (a path or a name on PATH; no arguments)."
  type        = string
  default     = "ecsspot"
  nullable    = false
}
