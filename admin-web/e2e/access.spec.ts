// What each role sees: the navigation follows the roles, and a page outside them is
// refused by URL too.
import { checkPage, consoleUrl, expect, signInWithSso, test } from './fixtures';

const ADMIN_PAGES = ['audit', 'usage', 'users'];

test('a viewer sees no admin page and can only read chats', async ({ page, stack }) => {
  await signInWithSso(page, stack, 'victor');
  const nav = page.getByRole('navigation', { name: 'Console' });
  await expect(nav.getByRole('link', { name: 'Chat' })).toBeVisible();
  for (const name of ['API keys', 'Audit trail', 'Budgets and usage', 'Users and roles']) {
    await expect(nav.getByRole('link', { name })).toHaveCount(0);
  }
  await page.goto(consoleUrl(stack, 'chat'));
  await expect(page.getByText('Your role may read conversations but not start them.')).toBeVisible();
  await expect(page.getByRole('textbox', { name: 'Message', exact: true })).toBeDisabled();
});

test('a member cannot reach admin pages by URL', async ({ page, stack }) => {
  await signInWithSso(page, stack, 'alice');
  for (const path of ADMIN_PAGES) {
    await page.goto(consoleUrl(stack, path));
    await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible();
  }
  await checkPage(page, 'not-allowed');
});

test('an auditor reads the trail and usage, not budgets', async ({ page, stack }) => {
  await signInWithSso(page, stack, 'audrey');
  await page.goto(consoleUrl(stack, 'usage'));
  await expect(page.getByRole('heading', { name: 'Budgets and usage' })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Budgets' })).toHaveCount(0);
  await page.goto(consoleUrl(stack, 'audit'));
  await expect(page.getByRole('button', { name: 'Verify chain' })).toBeVisible();
  await expect(page.getByLabel('Keep events (days)')).toHaveCount(0);
});
