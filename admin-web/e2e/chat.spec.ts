// Chat: a streamed reply from the stand-in model, regenerate, cancel, rename, delete.
import { checkPage, consoleUrl, expect, signInWithSso, test } from './fixtures';

test('a member chats with a streamed reply, regenerates, stops, renames and deletes', async ({ page, stack }) => {
  await signInWithSso(page, stack, 'alice');
  await page.goto(consoleUrl(stack, 'chat'));
  await expect(page.getByRole('heading', { name: 'New conversation' })).toBeVisible();
  await checkPage(page, 'chat-new');

  await page.getByRole('textbox', { name: 'Message', exact: true }).fill('Hello from the console test');
  await page.getByRole('button', { name: 'Send' }).click();
  const messages = page.getByRole('list', { name: 'Messages' });
  await expect(messages.getByText('Echo: Hello from the console test')).toBeVisible();
  await expect(messages.getByText(/stub\/echo-1 · \d+ tokens/)).toBeVisible();
  await expect(page).toHaveURL(/\/console\/chat\/[0-9a-f-]{36}$/);
  const conversations = page.getByRole('complementary', { name: 'Conversations' });
  await expect(conversations.getByRole('link', { name: /Hello from the console test/ })).toBeVisible();
  await checkPage(page, 'chat-conversation');

  // Regenerate replaces the last reply.
  await page.getByRole('button', { name: 'Regenerate reply' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Reply complete.' })).toBeAttached();
  await expect(messages.getByText('Echo: Hello from the console test')).toHaveCount(1);

  // Stop a slow reply part-way: the reply is kept as far as it got, marked cancelled.
  await page.getByRole('textbox', { name: 'Message', exact: true }).fill('Answer slowly with quite a lot of words so that there is time to stop it');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(messages.getByText(/^Echo: Answer/)).toBeVisible();
  await page.getByRole('button', { name: 'Stop' }).click();
  await expect(messages.getByText(/cancelled/)).toBeVisible();
  await expect(page.getByRole('button', { name: 'Send' })).toBeVisible();

  // Rename, then delete.
  await page.getByRole('button', { name: 'Rename' }).click();
  const rename = page.getByRole('dialog', { name: 'Rename conversation' });
  await rename.getByLabel('Title').fill('Console checks');
  await rename.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByRole('heading', { name: 'Console checks' })).toBeVisible();
  await expect(conversations.getByRole('link', { name: /Console checks/ })).toBeVisible();
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog', { name: 'Delete conversation?' }).getByRole('button', { name: 'Delete' }).click();
  await expect(page.getByRole('heading', { name: 'New conversation' })).toBeVisible();
  await expect(conversations.getByRole('link', { name: /Console checks/ })).toHaveCount(0);
});
