import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStore } from '../src/store/lmdb.js';
import { testStore } from './store-conformance.js';

testStore('lmdb', async () => {
  const path = mkdtempSync(join(tmpdir(), 'eventrail-store-'));
  const open = () => LmdbStore.open({ path, prefix: 'eventrail' });
  return {
    store: await open(),
    reopen: open,
    cleanup: async () => rmSync(path, { recursive: true, force: true }),
  };
});
