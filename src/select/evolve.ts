/**
 * Mutation-only evolutionary programming with elitist tournament selection: each generation every
 * parent has one mutated child; from parents and children together the best survives (so the best
 * fitness never decreases) and the other places go to winners of tournaments of `tournament`
 * individuals drawn without replacement. Everything random comes from Rng(seed, …): same seed,
 * same candidates.
 */
import { Rng } from '../data/rng';
import type { Tap } from '../methods/tap-probe';
import { Genome, TapSpace, baselineGenome, genomeKey, genomeTaps, genomeWidth, mutate, randomGenome } from './genome';
import type { HeadScore } from './fitness';

export interface Candidate {
  id: number;
  generation: number;
  /** The candidate it was mutated from; null in the initial population. */
  parent: number | null;
  key: string;
  taps: Tap[];
  hidden: number;
  dropout: number;
  lr: number;
  /** Concatenated feature width of its taps. */
  width: number;
  /** Held-out accuracy and loss of its head (fitness.ts: cross-validated, or on the validation split). */
  valAcc: number;
  valLoss: number;
  /** valAcc − penalty · width / (width of every tap). */
  fitness: number;
  /** True when an equal genome was scored before (its score reused). */
  repeat: boolean;
  genome: Genome;
}

export interface GenerationRecord {
  generation: number;
  best: number;
  bestFitness: number;
  meanFitness: number;
  /** Candidate ids of the generation's population (after selection). */
  population: number[];
}

export interface EvolveOptions {
  population: number;
  generations: number;
  seed: number;
  /** Fitness lost by using every tap at once (default 0.01: one held-out point in 100). */
  penalty: number;
  /** Tournament size (default 3). */
  tournament?: number;
}

export interface Evolution {
  best: Candidate;
  candidates: Candidate[];
  generations: GenerationRecord[];
}

/** Higher fitness, then lower held-out loss, then the earlier candidate. */
export function better(a: Candidate, b: Candidate): boolean {
  if (a.fitness !== b.fitness) return a.fitness > b.fitness;
  if (a.valLoss !== b.valLoss) return a.valLoss < b.valLoss;
  return a.id < b.id;
}

/** `score(genome, key)` trains and scores a head; it is called once per distinct genome. */
export async function evolve(space: TapSpace, score: (g: Genome, key: string) => HeadScore | Promise<HeadScore>, o: EvolveOptions,
  onCandidate?: (c: Candidate) => void): Promise<Evolution> {
  const totalWidth = space.widths.reduce((a, b) => a + b, 0);
  const k = o.tournament ?? 3;
  const candidates: Candidate[] = [];
  const scored = new Map<string, HeadScore>();
  const make = async (genome: Genome, generation: number, parent: number | null): Promise<Candidate> => {
    const key = genomeKey(genome, space);
    const repeat = scored.has(key);
    const s = scored.get(key) ?? await score(genome, key);
    scored.set(key, s);
    const width = genomeWidth(genome, space);
    const c: Candidate = {
      id: candidates.length, generation, parent, key, taps: genomeTaps(genome, space), hidden: genome.hidden, dropout: genome.dropout, lr: genome.lr,
      width, valAcc: s.valAcc, valLoss: s.valLoss, fitness: s.valAcc - o.penalty * width / totalWidth, repeat, genome,
    };
    candidates.push(c);
    onCandidate?.(c);
    return c;
  };
  const record = (generation: number, pop: Candidate[]): GenerationRecord => {
    const best = pop.reduce((a, b) => (better(b, a) ? b : a));
    return { generation, best: best.id, bestFitness: best.fitness, meanFitness: pop.reduce((s, c) => s + c.fitness, 0) / pop.length, population: pop.map((c) => c.id) };
  };

  const init = new Rng(o.seed, 1);
  let pop: Candidate[] = [];
  for (let i = 0; i < o.population; i++) pop.push(await make(i === 0 ? baselineGenome(space) : randomGenome(init, space), 0, null));
  const generations = [record(0, pop)];
  for (let g = 1; g <= o.generations; g++) {
    const rng = new Rng(o.seed, 2, g);
    const children: Candidate[] = [];
    for (const p of pop) children.push(await make(mutate(p.genome, rng, space), g, p.id));
    const left = [...pop, ...children];
    const elite = left.reduce((a, b) => (better(b, a) ? b : a));
    left.splice(left.indexOf(elite), 1);
    const next = [elite];
    while (next.length < o.population && left.length) {
      const entrants = Array.from({ length: Math.min(k, left.length) }, () => left.splice(rng.int(left.length), 1)[0]);
      const winner = entrants.reduce((a, b) => (better(b, a) ? b : a));
      next.push(winner);
      // The losers go back: a tournament removes only its winner from the pool.
      for (const e of entrants) if (e !== winner) left.push(e);
      left.sort((a, b) => a.id - b.id);
    }
    pop = next;
    generations.push(record(g, pop));
  }
  const best = candidates[generations[generations.length - 1].best];
  return { best, candidates, generations };
}
