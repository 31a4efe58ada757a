// Plugins: register the shipped WebAssembly component and call its tool.
import { checkPage, consoleUrl, expect, signInWithKey, test } from './fixtures';

test('an owner registers a plugin and invokes its tool', async ({ page, stack }) => {
  await signInWithKey(page, stack, stack.ownerKey);
  await page.goto(consoleUrl(stack, 'plugins'));
  const form = page.getByRole('form', { name: 'Register a plugin' });
  await form.getByLabel('Transport').selectOption({ label: 'WebAssembly' });
  await form.getByLabel('Endpoint').fill('builtin:text_stats');
  await form.getByRole('button', { name: 'Register' }).click();
  const card = page.getByRole('article', { name: /text_stats/ });
  await expect(card).toBeVisible();
  await expect(card.getByText('count', { exact: true })).toBeVisible();
  await checkPage(page, 'plugins');

  await card.getByRole('button', { name: 'Try a tool' }).click();
  const dialog = page.getByRole('dialog', { name: 'Try text_stats' });
  await dialog.getByLabel('Arguments (JSON)').fill('{"text": "two words"}');
  await dialog.getByRole('button', { name: 'Invoke' }).click();
  await expect(dialog.getByTestId('tool-result')).toContainText('"words": 2');
  // Arguments the tool's schema refuses are named.
  await dialog.getByLabel('Arguments (JSON)').fill('{"nothing": 1}');
  await dialog.getByRole('button', { name: 'Invoke' }).click();
  await expect(dialog.locator('.field-error, .problem').first()).toBeVisible();
  await checkPage(page, 'plugins-try');
  await dialog.getByRole('button', { name: 'Close' }).click();

  // Let the general profile use it, and watch the assistant call it during a reply.
  await page.goto(consoleUrl(stack, 'profiles'));
  await page.getByRole('button', { name: 'Edit general' }).click();
  await page.getByLabel('Allowed plugins').fill('text_stats');
  await page.getByRole('button', { name: 'Save profile' }).click();
  await expect(page.getByRole('row', { name: /general/ })).toContainText('text_stats');

  await page.goto(consoleUrl(stack, 'chat'));
  await page.getByLabel('Profile').selectOption('general');
  await page.getByRole('textbox', { name: 'Message', exact: true }).fill('Please use the tool: three little words');
  await page.getByRole('button', { name: 'Send' }).click();
  const messages = page.getByRole('list', { name: 'Messages' });
  await expect(messages.getByRole('list', { name: 'Tool calls' })).toContainText(/text_stats\.count ok in \d+ ms/);
  await expect(messages.getByText(/The tool said .*"words":\s*3/)).toBeVisible();
  await checkPage(page, 'chat-tool-call');
});
