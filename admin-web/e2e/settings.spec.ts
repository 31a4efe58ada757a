// The owner's settings pages: single sign-on, providers and aliases, profiles, models.
import { checkPage, consoleUrl, expect, signInWithKey, test } from './fixtures';

test('an owner reads SSO, adds an alias and a profile, and sees the models', async ({ page, stack }) => {
  await signInWithKey(page, stack, stack.ownerKey);

  await page.goto(consoleUrl(stack, 'sso'));
  await expect(page.getByLabel('Issuer URL')).toHaveValue(stack.issuer);
  await expect(page.getByLabel('Group → roles')).toHaveValue(/eng: member/);
  await expect(page.getByText('A secret is stored; leave empty to keep it.')).toBeVisible();
  await checkPage(page, 'sso');

  await page.goto(consoleUrl(stack, 'providers'));
  await expect(page.getByRole('table', { name: 'Providers' })).toContainText('stub');
  const aliasForm = page.getByRole('form', { name: 'Add or replace an alias' });
  await aliasForm.getByLabel('Alias').fill('fast');
  await aliasForm.getByLabel('Targets', { exact: true }).fill('stub-without-model');
  await aliasForm.getByRole('button', { name: 'Save alias' }).click();
  await expect(aliasForm.getByText('line 1: write “provider/model”')).toBeVisible();
  await aliasForm.getByLabel('Targets', { exact: true }).fill('nowhere/echo-1');
  await aliasForm.getByRole('button', { name: 'Save alias' }).click();
  await expect(aliasForm.locator('.field-error')).toContainText('nowhere');
  await aliasForm.getByLabel('Targets', { exact: true }).fill('stub/echo-1');
  await aliasForm.getByRole('button', { name: 'Save alias' }).click();
  await expect(page.getByRole('table', { name: 'Aliases' }).getByRole('row', { name: /fast/ })).toContainText('stub/echo-1');
  await checkPage(page, 'providers');

  await page.goto(consoleUrl(stack, 'profiles'));
  await page.getByRole('button', { name: 'New profile' }).click();
  await page.getByLabel('Id', { exact: true }).fill('support');
  await page.getByLabel('Display name').fill('Support desk');
  await page.getByLabel('Default model').fill('fast');
  await page.getByLabel('System prompt').fill('You help customers kindly.');
  await page.getByRole('button', { name: 'Save profile' }).click();
  await expect(page.getByRole('row', { name: /Support desk/ })).toContainText('fast');
  await checkPage(page, 'profiles');

  await page.goto(consoleUrl(stack, 'models'));
  await expect(page.getByRole('heading', { name: 'Models' })).toBeVisible();
  await expect(page.getByRole('status')).toHaveCount(0);
  await checkPage(page, 'models');
});
