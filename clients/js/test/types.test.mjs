// src/index.d.ts describes src/index.js: the README's usage compiles
// against it with tsc --strict (typescript is a dev dependency).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as sdk from '../src/index.js';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');

test('index.d.ts: an example compiles with tsc --strict', () => {
    const r = spawnSync(process.execPath, [
        join(top, 'node_modules/typescript/bin/tsc'), '--noEmit', '--strict',
        '--target', 'es2022', '--module', 'nodenext',
        '--moduleResolution', 'nodenext', '--lib', 'es2022,dom',
        join(top, 'test/types-example.ts')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('index.d.ts names every export of index.js', async () => {
    const dts = (await import('node:fs')).readFileSync(
        join(top, 'src/index.d.ts'), 'utf8');
    for (const name of Object.keys(sdk)) {
        assert.match(dts, new RegExp('export (declare )?(const|class|'
            + 'function) ' + name + '\\b'), name);
    }
});
