// The dashboard's route and its embedded assets, without a browser: what is served, with which
// headers, that the embedded copy matches the files, and that it survives an esbuild bundle.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { ASSETS } from '../../functions/api/dashboard/assets.ts';
import { assetFiles, readAsset, renderAssetsModule } from '../../functions/api/dashboard/build.ts';
import { dashboard } from '../../functions/api/routes/dashboard.ts';

/** The code esbuild bundles from `entry` for Node 20, as the Lambda build does. */
async function bundled(entry: string, format: 'esm' | 'cjs'): Promise<string> {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format,
    target: 'node20',
    write: false,
    logLevel: 'error',
  });
  return out.outputFiles[0]?.text ?? '';
}

describe('embedded dashboard assets', () => {
  it('match the files in functions/api/dashboard (run `npm run dashboard:build` after editing them)', () => {
    expect(Object.keys(ASSETS).sort()).toEqual(assetFiles());
    for (const name of assetFiles()) expect(ASSETS[name]?.body, name).toBe(readAsset(name));
  });

  it('are exactly what the generator writes today', () => {
    expect(readFileSync('functions/api/dashboard/assets.ts', 'utf8')).toBe(renderAssetsModule());
  });
});

describe('dashboard route', () => {
  it('serves the page at / with a strict content security policy and no auth', async () => {
    const res = await dashboard.request('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(await res.text()).toContain('<script type="module" src="/dashboard/app.js"></script>');
  });

  it('serves every module and stylesheet the page refers to', async () => {
    const html = await (await dashboard.request('/')).text();
    const refs = [...html.matchAll(/(?:src|href)="(\/dashboard\/[^"]+)"/g)].map((m) => m[1] as string);
    expect(refs).toContain('/dashboard/style.css');
    for (const ref of refs) {
      const res = await dashboard.request(ref);
      expect(res.status, ref).toBe(200);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    expect((await dashboard.request('/dashboard/app.js')).headers.get('content-type')).toMatch(
      /^text\/javascript/,
    );
  });

  it('answers a matching If-None-Match with 304 and no body', async () => {
    const first = await dashboard.request('/dashboard/app.js');
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^".+"$/);
    const again = await dashboard.request('/dashboard/app.js', { headers: { 'if-none-match': etag ?? '' } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
  });

  it('answers 404 for files it does not have, including paths that try to climb out', async () => {
    for (const path of [
      '/dashboard/nope.js',
      '/dashboard/build.ts',
      '/dashboard/assets.ts',
      '/dashboard/..%2Fapp.ts',
    ]) {
      expect((await dashboard.request(path)).status, path).toBe(404);
    }
  });

  it('still serves the page when esbuild bundles it, as the Lambda bundle does', async () => {
    const code = await bundled('functions/api/routes/dashboard.ts', 'esm');
    const module = (await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)) as {
      dashboard: typeof dashboard;
    };
    const res = await module.dashboard.request('/');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(ASSETS['index.html']?.body);
  });

  it('is served by the esbuild bundle of the Lambda entry, through the API Gateway adapter', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'seesaw-lambda-'));
    const file = join(dir, 'lambda.cjs');
    writeFileSync(file, await bundled('functions/api/lambda.ts', 'cjs'));
    // The entry builds its clients at load; nothing here reaches storage.
    const env: Record<string, string> = {
      SEESAW_TABLE: 'seesaw-bundle-test',
      SEESAW_BUCKET: 'seesaw-bundle-test',
      SEESAW_AUTH: 'gateway',
      AWS_REGION: 'us-east-1',
    };
    const saved = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
    Object.assign(process.env, env);
    try {
      const { handler } = createRequire(import.meta.url)(file) as {
        handler: (
          event: unknown,
          context: unknown,
        ) => Promise<{ statusCode: number; headers: Record<string, string>; body: string }>;
      };
      const get = (path: string) =>
        handler(
          {
            version: '2.0',
            routeKey: '$default',
            rawPath: path,
            rawQueryString: '',
            headers: { host: 'api.example.com' },
            requestContext: {
              http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '192.0.2.1', userAgent: 'test' },
              domainName: 'api.example.com',
              requestId: 'r',
              routeKey: '$default',
              stage: '$default',
            },
            isBase64Encoded: false,
          },
          {},
        );
      const page = await get('/');
      expect(page.statusCode).toBe(200);
      expect(page.body).toBe(ASSETS['index.html']?.body);
      const script = await get('/dashboard/app.js');
      expect(script.statusCode).toBe(200);
      expect(script.body).toBe(ASSETS['app.js']?.body);
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
