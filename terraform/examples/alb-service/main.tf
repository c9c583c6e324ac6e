# The seed architecture (examples/demo-api.yaml as Terraform): an on-demand base plus a
# diversified spot pool behind one ALB, and a web service spread over both.
#
# The spot budget: a reclaimed instance is gone 120 s after its warning. ecsspot's drain
# (deadline 110 s) deregisters the instance's targets (deregistration delay 30 s) and stops its
# tasks (ECS_CONTAINER_STOP_TIMEOUT / stopTimeout 30 s) while the service starts replacements
# elsewhere, so no request reaches a dying instance.

provider "aws" {
  region = var.region
}

locals {
  https = var.certificate_arn != null
  # Dynamic host ports (hostPort 0) come from the Linux ephemeral range.
  ephemeral_from = 32768
  ephemeral_to   = 65535
}

resource "aws_security_group" "alb" {
  name        = "${var.cluster}-alb"
  description = "ALB of ${var.cluster}"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  for_each = toset(var.allowed_cidrs)

  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = local.https ? toset(var.allowed_cidrs) : toset([])

  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "alb_to_instances" {
  security_group_id            = aws_security_group.alb.id
  referenced_security_group_id = aws_security_group.instances.id
  ip_protocol                  = "tcp"
  from_port                    = local.ephemeral_from
  to_port                      = local.ephemeral_to
}

resource "aws_security_group" "instances" {
  name        = "${var.cluster}-instances"
  description = "Container instances of ${var.cluster}"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "instances_from_alb" {
  security_group_id            = aws_security_group.instances.id
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = local.ephemeral_from
  to_port                      = local.ephemeral_to
}

resource "aws_vpc_security_group_egress_rule" "instances_out" {
  # Image pulls, the ECS agent and AWS APIs.
  security_group_id = aws_security_group.instances.id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

module "ecsspot" {
  source = "../.."

  cluster          = var.cluster
  subnets          = var.instance_subnets
  security_groups  = [aws_security_group.instances.id]
  instance_profile = var.instance_profile
  ecs_config       = { ECS_CONTAINER_STOP_TIMEOUT = "30s" }
  tags             = { team = "api" }

  pools = [
    {
      name                            = "spot"
      min_size                        = 0
      max_size                        = 20
      instance_types                  = [{ type = "m5.large" }, { type = "m5a.large" }, { type = "m5d.large" }, { type = "m6i.large" }]
      on_demand_base_capacity         = 0
      on_demand_percentage_above_base = 0
      spot_allocation_strategy        = "price-capacity-optimized"
      capacity_rebalance              = true
      managed_scaling                 = { target_capacity = 100 }
    },
    {
      name                            = "on-demand"
      min_size                        = 1
      max_size                        = 4
      instance_types                  = [{ type = "m5.large" }]
      on_demand_percentage_above_base = 100
    },
  ]

  strategy = [
    { pool = "on-demand", base = 1, weight = 1 },
    { pool = "spot", weight = 3 },
  ]

  target_groups          = [aws_lb_target_group.web.arn]
  drain_deadline_seconds = 110
  lambda_package         = var.lambda_package
  ecsspot_command        = var.ecsspot_command
}

resource "aws_lb" "web" {
  name                       = substr("${var.cluster}-web", 0, 32)
  load_balancer_type         = "application"
  subnets                    = var.alb_subnets
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
}

resource "aws_lb_target_group" "web" {
  name        = substr("${var.cluster}-web", 0, 32)
  vpc_id      = var.vpc_id
  port        = 80
  protocol    = "HTTP"
  target_type = "instance"
  # Well inside the spot budget: deregistration (30 s) + task stop (30 s) < 110 s drain deadline.
  deregistration_delay = 30

  health_check {
    path                = "/"
    matcher             = "200-399"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }
}

resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.web.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

resource "aws_lb_listener" "http_redirect" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.web.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      protocol    = "HTTPS"
      port        = "443"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "http_forward" {
  count = local.https ? 0 : 1

  load_balancer_arn = aws_lb.web.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

resource "aws_ecs_task_definition" "web" {
  family                   = "${var.cluster}-web"
  network_mode             = "bridge"
  requires_compatibilities = ["EC2"]

  container_definitions = jsonencode([
    {
      name      = "web"
      image     = var.image
      essential = true
      cpu       = 128
      memory    = 256
      # hostPort 0: a dynamic host port, so several tasks fit on one instance.
      portMappings = [{ containerPort = 80, hostPort = 0, protocol = "tcp" }]
      # Matches ECS_CONTAINER_STOP_TIMEOUT: SIGTERM, then 30 s before SIGKILL.
      stopTimeout = 30
    }
  ])
}

resource "aws_ecs_service" "web" {
  name            = "web"
  cluster         = module.ecsspot.cluster_arn
  task_definition = aws_ecs_task_definition.web.arn
  desired_count   = var.desired_count

  # Half the tasks may be replaced at once; a deployment (or a drain) may double them meanwhile.
  deployment_minimum_healthy_percent = 50
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 30

  capacity_provider_strategy {
    capacity_provider = module.ecsspot.capacity_provider_names["on-demand"]
    base              = 1
    weight            = 1
  }

  capacity_provider_strategy {
    capacity_provider = module.ecsspot.capacity_provider_names["spot"]
    base              = 0
    weight            = 3
  }

  # One reclaimed instance or Availability Zone takes as few tasks as possible with it.
  ordered_placement_strategy {
    type  = "spread"
    field = "attribute:ecs.availability-zone"
  }

  ordered_placement_strategy {
    type  = "spread"
    field = "instanceId"
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.web.arn
    container_name   = "web"
    container_port   = 80
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # The target group must belong to a load balancer (through a listener) before a service uses it.
  depends_on = [aws_lb_listener.https, aws_lb_listener.http_redirect, aws_lb_listener.http_forward]
}
