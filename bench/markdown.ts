/** The report as Markdown (`--md FILE`): the same tables, for a README or an issue. */
import type { BenchReport } from './results.js';
import { configSnippet, machineLine, packagesLine, rate, reportTables, type Table } from './tables.js';

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function markdownTable(t: Table): string {
  const head = `| ${t.headers.map(cell).join(' | ')} |`;
  const rule = `| ${t.align.map((a) => (a === 'r' ? '---:' : '---')).join(' | ')} |`;
  return [`### ${t.title}`, '', head, rule, ...t.rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

export function renderMarkdown(report: BenchReport, options: { chart?: string } = {}): string {
  const out: string[] = [];
  out.push(`## eventrail bench${report.config.quick ? ' (--quick)' : ''}`, '');
  out.push(`- Machine: ${machineLine(report)}`);
  out.push(`- Packages: ${packagesLine(report)}`);
  out.push(
    `- Run: ${report.startedAt}, ${report.seconds} s; ${rate(report.config.events)} events per iteration; warm-up ${report.config.settings.warmupMs} ms, then at least ${report.config.settings.minIterations} iterations and ${report.config.settings.timeMs} ms per scenario${report.config.settings.rounds > 1 ? `, in ${report.config.settings.rounds} interleaved rounds` : ''}`,
  );
  if (options.chart) out.push('', `![events/s against threads](${options.chart})`);
  for (const t of reportTables(report)) out.push('', markdownTable(t));
  const snippet = configSnippet(report);
  if (report.best !== null && snippet !== null) {
    out.push(
      '',
      `**Best setting**: ${report.best.threads} thread(s), maxBatch ${report.best.maxBatch}, ${report.best.lanes} lanes, ${rate(report.best.eventsPerSec)} events/s (${report.best.why}):`,
      '',
      '```json',
      snippet,
      '```',
    );
  }
  if (report.notes.length > 0) out.push('', ...report.notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}
