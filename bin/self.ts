// The command that starts this same build of seesaw: bin/seesaw.js when running from the sources,
// dist/seesaw.js inside the bundle (whose chunks all sit in dist/ beside it).
import { fileURLToPath } from 'node:url';

export const CLI_ENTRY = fileURLToPath(new URL('./seesaw.js', import.meta.url));
