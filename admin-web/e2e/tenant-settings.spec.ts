// Tenant settings: an owner renames the tenant and sets its PHI policy; roles below admin
// cannot open them.
import { checkPage, consoleUrl, expect, signInWithSso, test } from './fixtures';

const REFUSE = 'refuse: keep prompts with PHI from external providers';

test('an owner changes the tenant name and PHI policy', async ({ page, stack }) => {
  await signInWithSso(page, stack, 'owner');
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Tenant settings' }).click();
  await expect(page.getByRole('heading', { name: 'Tenant settings', level: 1 })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'acme', level: 2 })).toBeVisible();
  const name = page.getByLabel('Display name');
  const policy = page.getByLabel('PHI policy');
  const before = { name: await name.inputValue(), policy: await policy.inputValue() };

  // A blank name is refused next to the field.
  await name.fill(' ');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(name).toHaveAttribute('aria-invalid', 'true');
  await expect(page.locator('.field-error')).toContainText(/\S/);

  await name.fill('Acme Health (console e2e)');
  await policy.selectOption({ label: REFUSE });
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved.' })).toBeVisible();
  await page.reload();
  await expect(page.getByLabel('Display name')).toHaveValue('Acme Health (console e2e)');
  await expect(page.getByLabel('PHI policy').locator('option:checked')).toHaveText(REFUSE);
  await checkPage(page, 'tenant-settings');

  // Put them back for the tests that chat after this one.
  await page.getByLabel('Display name').fill(before.name);
  await page.getByLabel('PHI policy').selectOption(before.policy);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Saved.' })).toBeVisible();
});

test('an auditor does not see the tenant settings and is refused by URL', async ({ page, stack }) => {
  await signInWithSso(page, stack, 'audrey');
  await expect(page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Tenant settings' })).toHaveCount(0);
  await page.goto(consoleUrl(stack, 'tenant'));
  await expect(page.getByRole('heading', { name: 'Not allowed' })).toBeVisible();
});
