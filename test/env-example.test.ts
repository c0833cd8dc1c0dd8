import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ENV_EXAMPLE_PATH, renderEnvExample } from '../scripts/env-example.js';

describe('.env.example', () => {
  it('lists every option the daemons and the CLI read (regenerate with node --conditions=source --import tsx scripts/env-example.ts)', () => {
    expect(readFileSync(ENV_EXAMPLE_PATH, 'utf8')).toBe(renderEnvExample());
  });
});
