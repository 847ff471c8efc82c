/**
 * The audit trail's own cost, measured apart from TLS, the network and the machine's other load: PacsGuard
 * instances in this one process, identical but for the audit log (the real hash-chained, fdatasync'ed log
 * against a sink that records nothing) and, in a third, the behavioural detectors following the log;
 * driven in-process (fastify inject, no sockets) with the same requests, in short interleaved blocks. The figures
 * per workload are 1 − audited ÷ unaudited and 1 − with detectors ÷ audited throughput, medians of rounds.
 *
 *   npm run bench:audit-cost -- [--rounds 9]
 *
 * Writes a Markdown table and bench/results/audit-cost.json. The goal (issue: audit ≤ 5 % of ingest).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { initDataDir } from '../src/cli/init.js';
import { loadConfig, writeConfig } from '../src/config.js';
import { currentTotp, generateTotpSecret } from '../src/identity/index.js';
import { buildHttpApp } from '../src/server/http/app.js';
import { openServices, type Services } from '../src/server/services.js';
import { stowBody } from '../test/support/https.js';
import { makeInstance } from '../test/support/synth.js';
import { discardingAudit } from './discarding-audit.js';

const argv = process.argv.slice(2);
const at = argv.indexOf('--rounds');
const ROUNDS = at >= 0 ? Number(argv[at + 1]) : 9;
process.env.PACSGUARD_LOG_LEVEL ??= 'silent';

interface Instance { name: string; app: FastifyInstance; services: Services; token: string }

async function start(name: string, dir: string, audited: boolean, analytics = false): Promise<Instance> {
  const data = join(dir, name);
  await initDataDir(data);
  if (analytics) {
    // The detectors run and alert as configured by default, but only notify: a bench that reads a lot is
    // bulk retrieval, and holding the bench's own account would end the measurement.
    const path = join(data, 'config.json');
    const config = await loadConfig(path);
    await writeConfig(path, { ...config, analytics: { ...config.analytics, responses: {} } });
  }
  const opened = await openServices(data);
  const services = audited ? opened : { ...opened, audit: discardingAudit() };
  // The detectors follow the audit stream as on a running server: their cost is measured the same way.
  if (analytics) await services.startAnalytics();
  const app = await buildHttpApp(services, undefined, { logger: false });
  const secret = generateTotpSecret();
  await services.users.addUser('bench', 'technologist', 'bench technologist password', secret);
  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'bench', password: 'bench technologist password', totp: currentTotp(secret) } });
  if (login.statusCode !== 200) throw new Error(`login on ${name}: ${login.statusCode} ${login.body}`);
  return { name, app, services, token: (JSON.parse(login.body) as { access_token: string }).access_token };
}

/** CT-like instances (256×256, 16-bit) with UIDs unique to the round and instance. */
function instances(round: number, count: number, offset: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const n = offset + i;
    return makeInstance({ patientId: `AC-${round}`, studyUid: `2.25.77${round}`, seriesUid: `2.25.77${round}.${Math.floor(n / 50)}`, sopUid: `2.25.77${round}.${Math.floor(n / 50)}.${n}`, rows: 256, columns: 256, seed: n });
  });
}

/**
 * A workload is a list of requests per instance; the runner sends them in short blocks to each instance in
 * turn (rotating who goes first), so a slow moment of the machine falls on all three alike. Blocks, not
 * single requests: one instance's syncs would otherwise flush what another just wrote, and the cost of
 * one would be paid by the next.
 */
type Workload = {
  name: string; unit: string; perRequest: number; block: number;
  requests: (round: number) => Array<(inst: Instance) => Promise<void>>;
};

const ok = (inst: Instance, what: string, status: number) => {
  if (status !== 200) throw new Error(`${what} on ${inst.name}: ${status}`);
};

