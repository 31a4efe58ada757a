// The audit trail: events of what was just done, their details, filters, verification,
// the checkpoint public key.
import { checkPage, consoleUrl, expect, signInWithSso, test } from './fixtures';

test('an owner reads, filters and verifies the audit trail', async ({ page, stack }) => {
  await signInWithSso(page, stack, 'owner');
  await page.goto(consoleUrl(stack, 'audit'));
  const table = page.getByRole('table', { name: 'Audit events, newest first' });
  await expect(table).toBeVisible();
  await expect(table.getByRole('row').nth(1)).toBeVisible();
  await checkPage(page, 'audit');

  // The detail drawer of an event.
  await table.getByRole('button', { name: /Details of event/ }).first().click();
  const drawer = page.getByRole('dialog', { name: /^Event \d+$/ });
  await expect(drawer.getByText('Hash')).toBeVisible();
  await checkPage(page, 'audit-event');
  await drawer.getByRole('button', { name: 'Close' }).click();

  // Filter by an action.
  await page.getByLabel('Action').fill('/codexcontinue.v1.AdminService/SetIdentityProvider');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(table.getByRole('row')).toHaveCount(2);
  await expect(table).toContainText('SetIdentityProvider');

  await page.getByRole('button', { name: 'Verify chain' }).click();
  await expect(page.getByTestId('verify-result')).toContainText(/Intact: [\d,]+ events/);

  // The checkpoint public key, for checking exported checkpoints elsewhere.
  await expect(page.getByTestId('checkpoint-key-id')).toHaveText(/^[0-9a-f]{16}$/);
  await expect(page.getByTestId('checkpoint-public-key')).toHaveText(/^[A-Za-z0-9+/]{43}=$/);

  // Retention is the owner's to change.
  await expect(page.getByLabel('Keep events (days)')).toBeVisible();

  // Export downloads the filtered events.
  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Export JSONL' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^audit-.*\.jsonl$/);
});
