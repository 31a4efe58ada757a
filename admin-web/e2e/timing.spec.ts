// How fast the sign-in and chat pages become usable: from the start of the navigation to
// the first element a user acts on (written to test-results/timings.json).
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { consoleUrl, expect, signInWithKey, test } from './fixtures';

const timings: Record<string, number> = {};

test.afterAll(() => {
  const dir = path.resolve(import.meta.dirname, '../test-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'timings.json'), JSON.stringify(timings, null, 2));
  console.log(`time to interactive (ms): ${JSON.stringify(timings)}`);
});

/** Milliseconds since the navigation started, read in the page. */
const sinceNavigation = () => performance.now();

test('sign-in and chat become interactive quickly', async ({ page, stack }) => {
  await page.goto(consoleUrl(stack, 'sign-in'));
  await expect(page.getByRole('button', { name: 'Continue with SSO' })).toBeEnabled();
  timings['sign-in'] = Math.round(await page.evaluate(sinceNavigation));

  await signInWithKey(page, stack, stack.ownerKey);
  await page.goto(consoleUrl(stack, 'chat'));
  await expect(page.getByRole('textbox', { name: 'Message', exact: true })).toBeEnabled();
  await expect(page.getByRole('button', { name: 'New conversation' })).toBeVisible();
  timings.chat = Math.round(await page.evaluate(sinceNavigation));

  expect(timings['sign-in']).toBeLessThan(5000);
  expect(timings.chat).toBeLessThan(5000);
});
