#!/usr/bin/env node
// The Node version gate runs before the daemon (and its dependencies) load.
import { exitUnlessSupportedNode } from '@metasync/shared/node-version';
exitUnlessSupportedNode('metasync-mirror');
await import('../dist/main.js');
