// Signing in and out: through the identity provider, with an API key, and the refusals.
import { consoleUrl, checkPage, continueWithSso, expect, signInWithKey, signInWithSso, test } from './fixtures';

test('the sign-in page loads under the server CSP and passes the accessibility check', async ({ page, stack }) => {
  const response = await page.goto(consoleUrl(stack, 'sign-in'));
  expect(response?.headers()['content-security-policy']).toContain("default-src 'self'");
  await expect(page.getByRole('heading', { name: 'Sign in to CodexContinue' })).toBeVisible();
  await checkPage(page, 'sign-in');
});

test('an owner signs in through SSO, sees the admin pages, and signs out', async ({ page, stack }) => {
  await signInWithSso(page, stack, 'owner');
  await expect(page.getByText('owner@acme.example')).toBeVisible();
  const nav = page.getByRole('navigation', { name: 'Console' });
  for (const name of ['Chat', 'API keys', 'Audit trail', 'Budgets and usage', 'Users and roles']) {
    await expect(nav.getByRole('link', { name })).toBeVisible();
  }
  // The session survives a reload (kept in the tab), not in localStorage.
  await page.reload();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
  expect(await page.evaluate(() => Object.keys(localStorage))).toEqual([]);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page.getByText('You are signed out.')).toBeVisible();
  // The ended session is refused: a reload stays signed out.
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Sign in to CodexContinue' })).toBeVisible();
});

test('a page asked for while signed out opens after signing in through SSO', async ({ page, stack }) => {
  await page.goto(consoleUrl(stack, 'audit'));
  await expect(page).toHaveURL(/\/console\/sign-in$/);
  await continueWithSso(page, stack, 'owner');
  await expect(page).toHaveURL(/\/console\/audit$/);
  await expect(page.getByRole('heading', { name: 'Audit trail', level: 1 })).toBeVisible();
  // Used once: the start page leads home again.
  expect(await page.evaluate(() => sessionStorage.getItem('cc.return'))).toBeNull();
  await page.goto(consoleUrl(stack));
  await expect(page).toHaveURL(/\/console\/chat$/);
});

test('an unknown tenant is refused on the sign-in page', async ({ page, stack }) => {
  await page.goto(consoleUrl(stack, 'sign-in'));
  await page.getByLabel('Organisation (tenant)').fill('no-such-tenant');
  await page.getByRole('button', { name: 'Continue with SSO' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(page).toHaveURL(/\/console\/sign-in$/);
});

test('a wrong API key is refused; the right one signs in', async ({ page, stack }) => {
  await page.goto(consoleUrl(stack, 'sign-in'));
  await page.getByLabel('API key', { exact: true }).fill('cc_live_not_a_real_key');
  await page.getByRole('button', { name: 'Sign in with key' }).click();
  await expect(page.getByRole('alert')).toContainText(/Unauthenticated/);
  await signInWithKey(page, stack, stack.ownerKey);
});

test('a login code without the binding of this tab is refused', async ({ page, stack }) => {
  await page.goto(consoleUrl(stack, '#code=forged'));
  await expect(page.getByText(/Sign-in failed/)).toBeVisible();
  await expect(page).not.toHaveURL(/code=/);
});

test('after 30 idle minutes the console signs out', async ({ page, stack }) => {
  await page.clock.install();
  await signInWithKey(page, stack, stack.ownerKey);
  await page.clock.fastForward('29:00');
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
  await page.clock.fastForward('02:00');
  await expect(page.getByText('You were signed out after a while without activity.')).toBeVisible();
  expect(await page.evaluate(() => sessionStorage.getItem('cc.credential'))).toBeNull();
});
