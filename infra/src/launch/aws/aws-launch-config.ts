import { z } from 'zod';

/**
 * The config file's `launch.aws` section: what `--launch aws` needs to create
 * a mirror server in each region. Credentials are not here: the EC2 client
 * uses the standard AWS chain (env, profile, SSO, instance role), as the
 * Route53 client does.
 */
const httpUrl = z.string().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL');

const awsRegionSchema = z.object({
  amiId: z.string().regex(/^ami-[0-9a-f]{8,17}$/, 'must be an AMI id (ami-...)'),
  instanceType: z.string().regex(/^[a-z0-9-]+\.[a-z0-9]+$/, 'must be an instance type such as t3.small'),
  subnetId: z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'must be a subnet id (subnet-...)'),
  securityGroupIds: z.array(z.string().regex(/^sg-[0-9a-f]{8,17}$/, 'must be a security group id (sg-...)')).min(1),
  /** The instance profile's name, or its ARN (arn:aws:iam::...:instance-profile/...). */
  instanceProfile: z.string().min(1),
});
export type AwsRegionLaunchConfig = z.infer<typeof awsRegionSchema>;

/** One `pnpm release` artifact: where servers download it, and the sha256 they check before unpacking. */
const releaseSchema = z.object({
  url: httpUrl,
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits (the .sha256 file next to the artifact)'),
});
export type AwsReleaseConfig = z.infer<typeof releaseSchema>;

export const awsLaunchSchema = z.object({
  /** Per AWS region (the mirror's region): where and on what its instance runs. */
  regions: z.record(z.string().regex(/^[a-z0-9-]{1,32}$/, 'must be 1-32 of [a-z0-9-]'), awsRegionSchema),
  /** Per release version (`metasync-<version>.tar.gz`): a version must be listed here to be launched. */
  releases: z.record(z.string().regex(/^[0-9A-Za-z.+-]{1,64}$/, 'must be a release version'), releaseSchema),
  /** Let's Encrypt account email for the mirror's certificate (certbot on the instance). */
  acmeEmail: z.string().regex(/^[^\s@'"`$\\]+@[^\s@'"`$\\]+$/, 'must be an email address'),
  /** Default: dns.route53.hostedZoneId / serviceName (the mirror registers itself in that zone). */
  hostedZoneId: z.string().min(1).optional(),
  serviceName: z.string().min(1).optional(),
  /** Node the instance installs; default: the terraform module's node_version / node_sha512 defaults. */
  node: z
    .object({
      version: z.string().regex(/^\d+\.\d+\.\d+$/),
      sha512: z.string().regex(/^[0-9a-f]{128}$/, 'must be 128 lowercase hex digits'),
    })
    .optional(),
  /** Which instance address DNS answers carry: `public` (an address is asked for at launch) or `private`. */
  addressType: z.enum(['public', 'private']).default('public'),
  /** Upper bound for an instance to be running with its address, and for a terminate to take. */
  launchTimeoutMs: z.number().int().positive().default(600_000),
  /** Delay between DescribeInstances polls while waiting. */
  pollIntervalMs: z.number().int().positive().default(5_000),
  /** Only for EC2-compatible fakes and tests; real AWS needs none. */
  endpoint: httpUrl.optional(),
});
export type AwsLaunchConfig = z.infer<typeof awsLaunchSchema>;
