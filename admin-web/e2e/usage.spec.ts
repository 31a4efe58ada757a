// Budgets and usage: set a budget, see it, and the usage charts of a chat turn.
import { checkPage, consoleUrl, expect, signInWithSso, test } from './fixtures';

test('an owner sets a budget and reads usage with charts', async ({ page, stack }) => {
  await signInWithSso(page, stack, 'owner');
  // Some usage to report.
  await page.goto(consoleUrl(stack, 'chat'));
  await page.getByRole('textbox', { name: 'Message', exact: true }).fill('Count my tokens');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByRole('list', { name: 'Messages' }).getByText('Echo: Count my tokens')).toBeVisible();

  await page.goto(consoleUrl(stack, 'usage'));
  const budgets = page.getByRole('region', { name: 'Budgets' });
  await expect(budgets.getByText('No budgets: use is not capped.')).toBeVisible();

  // A negative limit is stopped before it is sent.
  const limit = budgets.getByLabel('Token limit (0 removes)');
  await limit.fill('-5');
  await budgets.getByRole('button', { name: 'Set budget' }).click();
  expect(await limit.evaluate((input: HTMLInputElement) => input.validity.rangeUnderflow)).toBe(true);

  await budgets.getByLabel('Token limit (0 removes)').fill('50000');
  await budgets.getByLabel('Period').selectOption({ label: 'per month' });
  await budgets.getByRole('button', { name: 'Set budget' }).click();
  const row = budgets.getByRole('row', { name: /Whole tenant/ });
  await expect(row).toContainText('month');
  await expect(row).toContainText('50,000');

  await expect(page.getByTestId('usage-totals')).toContainText(/[1-9][\d,]* tokens/);
  await expect(page.getByRole('figure', { name: 'Tokens by model' })).toBeVisible();
  await expect(page.getByRole('figure', { name: 'Tokens by model' }).locator('canvas')).toBeVisible();
  await checkPage(page, 'usage');

  const download = page.waitForEvent('download');
  await page.getByRole('button', { name: 'Download CSV' }).click();
  const csv = await (await download).path().then((p) => import('node:fs').then((fs) => fs.readFileSync(p, 'utf8')));
  expect(csv.split('\r\n')[0]).toBe('day,user_id,user,model,requests,prompt_tokens,completion_tokens,total_tokens,cost_micros,mean_latency_ms');
  expect(csv).toContain('echo-1');

  // A spent budget refuses the next turn, and the chat says why.
  await limit.fill('1');
  await budgets.getByLabel('Period').selectOption({ label: 'per day' });
  await budgets.getByRole('button', { name: 'Set budget' }).click();
  await expect(budgets.getByRole('row', { name: /Whole tenant.*day/ })).toBeVisible();
  await page.goto(consoleUrl(stack, 'chat'));
  await page.getByRole('textbox', { name: 'Message', exact: true }).fill('One more, please');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByRole('alert')).toContainText('Resource exhausted');
  await expect(page.getByRole('list', { name: 'Messages' }).getByText('One more, please')).toBeVisible();
});
