// Budgets and usage: token budgets of the tenant and its users, and the usage report as
// charts of tokens and cost by day, model and user, with a CSV download.
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { useQuery } from '@tanstack/react-query';
import { useMemo, useState, type FormEvent } from 'react';
import { admin } from '../../api/clients';
import { problemOf } from '../../api/errors';
import { dayEnd, dayStart, formatCost, formatCount, isoDay } from '../../api/format';
import { Problem, TextField } from '../../components/forms';
import { Loading, PageHeader, download } from '../../components/misc';
import type { GetUsageReportResponse, UsageRow } from '../../gen/codexcontinue/v1/admin_pb.js';
import { allows } from '../../session/access';
import { useRoles } from '../../session/session';
import { fillDays, sumBy, usageCsv } from '../../usage/aggregate';
import { BarChart } from './BarChart';
import { Budgets, useUserNames } from './Budgets';

const formatUnits = (value: number) => value.toFixed(4);

const COLORS = { tokens: '#2f5d8a', prompt: '#6b93c0', completion: '#2f5d8a', cost: '#8a4f2f' };

async function wholeReport(from: string, to: string): Promise<{ rows: UsageRow[]; total?: GetUsageReportResponse['total'] }> {
  const start = dayStart(from);
  const end = dayEnd(to);
  const rows: UsageRow[] = [];
  let pageToken = '';
  let total: GetUsageReportResponse['total'];
  do {
    const page = await admin.getUsageReport({
      timeRange: { start: start && timestampFromDate(start), end: end && timestampFromDate(end) },
      pageSize: 1000,
      pageToken,
    });
    rows.push(...page.rows);
    total = page.total;
    pageToken = page.nextPageToken;
  } while (pageToken && rows.length < 100_000);
  return { rows, total };
}

export default function UsagePage() {
  const roles = useRoles();
  const today = isoDay(new Date());
  const monthAgo = isoDay(new Date(Date.now() - 29 * 86_400_000));
  const [range, setRange] = useState({ from: monthAgo, to: today });
  const names = useUserNames();
  const report = useQuery({ queryKey: ['usage', range], queryFn: () => wholeReport(range.from, range.to) });
  const label = (id: string) => names.get(id) ?? id;
  const rows = report.data?.rows ?? [];
  const charts = useMemo(() => {
    const days = fillDays(sumBy(rows, 'day'), range.from, range.to);
    const byModel = sumBy(rows, 'model');
    const byUser = sumBy(rows, 'user', (id) => names.get(id) ?? id);
    return { days, byModel, byUser };
  }, [rows, range, names]);
  const problem = report.error ? problemOf(report.error) : undefined;
  const submit = (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    setRange({ from: String(data.get('from')), to: String(data.get('to')) });
  };
  const total = report.data?.total;

  return (
    <section>
      <PageHeader title="Budgets and usage" />
      {allows(roles, 'budgets') && <Budgets />}
      <form className="card row-form" onSubmit={submit} aria-labelledby="usage-title">
        <h2 id="usage-title">Usage</h2>
        <TextField label="From" name="from" type="date" defaultValue={range.from} required field="time_range" problem={problem} />
        <TextField label="To" name="to" type="date" defaultValue={range.to} required field="time_range" problem={problem} />
        <button type="submit">Show</button>
        <button type="button" disabled={rows.length === 0}
          onClick={() => download(`usage-${range.from}-${range.to}.csv`, usageCsv(rows, label), 'text/csv')}>
          Download CSV
        </button>
      </form>
      <Problem problem={problem} fields={['time_range']} />
      {report.isPending && <Loading what="usage" />}
      {total && (
        <p className="totals" data-testid="usage-totals">
          {formatCount(total.totalTokens)} tokens ({formatCount(total.promptTokens)} prompt, {formatCount(total.completionTokens)} completion) · cost {formatCost(total.costMicros)} · {formatCount(rows.length)} rows
        </p>
      )}
      {report.isSuccess && (
        <div className="charts">
          <BarChart title="Tokens by day" labels={charts.days.map((d) => d.key.slice(5))} stacked format={formatCount}
            series={[
              { label: 'Prompt', values: charts.days.map((d) => d.promptTokens), color: COLORS.prompt },
              { label: 'Completion', values: charts.days.map((d) => d.completionTokens), color: COLORS.completion },
            ]} />
          <BarChart title="Cost by day" labels={charts.days.map((d) => d.key.slice(5))} format={formatUnits}
            series={[{ label: 'Cost', values: charts.days.map((d) => d.costMicros / 1_000_000), color: COLORS.cost }]} />
          <BarChart title="Tokens by model" labels={charts.byModel.map((m) => m.key)} format={formatCount}
            series={[{ label: 'Tokens', values: charts.byModel.map((m) => m.tokens), color: COLORS.tokens }]} />
          <BarChart title="Tokens by user" labels={charts.byUser.map((u) => u.key)} format={formatCount}
            series={[{ label: 'Tokens', values: charts.byUser.map((u) => u.tokens), color: COLORS.tokens }]} />
        </div>
      )}
    </section>
  );
}
