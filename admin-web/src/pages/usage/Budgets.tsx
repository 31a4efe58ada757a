// Token budgets: the tenant's and each user's, with their use in the current period.
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useMemo, type FormEvent } from 'react';
import { admin } from '../../api/clients';
import { problemOf } from '../../api/errors';
import { formatCount } from '../../api/format';
import { Problem, SelectField, TextField } from '../../components/forms';
import { Empty } from '../../components/misc';
import { BudgetPeriod } from '../../gen/codexcontinue/v1/admin_pb.js';
import { allows } from '../../session/access';
import { useRoles } from '../../session/session';

const PERIODS: Record<number, string> = { [BudgetPeriod.DAY]: 'day', [BudgetPeriod.MONTH]: 'month' };

/** User id → email, for the callers allowed to list users. */
export function useUserNames(): Map<string, string> {
  const canList = allows(useRoles(), 'users');
  const users = useQuery({ queryKey: ['users', ''], enabled: canList, queryFn: () => admin.listUsers({ pageSize: 1000 }) });
  return useMemo(() => new Map((users.data?.users ?? []).map((u) => [u.id, u.email || u.displayName || u.id])), [users.data]);
}

export function Budgets() {
  const queries = useQueryClient();
  const names = useUserNames();
  const budgets = useQuery({ queryKey: ['budgets'], queryFn: () => admin.listBudgets({ pageSize: 1000 }) });
  const save = useMutation({
    mutationFn: (form: FormData) => admin.setBudget({
      budget: {
        userId: String(form.get('user') ?? ''),
        period: Number(form.get('period')),
        tokenLimit: BigInt(String(form.get('limit') || '0')),
      },
    }),
    onSuccess: () => void queries.invalidateQueries({ queryKey: ['budgets'] }),
  });
  const problem = save.error ? problemOf(save.error) : undefined;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    save.mutate(new FormData(event.currentTarget));
  };
  const list = budgets.data?.budgets ?? [];
  return (
    <section className="card" aria-labelledby="budgets-title">
      <h2 id="budgets-title">Budgets</h2>
      <Problem problem={budgets.error ? problemOf(budgets.error) : undefined} />
      {budgets.isSuccess && list.length === 0 && <Empty>No budgets: use is not capped.</Empty>}
      {list.length > 0 && (
        <table>
          <caption className="visually-hidden">Budgets</caption>
          <thead><tr><th scope="col">For</th><th scope="col">Period</th><th scope="col">Limit</th><th scope="col">Used</th><th scope="col">Share</th></tr></thead>
          <tbody>
            {list.map((b) => {
              const share = b.tokenLimit > 0n ? Number((b.tokensUsed * 1000n) / b.tokenLimit) / 10 : 0;
              return (
                <tr key={`${b.userId}:${b.period}`}>
                  <td>{b.userId ? names.get(b.userId) ?? b.userId : 'Whole tenant'}</td>
                  <td>{PERIODS[b.period] ?? 'unknown'}</td>
                  <td>{formatCount(b.tokenLimit)}</td>
                  <td>{formatCount(b.tokensUsed)}</td>
                  <td><meter min={0} max={100} value={Math.min(share, 100)} aria-label="Share used" /> {share}%</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <form className="row-form" onSubmit={submit} aria-label="Set a budget">
        <SelectField label="For" name="user" field="budget.user_id" problem={problem}>
          <option value="">Whole tenant</option>
          {[...names.entries()].map(([id, name]) => <option key={id} value={id}>{name}</option>)}
        </SelectField>
        <SelectField label="Period" name="period" field="budget.period" problem={problem} defaultValue={String(BudgetPeriod.DAY)}>
          <option value={BudgetPeriod.DAY}>per day</option>
          <option value={BudgetPeriod.MONTH}>per month</option>
        </SelectField>
        <TextField label="Token limit (0 removes)" name="limit" type="number" min={0} step={1} required field="budget.token_limit" problem={problem} />
        <button type="submit" className="primary" disabled={save.isPending}>Set budget</button>
      </form>
      <Problem problem={problem} fields={['budget']} />
    </section>
  );
}
