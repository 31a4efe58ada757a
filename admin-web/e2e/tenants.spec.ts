// Tenants: only platform operators see them; they create, suspend and resume one.
import { checkPage, consoleUrl, expect, signInWithKey, test } from './fixtures';

test('a platform admin manages tenants; a tenant owner cannot', async ({ page, stack }) => {
  await signInWithKey(page, stack, stack.ownerKey);
  await expect(page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Tenants' })).toHaveCount(0);
  await page.goto(consoleUrl(stack, 'tenants'));
  await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible();
  await page.getByRole('button', { name: 'Sign out' }).click();

  await signInWithKey(page, stack, stack.platformKey);
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Tenants' }).click();
  await page.getByLabel('Slug').fill('globex');
  await page.getByLabel('Display name').fill('Globex');
  await page.getByRole('button', { name: 'Create tenant' }).click();
  const row = page.getByRole('row', { name: /globex/ });
  await expect(row).toContainText('active');
  await row.getByRole('button', { name: 'Suspend globex' }).click();
  await expect(row).toContainText('suspended');
  await row.getByRole('button', { name: 'Resume globex' }).click();
  await expect(row).toContainText('active');
  await checkPage(page, 'tenants');
});
