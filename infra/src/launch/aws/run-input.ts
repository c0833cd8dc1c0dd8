import type { RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import type { LaunchSpec } from '../launcher.js';
import type { AwsLaunchConfig, AwsRegionLaunchConfig } from './aws-launch-config.js';
import { MANAGED_BY_VALUE, TAGS } from './instances.js';

/**
 * What one mirror's instance is made of: the region's AMI, type, subnet,
 * security groups and profile, IMDSv2 only, and the tags that are the
 * launcher's whole state, set by RunInstances itself so no instance is ever
 * untagged. Pure; the launch protocol around it is aws-launcher.ts.
 */
export function runInstancesInput(options: {
  spec: LaunchSpec;
  region: AwsRegionLaunchConfig;
  addressType: AwsLaunchConfig['addressType'];
  userData: string;
  clientToken: string;
}): RunInstancesCommandInput {
  const { spec, region } = options;
  return {
    ImageId: region.amiId,
    InstanceType: region.instanceType as RunInstancesCommandInput['InstanceType'],
    MinCount: 1,
    MaxCount: 1,
    ClientToken: options.clientToken,
    UserData: options.userData,
    IamInstanceProfile: region.instanceProfile.startsWith('arn:') ? { Arn: region.instanceProfile } : { Name: region.instanceProfile },
    NetworkInterfaces: [
      {
        DeviceIndex: 0,
        SubnetId: region.subnetId,
        Groups: region.securityGroupIds,
        AssociatePublicIpAddress: options.addressType === 'public',
        DeleteOnTermination: true,
      },
    ],
    // cloud-init reads the instance's address through IMDSv2; v1 stays off.
    MetadataOptions: { HttpTokens: 'required', HttpEndpoint: 'enabled' },
    TagSpecifications: [
      {
        ResourceType: 'instance',
        Tags: [
          { Key: TAGS.managedBy, Value: MANAGED_BY_VALUE },
          { Key: TAGS.mirrorId, Value: spec.mirrorId },
          { Key: TAGS.release, Value: spec.releaseVersion },
          { Key: 'Name', Value: `metasync-mirror-${spec.mirrorId}` },
        ],
      },
    ],
  };
}
