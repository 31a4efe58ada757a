// API keys: create (secret shown once), use it to sign in, revoke, and see it refused.
import { checkPage, consoleUrl, expect, signInWithKey, signInWithSso, test } from './fixtures';

test('an owner creates a key, signs in with it elsewhere, and revokes it', async ({ page, stack, browser }) => {
  await signInWithSso(page, stack, 'owner');
  await page.goto(consoleUrl(stack, 'api-keys'));
  await expect(page.getByRole('heading', { name: 'API keys', level: 1 })).toBeVisible();

  // A name the server refuses is named next to the field.
  await page.getByLabel('Name').fill(' ');
  await page.getByRole('button', { name: 'Create key' }).click();
  const name = page.getByLabel('Name');
  await expect(name).toHaveAttribute('aria-invalid', 'true');
  await expect(page.locator('.field-error')).toContainText(/\S/);

  await page.getByLabel('Name').fill('console e2e');
  // No role ticked: the key acts as a member.
  await expect(page.getByRole('checkbox', { name: 'owner' })).toBeVisible();
  await page.getByRole('button', { name: 'Create key' }).click();
  const dialog = page.getByRole('dialog', { name: 'Your new API key' });
  await expect(dialog).toBeVisible();
  const secret = (await dialog.getByTestId('new-key-secret').textContent()) ?? '';
  expect(secret).toMatch(/^cc_live_/);
  await checkPage(page, 'api-keys-created');
  await dialog.getByRole('button', { name: 'Done' }).click();
  const row = page.getByRole('row', { name: /console e2e/ });
  await expect(row).toContainText('member');
  await expect(row).toContainText('active');
  await checkPage(page, 'api-keys');

  // The new key works, with its own roles only.
  const other = await browser.newContext();
  const keyPage = await other.newPage();
  await signInWithKey(keyPage, stack, secret);
  const keyNav = keyPage.getByRole('navigation', { name: 'Console' });
  await expect(keyNav.getByRole('link', { name: 'API keys' })).toBeVisible();
  await expect(keyNav.getByRole('link', { name: 'Audit trail' })).toHaveCount(0);

  await row.getByRole('button', { name: 'Revoke console e2e' }).click();
  await page.getByRole('dialog', { name: 'Revoke key?' }).getByRole('button', { name: 'Revoke' }).click();
  await expect(page.getByRole('row', { name: /console e2e/ })).toHaveCount(0);
  await page.getByRole('checkbox', { name: 'Show revoked and expired' }).check();
  await expect(page.getByRole('row', { name: /console e2e/ })).toContainText('revoked');

  // The revoked key's console is signed out at its next call (a background refresh may
  // have made that call already).
  const memory = keyNav.getByRole('link', { name: 'My memory' });
  if (await memory.isVisible()) {
    await memory.click({ timeout: 5_000 }).catch(() => undefined);
  }
  await expect(keyPage.getByText('Your session has ended. Sign in again.')).toBeVisible();
  await other.close();
});
