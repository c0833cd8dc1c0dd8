import { z } from 'zod';
import { awsLaunchSchema } from './aws/aws-launch-config.js';

const localLaunchSchema = z.object({
  /** One directory per launched mirror (default: <XDG_STATE_HOME>/metasync/launch-local). */
  dir: z.string().optional(),
  /** Release version -> its unpacked release dir or .tar.gz; without an entry only this CLI's own version launches. */
  releases: z.record(z.string(), z.string()).default({}),
  /** Addresses DNS answers carry, one per launched mirror (default: every mirror is 127.0.0.1). */
  addresses: z.array(z.string()).default([]),
  /** Extra flags for every launched mirror (e.g. ["--max-lag-ms", "2000"]). */
  mirrorArgs: z.array(z.string()).default([]),
});

/** The config file's `launch` object: one section per launcher kind, read by createLauncher(). */
export const launchSectionSchema = z
  .object({
    local: localLaunchSchema.default({ releases: {}, addresses: [], mirrorArgs: [] }),
    aws: awsLaunchSchema.optional(),
  })
  .default({ local: { releases: {}, addresses: [], mirrorArgs: [] } });
export type LaunchSection = z.infer<typeof launchSectionSchema>;
