import { z } from 'zod';
import { awsLaunchSchema } from './aws/aws-launch-config.js';

/** The config file's `launch` object: one section per launcher kind, read by createLauncher(). */
export const launchSectionSchema = z.object({ aws: awsLaunchSchema.optional() }).default({});
export type LaunchSection = z.infer<typeof launchSectionSchema>;
