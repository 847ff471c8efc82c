import { setFlagsFromString } from 'node:v8';

/**
 * Lets V8's heap grow to twice what survived the last full collection (heap growing 100 %) rather
 * than the factor V8 picks, which for an archive came out at about 1.6.
 *
 * Why: V8 picks the factor from how fast JavaScript objects are allocated, and an archive allocates
 * mostly buffers, which that does not count (each 0.5 MB C-STORE instance three times over: TLS
 * records, PDUs, the Part 10 file). With 40 MB live and the limit at 64 MB, incremental marking began
 * every 10–15 instances, and its steps and write barriers took a fifth of the throughput. Measured
 * build against build, taking turns: C-STORE over one association +30 %, over four +30 %
 * (bench/compare-builds.ts); STOW-RS of single instances +38 %, WADO-RS instances +15 %, series +12 %.
 * The price is memory held between collections: peak RSS over 400 CT and 4 × 52 MB C-STORE instances
 * was 280 MB with V8's factor, 304 MB with this, 355 MB at 150 % (which was no faster, within noise).
 * Buffers stay bounded whatever this says: V8 starts marking on its own after 64 MB of new buffer memory.
 *
 * Process-wide: set once by the pacsguard command's entry (and the bench's insecure baseline, which
 * stands in for `pacsguard start`); the heap reads it after each full collection, so it works when set
 * after start.
 */
export function tuneGarbageCollection(): void {
  setFlagsFromString('--heap-growing-percent=100');
}
