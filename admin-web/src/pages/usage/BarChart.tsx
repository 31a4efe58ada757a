// A bar chart on a canvas (Chart.js: no injected styles, so it works under the console's
// Content-Security-Policy), with the same numbers in a table for screen readers.
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip,
} from 'chart.js';
import { useEffect, useId, useRef } from 'react';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);

export interface Series {
  label: string;
  values: number[];
  color: string;
}

interface BarChartProps {
  title: string;
  labels: string[];
  series: Series[];
  /** How a value is written in the table and tooltips. */
  format?: (value: number) => string;
  stacked?: boolean;
}

export function BarChart({ title, labels, series, format = String, stacked }: BarChartProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart | null>(null);
  const titleId = useId();
  useEffect(() => {
    if (!canvas.current) return;
    chart.current = new Chart(canvas.current, {
      type: 'bar',
      data: { labels, datasets: series.map((s) => ({ label: s.label, data: s.values, backgroundColor: s.color })) },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { display: series.length > 1 },
          tooltip: { callbacks: { label: (item) => `${item.dataset.label ?? ''}: ${format(Number(item.raw))}` } },
        },
        scales: {
          x: { stacked },
          y: { stacked, beginAtZero: true, ticks: { callback: (value) => format(Number(value)) } },
        },
      },
    });
    return () => {
      chart.current?.destroy();
      chart.current = null;
    };
  }, [labels, series, format, stacked]);
  return (
    <figure className="chart" aria-labelledby={titleId}>
      <figcaption id={titleId}>{title}</figcaption>
      <div className="chart-box">
        <canvas ref={canvas} role="img" aria-label={`${title} (the table below holds the same numbers)`} />
      </div>
      <details>
        <summary>Table</summary>
        <table>
          <thead><tr><th scope="col">—</th>{series.map((s) => <th scope="col" key={s.label}>{s.label}</th>)}</tr></thead>
          <tbody>
            {labels.map((label, i) => (
              <tr key={label}><th scope="row">{label}</th>{series.map((s) => <td key={s.label}>{format(s.values[i] ?? 0)}</td>)}</tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
