// What every browser test uses: the running stack, signing in (through the identity
// provider or with an API key), an accessibility check and a screenshot per page, and a
// guard that the page broke no rule of the server's Content-Security-Policy.
import AxeBuilder from '@axe-core/playwright';
import { test as base, expect, type BrowserContext, type Page } from '@playwright/test';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { StackInfo } from './stack/stack';
import { STATE_FILE } from './global-setup';

const SHOTS = path.resolve(import.meta.dirname, '../test-results/screenshots');

interface Fixtures {
  stack: StackInfo;
  /** Console messages about Content-Security-Policy refusals, collected during the test. */
  cspViolations: string[];
}

export const test = base.extend<Fixtures>({
  stack: async ({}, use) => {
    await use(JSON.parse(readFileSync(STATE_FILE, 'utf8')) as StackInfo);
  },
  cspViolations: [async ({ page }, use) => {
    const seen: string[] = [];
    page.on('console', (message) => {
      const text = message.text();
      if (/Content Security Policy|Refused to (load|execute|apply|evaluate|connect)/i.test(text)) seen.push(text);
    });
    await use(seen);
  }, { auto: true }],
  page: async ({ page, stack }, use) => {
    await keepLocal(page, stack);
    await use(page);
  },
});

test.afterEach(async ({ cspViolations }) => {
  expect(cspViolations, 'Content-Security-Policy violations').toEqual([]);
});

export { expect };

/** Nothing leaves this machine (the provider's login page links a web font). */
export async function keepLocal(target: Page | BrowserContext, stack: StackInfo): Promise<void> {
  const origins = [new URL(stack.baseUrl).host, new URL(stack.issuer).host];
  await target.route((url) => !origins.includes(url.host) && url.protocol.startsWith('http'), (route) => route.abort());
}

/** `/console/<rest>` on the server. */
export function consoleUrl(stack: StackInfo, rest = ''): string {
  return `${stack.baseUrl}/console/${rest}`;
}

/** Signs in through the tenant's identity provider as `login` (any password works there). */
export async function signInWithSso(page: Page, stack: StackInfo, login: string): Promise<void> {
  await page.goto(consoleUrl(stack, 'sign-in'));
  await continueWithSso(page, stack, login);
}

/** Signs in through the identity provider from the sign-in page the browser is at. */
export async function continueWithSso(page: Page, stack: StackInfo, login: string): Promise<void> {
  await page.getByLabel('Organisation (tenant)').fill('acme');
  await page.getByRole('button', { name: 'Continue with SSO' }).click();
  await page.waitForURL((url) => url.origin === new URL(stack.issuer).origin);
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  // First login of this account at the provider: it asks to share the claims.
  const back = (url: URL) => url.origin === new URL(stack.baseUrl).origin;
  const consent = page.getByRole('button', { name: 'Continue' });
  const asked = await Promise.race([
    consent.waitFor({ state: 'visible' }).then(() => true, () => false),
    page.waitForURL(back).then(() => false, () => false),
  ]);
  if (asked) await consent.click();
  await page.waitForURL(back);
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
}

/** Signs in by pasting an API key. */
export async function signInWithKey(page: Page, stack: StackInfo, key: string): Promise<void> {
  await page.goto(consoleUrl(stack, 'sign-in'));
  await page.getByLabel('API key', { exact: true }).fill(key);
  await page.getByRole('button', { name: 'Sign in with key' }).click();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
}

/** No serious or critical accessibility violation on the page as it is; saves a screenshot. */
export async function checkPage(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  expect(bad, `accessibility of ${name}`).toEqual([]);
}
