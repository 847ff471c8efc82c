/**
 * The long fuzz campaign over every parser that takes outside bytes:
 *
 *   npm run fuzz -- --count 1000000 [--seed 42] [--target dicom-part10]
 *
 * Inputs come from fast-check (mutations of valid files of every transfer syntax, and random bytes),
 * run in a child process; a crash is any exception other than a PacsGuardError, a hang is an input
 * that takes longer than the watchdog allows (the child is then replaced). Reports inputs tried,
 * crashes and hangs per target, and writes reproducers (seed and index) for each finding.
 */
import fc from 'fast-check';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TARGETS } from './targets.js';

const HANG_MS = 5000;
// A child first transpiles, builds its seeds and draws its inputs; only then does the hang watch start.
const STARTUP_MS = 120_000;
const BEAT_EVERY = 100;

interface Finding {
  readonly target: string;
  readonly kind: 'crash' | 'hang';
  readonly seed: number;
  readonly index: number;
  readonly detail: string;
}

const child = process.env.PACSGUARD_FUZZ_CHUNK;
if (child) {
  // Child: runs inputs [from, to) of one target, reporting progress so the watchdog can tell a hang.
  const { target, seed, from, to } = JSON.parse(child) as { target: string; seed: number; from: number; to: number };
  const t = TARGETS.find((x) => x.name === target)!;
  const samples = fc.sample(t.input, { seed, numRuns: to });
  const send = (m: object) => new Promise<void>((ok) => process.send!(m, () => ok()));
  for (let i = from; i < to; i++) {
    // Progress every 100 inputs is enough for the watchdog; the index of a hang is then known to ±100.
    if (i % BEAT_EVERY === 0) await send({ type: 'at', index: i });
    try {
      t.run(samples[i]);
    } catch (err) {
      await send({ type: 'crash', index: i, detail: String((err as Error)?.stack ?? err).slice(0, 800) });
    }
  }
  await send({ type: 'done' });
  process.exit(0);
} else {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
  const count = Number(args.get('count') ?? 100_000);
  const seed = Number(args.get('seed') ?? 20261124);
  const only = args.get('target');
  const targets = TARGETS.filter((t) => !only || t.name === only);
  const findings: Finding[] = [];
  const perTarget = Math.ceil(count / targets.length);
  const CHUNK = 20_000; // inputs per worker run: fast-check's sample is built per chunk, bounding memory
  const started = Date.now();

  const runChunk = (target: string, chunkSeed: number, from: number, to: number) => new Promise<number>((resolve) => {
    const worker = fork(fileURLToPath(import.meta.url), [], {
      execArgv: process.execArgv,
      env: { ...process.env, PACSGUARD_FUZZ_CHUNK: JSON.stringify({ target, seed: chunkSeed, from, to }) },
    });
    let at = from;
    let lastBeat = Date.now();
    let started = false;
    const watchdog = setInterval(() => {
      if (Date.now() - lastBeat > (started ? HANG_MS : STARTUP_MS)) {
        findings.push({ target, kind: 'hang', seed: chunkSeed, index: at, detail: started ? `no progress for ${HANG_MS} ms within inputs ${at}..${at + BEAT_EVERY - 1}` : `no start within ${STARTUP_MS} ms` });
        clearInterval(watchdog);
        worker.kill('SIGKILL');
        resolve(at + BEAT_EVERY);
      }
    }, 250);
    worker.on('message', (m: { type: string; index?: number; detail?: string }) => {
      lastBeat = Date.now();
      started = true;
      if (m.type === 'at') at = m.index!;
      else if (m.type === 'crash') findings.push({ target, kind: 'crash', seed: chunkSeed, index: m.index!, detail: m.detail! });
      else if (m.type === 'done') {
        clearInterval(watchdog);
        worker.kill('SIGKILL');
        resolve(to);
      }
    });
    worker.on('exit', (code, signal) => {
      if (code === 0 || signal === 'SIGKILL') return;
      findings.push({ target, kind: 'crash', seed: chunkSeed, index: at, detail: `process died (${code ?? signal})` });
      clearInterval(watchdog);
      resolve(at + BEAT_EVERY);
    });
  });

  const tried = new Map<string, number>();
  for (const t of targets) {
    let done = 0;
    for (let chunk = 0; done < perTarget; chunk++) {
      const n = Math.min(CHUNK, perTarget - done);
      // Each chunk has its own seed, so a finding reproduces from (seed, index) alone.
      let from = 0;
      while (from < n) from = await runChunk(t.name, seed + chunk, from, n);
      done += n;
      process.stderr.write(`\r${t.name}: ${done}/${perTarget}`);
    }
    process.stderr.write('\n');
    tried.set(t.name, done);
  }
  const seconds = (Date.now() - started) / 1000;
  console.log('| target | inputs | crashes | hangs |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const t of targets) {
    const f = findings.filter((x) => x.target === t.name);
    console.log(`| ${t.name} | ${tried.get(t.name)} | ${f.filter((x) => x.kind === 'crash').length} | ${f.filter((x) => x.kind === 'hang').length} |`);
  }
  const total = [...tried.values()].reduce((a, b) => a + b, 0);
  console.log(`\n${total} inputs in ${seconds.toFixed(0)} s (seed ${seed}): ${findings.filter((f) => f.kind === 'crash').length} crashes, ${findings.filter((f) => f.kind === 'hang').length} hangs`);
  for (const f of findings.slice(0, 20)) console.log(`- ${f.kind} in ${f.target} (seed ${f.seed}, index ${f.index}): ${f.detail.split('\n')[0]}`);
  if (findings.length > 0) process.exitCode = 1;
}
