import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderConfigurationDoc, undescribedOptions } from '../../scripts/config-doc.js';

describe('docs/configuration.md', () => {
  it('is what the schema says today (regenerate with npm run docs:config)', () => {
    expect(readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'configuration.md'), 'utf8')).toBe(renderConfigurationDoc());
  });

  it('describes every option, on the option or on the section it belongs to', () => {
    expect(undescribedOptions()).toEqual([]);
  });
});
