import type { BenchContext } from './context.js';
import type { Figure } from './report.js';

/** What a bench hands back; the runner adds id, status and duration. */
export interface BenchOutcome {
  title: string;
  figures: Figure[];
  notes: string[];
  params: Record<string, number | string | boolean>;
}

export type Bench = (ctx: BenchContext) => Promise<BenchOutcome>;
