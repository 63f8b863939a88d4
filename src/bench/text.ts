/** The report for a terminal: aligned tables, then the setting to paste. */
import type { BenchReport } from './results.js';
import { configSnippet, machineLine, packagesLine, rate, reportTables, type Table } from './tables.js';

function formatTable(t: Table): string {
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (t.align[i] === 'r' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [t.title, `  ${line(t.headers)}`, `  ${widths.map((w) => '-'.repeat(w)).join('  ')}`, ...t.rows.map((r) => `  ${line(r)}`)].join('\n');
}

export function renderText(report: BenchReport): string {
  const out: string[] = [];
  out.push(`eventrail bench${report.config.quick ? ' --quick' : ''}: ${report.seconds} s`);
  out.push(`machine: ${machineLine(report)}`);
  out.push(`packages: ${packagesLine(report)}`);
  for (const t of reportTables(report)) out.push('', formatTable(t));
  const snippet = configSnippet(report);
  if (report.best !== null && snippet !== null) {
    out.push(
      '',
      `Best setting: ${report.best.threads} thread(s), maxBatch ${report.best.maxBatch}, ${report.best.lanes} lanes: ${rate(report.best.eventsPerSec)} events/s (${report.best.why}).`,
      'Paste into your config file:',
      snippet,
    );
  }
  if (report.notes.length > 0) out.push('', 'Notes:', ...report.notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}
