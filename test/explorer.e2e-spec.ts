import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { createAdvancedNotesClient } from '../client/index';
import { CHROMIUM_LEG, CHROMIUM_PATH } from './harness/chromium';
import { describeIfLeg } from './harness/legs';
import { startTestApp, type TestApp } from './support/test-app';
import { report } from './support/report';

/** Debian's Chromium (apt-get install chromium); playwright-core drives it, nothing is downloaded. */
const CHROMIUM = CHROMIUM_PATH;
const SCREENSHOT = join(__dirname, '..', '.test-tmp', 'explorer-try-it-out.png');
/** `UPDATE_SCREENSHOT=1` refreshes docs/explorer-try-it-out.png (shown in docs/clients.md) from this run. */
const DOCS_SCREENSHOT = join(__dirname, '..', 'docs', 'explorer-try-it-out.png');

describeIfLeg(CHROMIUM_LEG)('the OpenAPI explorer in a real browser (Chromium)', () => {
  let testApp: TestApp;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    testApp = await startTestApp({ database: 'sqlite', storage: 'local' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.setDefaultTimeout(30_000);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await testApp?.close();
  });

  /** Expands an operation, presses Try it out, then Execute with the pre-filled example; returns the answer shown. */
  async function tryItOut(operationId: string, tag: string): Promise<{ status: string; body: any; block: Locator }> {
    const block = page.locator(`#operations-${tag}-${operationId}`);
    await block.locator('.opblock-summary').first().click();
    await block.locator('button.try-out__btn').click();
    await block.locator('button.execute').click();
    const answer = block.locator('.live-responses-table tbody tr.response').first();
    const status = (await answer.locator('.response-col_status').innerText()).trim();
    const body: unknown = JSON.parse(await answer.locator('.response-col_description pre').first().innerText());
    report(`explorer: Try it out on ${operationId} answered ${status}\n${JSON.stringify(body, null, 2)}`);
    return { status, body, block };
  }

  it('signs in with Authorize and runs the pre-filled examples of POST /api/notes and POST /api/audio-clips: 201 each', async () => {
    const token = await testApp.tokenFor('explorer-user');
    await page.goto(`${testApp.baseUrl}/api/docs`);
    await page.locator('button.authorize').first().click();
    await page.locator('.modal-ux input').fill(token);
    await page.locator('.modal-ux .auth-btn-wrapper button.authorize').click();
    await page.locator('.modal-ux button.btn-done').click();

    const note = await tryItOut('createNote', 'notes');
    expect(note.status).toBe('201');
    expect(note.body).toMatchObject({ id: expect.any(String), title: 'Standup ideas' });

    const clip = await tryItOut('createAudioClip', 'audio-clips');
    expect(clip.status).toBe('201');
    expect(clip.body.clip).toMatchObject({ status: 'pending', mime_type: 'audio/m4a', duration_source: 'declared' });
    expect(clip.body.upload).toMatchObject({ method: 'PUT', url: expect.stringContaining(testApp.baseUrl) });

    // What the page showed is what the server holds, for the user of the pasted token.
    const api = createAdvancedNotesClient({ baseUrl: testApp.baseUrl, token });
    const stored = await api.GET('/api/audio-clips/{clip_id}', { params: { path: { clip_id: clip.body.clip.id } } });
    expect(stored.data?.status).toBe('pending');
    const notes = await api.GET('/api/notes');
    expect(notes.data?.items.map((item) => item.id)).toEqual([note.body.id]);

    await clip.block.locator('.live-responses-table').scrollIntoViewIfNeeded();
    await mkdir(join(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    if (process.env.UPDATE_SCREENSHOT === '1') await copyFile(SCREENSHOT, DOCS_SCREENSHOT);
  }, 120_000);
});
