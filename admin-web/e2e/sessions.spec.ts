// My sessions: every session of the caller, and signing out of all of them at once.
import { checkPage, consoleUrl, expect, keepLocal, signInWithSso, test } from './fixtures';

test('a user signed in twice sees both sessions and signs out everywhere', async ({ page, stack, browser }) => {
  await signInWithSso(page, stack, 'victor');
  const other = await browser.newContext();
  await keepLocal(other, stack);
  const otherPage = await other.newPage();
  await signInWithSso(otherPage, stack, 'victor');

  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'My sessions' }).click();
  await expect(page.getByRole('heading', { name: 'My sessions', level: 1 })).toBeVisible();
  // Both logins are listed (earlier tests may have left more); this one is marked.
  await expect.poll(() => page.locator('tbody tr').count()).toBeGreaterThanOrEqual(2);
  await expect(page.getByRole('row', { name: /this session/ })).toHaveCount(1);
  await checkPage(page, 'sessions');

  // Cancelling changes nothing.
  await page.getByRole('button', { name: 'Sign out everywhere' }).click();
  const dialog = page.getByRole('dialog', { name: 'Sign out everywhere?' });
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('heading', { name: 'My sessions', level: 1 })).toBeVisible();

  await page.getByRole('button', { name: 'Sign out everywhere' }).click();
  await dialog.getByRole('button', { name: 'Sign out everywhere' }).click();
  await expect(page.getByText('You are signed out.')).toBeVisible();
  expect(await page.evaluate(() => sessionStorage.getItem('cc.credential'))).toBeNull();

  // The other browser is signed out at its next call.
  await otherPage.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Models' }).click();
  await expect(otherPage.getByText('Your session has ended. Sign in again.')).toBeVisible();
  await otherPage.goto(consoleUrl(stack, 'sessions'));
  await expect(otherPage.getByRole('heading', { name: 'Sign in to CodexContinue' })).toBeVisible();
  await other.close();
});
