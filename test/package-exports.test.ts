/**
 * The package's `exports`: every entry points into dist/ at a file the build
 * makes from src/, and the shipped consumer resolves by its public name.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as {
  name: string;
  exports: Record<string, string | Record<string, string>>;
};

/** dist/a/b.js and dist/a/b.d.ts are built from src/a/b.ts (tsconfig.build.json: rootDir src, outDir dist). */
const sourceOf = (target: string) => target.replace(/^\.\/dist\//, 'src/').replace(/(\.d)?\.js$|\.d\.ts$/, '.ts');

describe('package exports', () => {
  it('map every entry to a file the build makes', () => {
    for (const [entry, targets] of Object.entries(pkg.exports)) {
      if (entry === './package.json') continue;
      assert.ok(typeof targets === 'object', `${entry}: types and default`);
      assert.deepEqual(Object.keys(targets), ['types', 'default'], `${entry}: types first, as TypeScript needs`);
      for (const target of Object.values(targets)) {
        assert.match(target, /^\.\/dist\/.+\.(d\.ts|js)$/, `${entry}: ${target}`);
        assert.ok(existsSync(`${ROOT}${sourceOf(target)}`), `${entry}: ${target} is built from ${sourceOf(target)}, which exists`);
      }
    }
  });

  it('ship the MetricsCollector consumer as eventrail/consumers/metrics-collector', () => {
    const url = import.meta.resolve(`${pkg.name}/consumers/metrics-collector`);
    assert.equal(url, pathToFileURL(`${ROOT}dist/consumers/metrics-collector.js`).href);
  });
});
