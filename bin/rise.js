#!/usr/bin/env node
// The CLI is TypeScript run as-is: tsx compiles it on import, so there is no build step to forget.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