const workloads: Workload[] = [
  {
    name: 'stow-batch1', unit: 'instances/s', perRequest: 1, block: 25, requests(round) {
      return instances(round, 200, 0).map((p) => async (inst) => {
        const { body, contentType } = stowBody([p]);
        const r = await inst.app.inject({ method: 'POST', url: '/dicomweb/studies', payload: body, headers: { authorization: `Bearer ${inst.token}`, 'content-type': contentType } });
        ok(inst, 'STOW', r.statusCode);
      });
    },
  },
  {
    name: 'stow-batch50', unit: 'instances/s', perRequest: 50, block: 2, requests(round) {
      const parts = instances(round, 500, 1000);
      return Array.from({ length: parts.length / 50 }, (_, i) => async (inst: Instance) => {
        const { body, contentType } = stowBody(parts.slice(i * 50, i * 50 + 50));
        const r = await inst.app.inject({ method: 'POST', url: '/dicomweb/studies', payload: body, headers: { authorization: `Bearer ${inst.token}`, 'content-type': contentType } });
        ok(inst, 'STOW', r.statusCode);
      });
    },
  },
  {
    // Reads what stow-batch1 stored in the same round.
    name: 'wado-instance', unit: 'instances/s', perRequest: 1, block: 25, requests(round) {
      return Array.from({ length: 200 }, (_, n) => async (inst: Instance) => {
        const url = `/dicomweb/studies/2.25.77${round}/series/2.25.77${round}.${Math.floor(n / 50)}/instances/2.25.77${round}.${Math.floor(n / 50)}.${n}`;
        const r = await inst.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${inst.token}`, accept: 'multipart/related; type="application/dicom"' } });
        ok(inst, 'WADO', r.statusCode);
      });
    },
  },
];

/** Runs one round of a workload on every instance, block by block; returns each instance's throughput. */
async function interleaved(w: Workload, round: number, all: readonly Instance[]): Promise<Map<Instance, number>> {
  const requests = w.requests(round);
  const spent = new Map(all.map((inst) => [inst, 0]));
  for (let b = 0; b * w.block < requests.length; b++) {
    const order = [...all.slice(b % all.length), ...all.slice(0, b % all.length)];
    const block = requests.slice(b * w.block, (b + 1) * w.block);
    for (const inst of order) {
      const t = performance.now();
      for (const send of block) await send(inst);
      spent.set(inst, (spent.get(inst) as number) + performance.now() - t);
    }
  }
  return new Map(all.map((inst) => [inst, (requests.length * w.perRequest) / ((spent.get(inst) as number) / 1000)]));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pg-bench-audit-cost-'));
  const audited = await start('audited', dir, true);
  const plain = await start('unaudited', dir, false);
  const analysed = await start('audited-analysed', dir, true, true);
  try {
    const results: Array<{ name: string; unit: string; audited: number; unaudited: number; analysed: number; cost: number; roundCosts: number[]; analyticsCost: number }> = [];
    for (const w of workloads) {
      const a: number[] = [];
      const u: number[] = [];
      const z: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const got = await interleaved(w, r, [audited, plain, analysed]);
        a.push(got.get(audited) as number);
        u.push(got.get(plain) as number);
        z.push(got.get(analysed) as number);
      }
      const roundCosts = a.map((x, i) => 1 - x / (u[i] as number));
      const analyticsCost = median(z.map((x, i) => 1 - x / (a[i] as number)));
      results.push({ name: w.name, unit: w.unit, audited: median(a), unaudited: median(u), analysed: median(z), cost: median(roundCosts), roundCosts, analyticsCost });
      console.error(`${w.name}: audited ${median(a).toFixed(1)}, unaudited ${median(u).toFixed(1)}, audited with detectors ${median(z).toFixed(1)} ${w.unit}; audit ${(median(roundCosts) * 100).toFixed(1)} %, detectors ${(analyticsCost * 100).toFixed(1)} %`);
    }
    console.log(`\n| workload (in-process, interleaved blocks, ${ROUNDS} rounds) | unaudited | audited | audited + detectors | audit cost (median of rounds) | spread of rounds | detectors' cost |\n| --- | ---: | ---: | ---: | ---: | --- | ---: |`);
    for (const r of results) {
      const sorted = [...r.roundCosts].sort((x, y) => x - y);
      console.log(`| ${r.name} | ${r.unaudited.toFixed(1)} ${r.unit} | ${r.audited.toFixed(1)} ${r.unit} | ${r.analysed.toFixed(1)} ${r.unit} | ${(r.cost * 100).toFixed(1)} % | ${(sorted[0]! * 100).toFixed(1)} … ${(sorted.at(-1)! * 100).toFixed(1)} % | ${(r.analyticsCost * 100).toFixed(1)} % |`);
    }
    mkdirSync(resolve('bench/results'), { recursive: true });
    writeFileSync(resolve('bench/results/audit-cost.json'), `${JSON.stringify({ date: new Date().toISOString(), rounds: ROUNDS, workloads: results }, null, 2)}\n`);
  } finally {
    for (const inst of [audited, plain, analysed]) {
      await inst.app.close();
      await inst.services.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
