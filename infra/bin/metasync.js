#!/usr/bin/env node
// The Node version gate runs before the CLI (and its dependencies) load.
import { exitUnlessSupportedNode } from '@metasync/shared/node-version';
exitUnlessSupportedNode('metasync');
await import('../dist/cli.js');
