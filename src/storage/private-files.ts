import { chmod, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The umask PacsGuard runs under: files it creates are its own alone (0600, blobs 0400) and folders
 * 0700, whatever umask the operator's shell or service manager left. The index, the audit log, blobs,
 * staging and quarantine files hold patient data or secrets; SQLite, and any library writing for us,
 * creates files with 0644 less the umask, so the umask is what closes them.
 */
const PRIVATE_UMASK = 0o077;

/** Makes every file and folder this process creates from now on private to its account. */
export function keepNewFilesPrivate(): void {
  process.umask(PRIVATE_UMASK);
}

/**
 * Closes a data directory (or backup) made before files were kept private: the folder and its
 * immediate folders become 0700 (so nothing below them can be reached by others, however many blobs
 * they hold) and its immediate files 0600. Cheap enough for every start.
 */
export async function closeDataDirectory(root: string): Promise<void> {
  await chmod(root, 0o700);
  for (const entry of await readdir(root, { withFileTypes: true })) {
    if (entry.isDirectory()) await chmod(join(root, entry.name), 0o700);
    else if (entry.isFile()) await chmod(join(root, entry.name), 0o600);
  }
}
