import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { contentType } from 'mime-types';

/** The path the viewer is served under; OHIF's prebuilt files are built for `/` and rebased to it. */
export const VIEWER_BASE = '/viewer/';

/** One of the viewer's files, ready to send. */
export interface ViewerFile {
  readonly body: Buffer;
  readonly type: string;
  /** Whether the name carries a content hash (`app.bundle.0f6159c501addfe9.js`): then it never changes. */
  readonly immutable: boolean;
  /** SHA-256 of each inline script of an HTML page, for its Content-Security-Policy. */
  readonly inlineScriptHashes: readonly string[];
}

const HASHED_NAME = /\.[0-9a-f]{16,}\.[a-z0-9]+$/;
const REBASED_TYPES = new Set(['.html', '.js', '.css']);

/**
 * OHIF's prebuilt application fixes its base at build time: `window.PUBLIC_URL="/"` and root-relative
 * `src`/`href` in index.html, the webpack runtime's public path in each entry bundle, `url(/…)` in CSS.
 * Served under another path, exactly those are rewritten as they are served (where deployments of a
 * prebuilt OHIF otherwise `sed` the files), so the files on disk stay the registry's and a new OHIF
 * release needs no rebuild.
 */
export function rebase(text: string, ext: string, base: string): string {
  if (ext === '.html') {
    return text
      .replaceAll('window.PUBLIC_URL="/"', `window.PUBLIC_URL="${base}"`)
      .replace(/\b(src|href)="\/(?!\/)/g, `$1="${base}`);
  }
  if (ext === '.js') return text.replaceAll('__webpack_require__.p = "/";', `__webpack_require__.p = "${base}";`);
  return text.replace(/url\(\/(?!\/)/g, `url(${base}`);
}

/** SHA-256 (CSP source form) of each inline `<script>` of a page. */
function inlineScriptHashes(html: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)) {
    out.push(`'sha256-${createHash('sha256').update(m[1] ?? '').digest('base64')}'`);
  }
  return out;
}

/**
 * The viewer's files from a directory: a request path resolves to a file inside it, and only inside it;
 * a path naming no file and no extension is one of the single-page application's routes (its index.html).
 * Links inside the directory are followed: what it holds is the operator's choice, what a request names
 * is not. Rewritten files are kept until they change on disk.
 */
export class ViewerFiles {
  private readonly root: string;
  private readonly cache = new Map<string, { mtimeMs: number; file: ViewerFile }>();

  constructor(directory: string, private readonly base = VIEWER_BASE) {
    this.root = resolve(directory);
  }

  /** The file for a path below the base (already URL-decoded), or undefined when there is none. */
  async read(relative: string): Promise<ViewerFile | undefined> {
    const segments = relative.split('/').filter((s) => s !== '');
    // Dot segments, hidden files and encoded separators name nothing the viewer ships.
    if (segments.some((s) => s.startsWith('.') || s.includes('\\') || s.includes('\0'))) return undefined;
    const found = await this.load(segments.length > 0 ? join(this.root, ...segments) : join(this.root, 'index.html'));
    if (found) return found;
    const last = segments.at(-1) ?? '';
    return extname(last) === '' ? this.load(join(this.root, 'index.html')) : undefined;
  }

  private async load(path: string): Promise<ViewerFile | undefined> {
    if (path !== this.root && !path.startsWith(this.root + sep)) return undefined;
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    const cached = this.cache.get(path);
    if (cached && cached.mtimeMs === info.mtimeMs) return cached.file;
    const ext = extname(path).toLowerCase();
    const raw = await readFile(path);
    let body = raw;
    if (REBASED_TYPES.has(ext)) {
      const text = raw.toString('utf8');
      const rebased = rebase(text, ext, this.base);
      if (rebased !== text) body = Buffer.from(rebased, 'utf8');
    }
    const file: ViewerFile = {
      body,
      type: contentType(ext) || 'application/octet-stream',
      immutable: HASHED_NAME.test(path),
      inlineScriptHashes: ext === '.html' ? inlineScriptHashes(body.toString('utf8')) : [],
    };
    // Only what was rewritten (index.html, a few bundles) is worth keeping; the rest is read as asked.
    if (body !== raw || ext === '.html') this.cache.set(path, { mtimeMs: info.mtimeMs, file });
    return file;
  }
}
