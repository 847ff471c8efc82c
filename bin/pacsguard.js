#!/usr/bin/env node
// The pacsguard command: run `npm run build` first (the README's start command does).
import { main } from '../dist/cli/main.js';

await main(process.argv);
